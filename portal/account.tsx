import { Hono, type Context } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { Child } from 'hono/jsx';
import { z } from 'zod';
import { portalUrls } from '../core/urls';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import {
  createUserToken,
  hashTokenSecret,
  listApiTokens,
  revokeUserToken,
  upsertUser,
  type UserToken,
} from '../db/queries/users';
import {
  API_TOKEN_PREFIX,
  SESSION_COOKIE,
  SignInFailed,
  newTokenSecret,
  type OidcSignIn,
  type PortalEnv,
} from './auth';
import { BadRequestPage, Layout, Time } from './views';

/** The longest life of a personal API token, in days (GitHub's fine-grained tokens: a year). */
export const MAX_TOKEN_DAYS = 366;

const newToken = z.object({
  name: z
    .string()
    .trim()
    .min(1, 'give the token a name, e.g. "release script"')
    .max(100, 'a token name has at most 100 characters'),
  expiresInDays: z.coerce
    .number()
    .int('expiresInDays is a whole number of days')
    .min(1, 'a token lasts at least 1 day')
    .max(MAX_TOKEN_DAYS, `a token lasts at most ${MAX_TOKEN_DAYS} days`)
    .default(90),
});

/** The JSON form of an API token (never its secret, which is shown once, when it is made). */
export function apiTokenToJson(token: UserToken) {
  return {
    id: token.id,
    name: token.name,
    createdAt: token.createdAt.toISOString(),
    expiresAt: token.expiresAt?.toISOString() ?? null,
    lastUsedAt: token.lastUsedAt?.toISOString() ?? null,
    revokedAt: token.revokedAt?.toISOString() ?? null,
  };
}

/**
 * The account routes (docs/portal.md "Access"):
 * - `GET /auth/login?return_to=PATH`: redirects to the identity provider (404 when sign-in is not
 *   configured); `GET /auth/callback`: the redirect URI, which starts a session (a cookie, for
 *   `sessionHours`) and returns to PATH; `POST /auth/logout`: ends the session.
 * - `GET /settings/tokens`: the signed-in user's API tokens; `POST /settings/tokens` (form
 *   `name`, `expiresInDays`) makes one and shows its secret once; `POST
 *   /settings/tokens/:id/revoke` revokes one.
 * - `GET /api/v1/user`: `{login, email}` of the caller; `GET /api/v1/tokens`: `{tokens}`;
 *   `POST /api/v1/tokens` `{name, expiresInDays}` (from a browser session only): 201 `{token,
 *   secret}`; `DELETE /api/v1/tokens/:id`: 204. Anonymous callers get 401.
 */
export function accountRoutes(deps: {
  db: Database;
  base: string;
  signIn: OidcSignIn | undefined;
  sessionHours: number;
  log: Logger;
  render: (
    c: Context<PortalEnv>,
    page: Child,
    status?: 200 | 201 | 400 | 404 | 503,
  ) => Response | Promise<Response>;
}) {
  const { db, base, signIn, render, log } = deps;
  const secure = base.startsWith('https:');
  const app = new Hono<PortalEnv>();
  const unauthorized = (c: Context<PortalEnv>) =>
    c.json(
      {
        error: 'unauthorized',
        message: 'sign in, or send a personal API token as "Authorization: Bearer <token>"',
      },
      401,
    );

  app.get('/auth/login', async (c) => {
    if (!signIn) return c.notFound();
    try {
      return await signIn.start(c, c.req.query('return_to'));
    } catch (error) {
      if (!(error instanceof SignInFailed)) throw error;
      return render(c, <SignInFailedPage base={base} message={error.message} />, 503);
    }
  });

  app.get('/auth/callback', async (c) => {
    if (!signIn) return c.notFound();
    try {
      const { identity, returnTo } = await signIn.finish(c);
      const user = await upsertUser(db, identity);
      const secret = newTokenSecret();
      await createUserToken(db, {
        userId: user.id,
        kind: 'session',
        name: c.req.header('user-agent')?.slice(0, 200) ?? 'browser',
        secretHash: hashTokenSecret(secret),
        expiresAt: new Date(Date.now() + deps.sessionHours * 3_600_000),
      });
      setCookie(c, SESSION_COOKIE, secret, {
        path: '/',
        httpOnly: true,
        sameSite: 'Lax',
        secure,
        maxAge: Math.round(deps.sessionHours * 3600),
      });
      log.info({ userId: user.id, login: user.login }, 'signed in');
      return c.redirect(`${base}${returnTo}`, 302);
    } catch (error) {
      if (!(error instanceof SignInFailed)) throw error;
      return render(c, <SignInFailedPage base={base} message={error.message} />, 400);
    }
  });

  app.post('/auth/logout', async (c) => {
    const viewer = c.get('viewer');
    if (viewer?.via === 'session') await revokeUserToken(db, viewer.user.id, viewer.tokenId);
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect(`${base}/`, 303);
  });

  /** Makes an API token for the signed-in user; the secret is in the answer only. */
  const makeToken = async (c: Context<PortalEnv>, input: unknown) => {
    const parsed = newToken.safeParse(input);
    if (!parsed.success)
      return { ok: false as const, error: parsed.error.issues.map((i) => i.message).join('; ') };
    const secret = newTokenSecret(API_TOKEN_PREFIX);
    const token = await createUserToken(db, {
      userId: c.get('viewer')!.user.id,
      kind: 'api',
      name: parsed.data.name,
      secretHash: hashTokenSecret(secret),
      expiresAt: new Date(Date.now() + parsed.data.expiresInDays * 86_400_000),
    });
    log.info({ userId: token.userId, tokenId: token.id }, 'API token created');
    return { ok: true as const, token, secret };
  };

  app.get('/settings/tokens', async (c) => {
    const viewer = c.get('viewer');
    if (viewer?.via !== 'session') return c.redirect(portalUrls.signIn(base, c.req.path), 302);
    const tokens = await listApiTokens(db, viewer.user.id);
    c.header('Cache-Control', 'no-store');
    return render(c, <TokensPage base={base} tokens={tokens} />);
  });
  app.post('/settings/tokens', async (c) => {
    const viewer = c.get('viewer');
    if (viewer?.via !== 'session') return c.redirect(portalUrls.signIn(base, c.req.path), 303);
    const made = await makeToken(c, await c.req.parseBody());
    if (!made.ok) return render(c, <BadRequestPage base={base} message={made.error} />, 400);
    const tokens = await listApiTokens(db, viewer.user.id);
    c.header('Cache-Control', 'no-store');
    return render(c, <TokensPage base={base} tokens={tokens} created={made} />, 201);
  });
  app.post('/settings/tokens/:id/revoke', async (c) => {
    const viewer = c.get('viewer');
    if (viewer?.via !== 'session') return c.redirect(portalUrls.signIn(base, c.req.path), 303);
    await revokeUserToken(db, viewer.user.id, Number(c.req.param('id')) || 0);
    return c.redirect(portalUrls.apiTokens(base), 303);
  });

  app.get('/api/v1/user', (c) => {
    const viewer = c.get('viewer');
    if (!viewer) return unauthorized(c);
    return c.json({ login: viewer.user.login, email: viewer.user.email });
  });
  app.get('/api/v1/tokens', async (c) => {
    const viewer = c.get('viewer');
    if (!viewer) return unauthorized(c);
    c.header('Cache-Control', 'no-store');
    return c.json({ tokens: (await listApiTokens(db, viewer.user.id)).map(apiTokenToJson) });
  });
  app.post('/api/v1/tokens', async (c) => {
    const viewer = c.get('viewer');
    if (!viewer) return unauthorized(c);
    // A leaked token must not be able to mint more: new tokens need a browser session.
    if (viewer.via !== 'session')
      return c.json(
        {
          error: 'forbidden',
          message: 'API tokens are made from a signed-in browser session, not with a token',
        },
        403,
      );
    const body: unknown = await c.req.json().catch(() => undefined);
    const made = await makeToken(c, body ?? {});
    if (!made.ok) return c.json({ error: 'bad-request', message: made.error }, 400);
    c.header('Cache-Control', 'no-store');
    return c.json({ token: apiTokenToJson(made.token), secret: made.secret }, 201);
  });
  app.delete('/api/v1/tokens/:id', async (c) => {
    const viewer = c.get('viewer');
    if (!viewer) return unauthorized(c);
    const revoked = await revokeUserToken(db, viewer.user.id, Number(c.req.param('id')) || 0);
    if (!revoked)
      return c.json(
        { error: 'not-found', message: 'you have no such token, or it is revoked' },
        404,
      );
    return c.body(null, 204);
  });

  return app;
}

/** The sign-in failed page: why (`message`, escaped) and a link to try again. */
function SignInFailedPage(props: { base: string; message: string }) {
  return (
    <Layout base={props.base} title="Sign-in failed">
      <h1>Sign-in failed</h1>
      <p>{props.message}</p>
      <p>
        <a href={portalUrls.signIn(props.base)}>Sign in again</a>
      </p>
    </Layout>
  );
}

/** The user's API tokens, a form for a new one and, right after making one, its secret. */
function TokensPage(props: {
  base: string;
  tokens: UserToken[];
  created?: { token: UserToken; secret: string };
}) {
  const { base, created } = props;
  return (
    <Layout base={base} title="API tokens">
      <h1>Personal API tokens</h1>
      <p>
        Scripts and <code>curl</code> reach private repositories with a token:{' '}
        <code>curl -H "Authorization: Bearer $CROSSDOCK_TOKEN" -LO …</code>. A token acts as you;
        revoke it when it is no longer needed or may have leaked.
      </p>
      {created ? (
        <p class="live">
          Token <strong>{created.token.name}</strong> made. Copy it now, it is not shown again:{' '}
          <code id="new-token">{created.secret}</code>
        </p>
      ) : (
        ''
      )}
      <h2>New token</h2>
      <form method="post" action={portalUrls.apiTokens(base)}>
        <label>
          Name <input name="name" required maxlength={100} placeholder="release script" />
        </label>{' '}
        <label>
          Expires in{' '}
          <input name="expiresInDays" type="number" min={1} max={MAX_TOKEN_DAYS} value="90" /> days
        </label>{' '}
        <button type="submit">Make token</button>
      </form>
      <h2>Tokens</h2>
      {props.tokens.length === 0 ? (
        <p class="muted">You have no tokens.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Made</th>
              <th>Expires</th>
              <th>Last used</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {props.tokens.map((token) => (
              <tr>
                <td>{token.name}</td>
                <td>
                  <Time at={token.createdAt} />
                </td>
                <td>
                  <Time at={token.expiresAt} />
                </td>
                <td>
                  <Time at={token.lastUsedAt} />
                </td>
                <td>
                  {token.revokedAt ? (
                    <span class="muted">revoked</span>
                  ) : (
                    <form
                      class="inline"
                      method="post"
                      action={`${portalUrls.apiTokens(base)}/${token.id}/revoke`}
                    >
                      <button type="submit">Revoke</button>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}
