import { randomBytes } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import * as oidc from 'openid-client';
import { z } from 'zod';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import type { Repo } from '../db/queries/repos';
import { findUserByToken, hashTokenSecret, type User } from '../db/queries/users';

/**
 * Who is asking: a user signed in through the identity provider (a session cookie) or a script
 * with one of that user's personal API tokens (`Authorization: Bearer <token>`).
 */
export interface Viewer {
  user: User;
  via: 'session' | 'api';
  /** The id of the session's or API token's row in user_tokens. */
  tokenId: number;
}

/** The Hono environment of the portal's routes: `c.get('viewer')` after viewerMiddleware. */
export interface PortalEnv {
  Variables: { viewer: Viewer | undefined };
}

/** The cookie holding a browser session's secret (its SHA-256 is in user_tokens). */
export const SESSION_COOKIE = 'crossdock_session';
/** The cookie holding a sign-in's state, nonce and PKCE verifier between the two redirects. */
const LOGIN_COOKIE = 'crossdock_login';
/** Prefix of personal API tokens, so secret scanners and people can tell what they are. */
export const API_TOKEN_PREFIX = 'cdk_';

/** A new random secret: 32 bytes, base64url, behind `prefix`. */
export function newTokenSecret(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/** Whether `viewer` may see `repo`: anyone a public one, only a signed-in user or token a private one. */
export function canSee(viewer: Viewer | undefined, repo: Pick<Repo, 'visibility'>): boolean {
  return repo.visibility === 'public' || viewer !== undefined;
}

/** What an API answers for a bad credential: 401 with the RFC 6750 challenge. */
function invalidToken(c: Context): Response {
  c.header('WWW-Authenticate', 'Bearer realm="crossdock", error="invalid_token"');
  return c.json(
    {
      error: 'unauthorized',
      message:
        'the API token is unknown, expired or revoked: create a new one at /settings/tokens and send it as "Authorization: Bearer <token>"',
    },
    401,
  );
}

/**
 * Sets `c.get('viewer')`: from `Authorization: Bearer <token>` (a personal API token; anything
 * else in that header, or a token unknown, expired or revoked, answers 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"`, RFC 6750 §3) or else from the session
 * cookie (a stale one is deleted and the request goes on anonymous). A request with neither
 * reads nothing from the database.
 */
export function viewerMiddleware(db: Database): MiddlewareHandler<PortalEnv> {
  return async (c, next) => {
    const authorization = c.req.header('authorization');
    if (authorization !== undefined) {
      const bearer = /^Bearer +([A-Za-z0-9_-]{10,200})$/i.exec(authorization.trim());
      const found = bearer && (await findUserByToken(db, hashTokenSecret(bearer[1]!), 'api'));
      if (!found) return invalidToken(c);
      c.set('viewer', { user: found.user, via: 'api', tokenId: found.token.id });
      return next();
    }
    const secret = getCookie(c, SESSION_COOKIE);
    if (secret !== undefined) {
      const found = await findUserByToken(db, hashTokenSecret(secret), 'session');
      if (found) c.set('viewer', { user: found.user, via: 'session', tokenId: found.token.id });
      else deleteCookie(c, SESSION_COOKIE, { path: '/' });
    }
    return next();
  };
}

/** The identity provider's settings (docs/portal.md "Access"). */
export interface OidcOptions {
  /** The issuer URL; its /.well-known/openid-configuration names the endpoints (OIDC Discovery 1.0). */
  issuer: string;
  clientId: string;
  /** For a confidential client (client_secret_basic); none for a public client with PKCE only. */
  clientSecret: string | undefined;
  /** Space-separated scopes; `openid` is required. */
  scopes: string;
  /** Allow an http:// issuer: only for a provider on loopback (tests, a local Dex). */
  allowHttp: boolean;
}

const loginState = z.object({
  state: z.string(),
  nonce: z.string(),
  verifier: z.string(),
  returnTo: z.string(),
});

/** A path on this portal to return to after signing in: a local absolute path, else `/`. */
export function safeReturnPath(path: string | undefined): string {
  // `//host` and `/\host` are other origins to a browser.
  return path !== undefined && /^\/(?![/\\])/.test(path) ? path : '/';
}

/** A sign-in that failed at the provider or in its answer; its message is for the user. */
export class SignInFailed extends Error {}

/**
 * Sign-in with OpenID Connect: the authorization code flow with PKCE (S256), state and nonce
 * (OpenID Connect Core 1.0 §3.1, RFC 7636), through openid-client. The provider's metadata is
 * discovered on the first sign-in and kept; a failed discovery is tried again at the next one.
 */
export function createOidcSignIn(options: OidcOptions, base: string, log: Logger) {
  const redirectUri = `${base}/auth/callback`;
  const secure = base.startsWith('https:');
  let configuration: Promise<oidc.Configuration> | undefined;
  const configure = () => {
    configuration ??= oidc
      .discovery(
        new URL(options.issuer),
        options.clientId,
        options.clientSecret,
        options.clientSecret === undefined ? oidc.None() : undefined,
        options.allowHttp ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((error: unknown) => {
        configuration = undefined;
        log.error({ err: error, issuer: options.issuer }, 'OpenID Connect discovery failed');
        throw new SignInFailed(
          'The sign-in provider cannot be reached; try again in a minute, or tell the portal’s operators.',
        );
      });
    return configuration;
  };

  return {
    /**
     * Starts a sign-in: remembers state, nonce and verifier in a short-lived cookie (10 min,
     * HttpOnly, SameSite=Lax, path /auth) and answers the redirect to the provider.
     */
    async start(c: Context, returnTo: string | undefined): Promise<Response> {
      const config = await configure();
      const state = {
        state: oidc.randomState(),
        nonce: oidc.randomNonce(),
        verifier: oidc.randomPKCECodeVerifier(),
        returnTo: safeReturnPath(returnTo),
      };
      setCookie(c, LOGIN_COOKIE, JSON.stringify(state), {
        path: '/auth',
        httpOnly: true,
        sameSite: 'Lax',
        secure,
        maxAge: 600,
      });
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: options.scopes,
        state: state.state,
        nonce: state.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(state.verifier),
        code_challenge_method: 'S256',
      });
      return c.redirect(url.href, 302);
    },

    /**
     * Finishes a sign-in at the redirect URI: checks state, nonce and the ID token, and returns
     * who signed in and where they wanted to go. Throws SignInFailed with a message for the user.
     */
    async finish(c: Context) {
      const saved = loginState.safeParse(safeJson(getCookie(c, LOGIN_COOKIE)));
      deleteCookie(c, LOGIN_COOKIE, { path: '/auth' });
      if (!saved.success)
        throw new SignInFailed(
          'This sign-in was not started here, or took longer than 10 minutes; sign in again.',
        );
      const providerError = c.req.query('error');
      if (providerError !== undefined)
        throw new SignInFailed(
          `The provider refused the sign-in (${providerError}${c.req.query('error_description') ? `: ${c.req.query('error_description')}` : ''}).`,
        );
      const config = await configure();
      // The URL the provider redirected to, as the browser saw it (behind a proxy: `base`).
      const current = new URL(`${redirectUri}${new URL(c.req.url).search}`);
      try {
        const tokens = await oidc.authorizationCodeGrant(config, current, {
          pkceCodeVerifier: saved.data.verifier,
          expectedState: saved.data.state,
          expectedNonce: saved.data.nonce,
          idTokenExpected: true,
        });
        let claims: Record<string, unknown> & { iss: string; sub: string } = tokens.claims()!;
        // Many providers put profile claims only in the UserInfo answer (OIDC Core §5.4).
        if (claims.preferred_username === undefined && config.serverMetadata().userinfo_endpoint)
          claims = {
            ...(await oidc.fetchUserInfo(config, tokens.access_token, claims.sub)),
            ...claims,
          };
        const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);
        const email = text(claims.email);
        return {
          identity: {
            issuer: claims.iss,
            subject: claims.sub,
            login: text(claims.preferred_username) ?? email ?? claims.sub,
            email,
          },
          returnTo: saved.data.returnTo,
        };
      } catch (error) {
        log.warn({ err: error }, 'sign-in failed');
        throw new SignInFailed('The provider’s answer did not check out; sign in again.');
      }
    },
  };
}

export type OidcSignIn = ReturnType<typeof createOidcSignIn>;

function safeJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
