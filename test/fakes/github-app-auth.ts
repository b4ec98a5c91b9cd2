import { createPublicKey, randomInt, verify, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The GitHub App the fake knows: its id, the PEM public half of its key, its one installation. */
export interface FakeGitHubApp {
  appId: number;
  publicKey: string;
  installationId: number;
}

/**
 * An installation access token the fake issued (docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app).
 * `repositories` (names, without owner) and `permissions` are the restrictions asked for; absent
 * means unrestricted. Tests may set `revoked` or move `expiresAt` to the past.
 */
export interface InstallationToken {
  token: string;
  installationId: number;
  repositories?: string[];
  permissions?: Record<string, string>;
  revoked: boolean;
  expiresAt: Date;
}

/** An answer: HTTP status and JSON body. */
export interface Reply {
  status: number;
  body?: unknown;
}

/** What a request asks for, e.g. `{ permissions: ['checks'], level: 'write' }`: any one suffices. */
export interface PermissionNeed {
  permissions: string[];
  level: 'read' | 'write';
}

const LEVELS = { read: 1, write: 2, admin: 3 } as const;
const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

// Shared with github-api.ts.
export const reply = (status: number, body?: unknown): Reply => ({ status, body });
export const invalid = (message: string) => reply(422, { message });
export const notFound = () => reply(404, { message: 'Not Found' });
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
/** A time as GitHub writes it, `YYYY-MM-DDTHH:MM:SSZ`. */
export const isoSeconds = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
const isStringArray = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');
const base64url = (text: string) => Buffer.from(text, 'base64url');
const parseJson = (bytes: Buffer): unknown => {
  try {
    return JSON.parse(bytes.toString());
  } catch {
    return undefined;
  }
};

/**
 * Whether `jwt` is a token the app signed, as GitHub checks it
 * (docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app):
 * RS256 under `publicKey`, `iss` the app id (string or number), `exp` in the future and at most
 * 10 minutes ahead, `iat` at most 60 s in the future. `nowSeconds` is Unix time in seconds.
 */
export function verifyAppJwt(jwt: string, app: FakeGitHubApp, key: KeyObject, nowSeconds: number) {
  const parts = jwt.split('.');
  if (parts.length !== 3) return false;
  const [header, payload, signature] = parts as [string, string, string];
  const headerJson = parseJson(base64url(header)) as { alg?: unknown } | undefined;
  if (headerJson?.alg !== 'RS256') return false;
  const signed = Buffer.from(`${header}.${payload}`);
  const signedByApp = (() => {
    try {
      return verify('sha256', signed, key, base64url(signature));
    } catch {
      return false;
    }
  })();
  if (!signedByApp) return false;
  const claims = parseJson(base64url(payload)) as Record<string, unknown> | undefined;
  if (!claims || String(claims.iss) !== String(app.appId)) return false;
  const { exp, iat } = claims;
  if (typeof exp !== 'number' || exp <= nowSeconds || exp > nowSeconds + 600) return false;
  return typeof iat === 'number' && iat <= nowSeconds + 60;
}

/** The value of `Authorization: <scheme> <value>` when the scheme is one of `schemes` (any case). */
export function credentialOf(authorization: string | undefined, schemes: string[]) {
  const match = /^(\S+)\s+(\S+)$/.exec(authorization ?? '');
  return match && schemes.includes(match[1]!.toLowerCase()) ? match[2] : undefined;
}

/**
 * The app's side of GitHub: JWTs for app endpoints, installation tokens for the rest, and git's
 * HTTP credentials. `root` holds the repositories (`<root>/<owner>/<name>.git`); the static
 * `token` stands for an unrestricted installation token.
 */
export class AppAuth {
  /** Every token issued, in order, including revoked and expired ones. */
  readonly tokens: InstallationToken[] = [];
  private readonly staticToken: InstallationToken | undefined;
  private readonly key: KeyObject | undefined;

  constructor(
    private readonly options: {
      root: string;
      token?: string;
      app?: FakeGitHubApp;
      privateRepos?: string[];
    },
  ) {
    this.key = options.app && createPublicKey(options.app.publicKey);
    this.staticToken = options.token
      ? {
          token: options.token,
          installationId: options.app?.installationId ?? 0,
          revoked: false,
          expiresAt: new Date(8.64e15),
        }
      : undefined;
  }

  /** Whether `Authorization: Bearer <jwt>` carries a valid JWT of the app. */
  isApp(authorization: string | undefined) {
    const jwt = credentialOf(authorization, ['bearer']);
    if (!this.options.app || !this.key || !jwt) return false;
    return verifyAppJwt(jwt, this.options.app, this.key, Math.floor(Date.now() / 1000));
  }

  /** The live token of `Authorization: token <t>` or `Bearer <t>`, if any. */
  restToken(authorization: string | undefined) {
    return this.live(credentialOf(authorization, ['token', 'bearer']));
  }

  /**
   * Whether git smart HTTP may serve `owner/name` to `authorization` (git's `Basic
   * base64("x-access-token:<t>")`): a public repository to anyone without credentials, a private
   * one only to a token that reaches it and may read contents; given credentials must be live.
   */
  gitAllows(owner: string, name: string, authorization: string | undefined) {
    const [user, ...password] = Buffer.from(credentialOf(authorization, ['basic']) ?? '', 'base64')
      .toString()
      .split(':');
    const token = user === 'x-access-token' ? this.live(password.join(':')) : undefined;
    if (authorization && !token) return false;
    if (!this.options.privateRepos?.includes(`${owner}/${name}`)) return true;
    return (
      token !== undefined &&
      AppAuth.reaches(token, name) &&
      AppAuth.grants(token, { permissions: ['contents'], level: 'read' })
    );
  }

  /**
   * docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app: `body` may
   * restrict the token to `repositories` (names of repositories under `root`, any owner) and to
   * `permissions`. Answers 201 with the token, 404 for another installation, 422 on a bad body.
   */
  createAccessToken(installationId: number, body: unknown): Reply {
    if (installationId !== this.options.app?.installationId) return notFound();
    const request = isObject(body) ? body : {};
    const { repositories, permissions } = request;
    if (request.repository_ids !== undefined) return invalid('the fake takes repositories by name');
    if (repositories !== undefined && !isStringArray(repositories))
      return invalid('repositories must be an array of names');
    if (permissions !== undefined && !isObject(permissions))
      return invalid('permissions must be an object');
    for (const [name, level] of Object.entries(permissions ?? {})) {
      if (typeof level !== 'string' || !Object.hasOwn(LEVELS, level))
        return invalid(`The permission ${name}: ${String(level)} is not valid`);
    }
    const fullNames = (repositories ?? []).map((name) => this.findRepository(name));
    if (fullNames.includes(undefined))
      return invalid(
        'There is at least one repository that does not exist or is not accessible to the parent installation.',
      );
    const token: InstallationToken = {
      token: `ghs_${Array.from({ length: 36 }, () => ALPHANUMERIC[randomInt(62)]).join('')}`,
      installationId,
      repositories,
      permissions: permissions as Record<string, string> | undefined,
      revoked: false,
      expiresAt: new Date(Date.now() + TOKEN_LIFETIME_MS),
    };
    this.tokens.push(token);
    return reply(201, {
      token: token.token,
      expires_at: isoSeconds(token.expiresAt),
      permissions: permissions ?? {},
      repository_selection: repositories ? 'selected' : 'all',
      ...(repositories && {
        repositories: repositories.map((name, i) => ({ name, full_name: fullNames[i] })),
      }),
    });
  }

  /** docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app */
  getRepoInstallation(owner: string, name: string): Reply {
    const app = this.options.app!;
    if (!existsSync(join(this.options.root, owner, `${name}.git`, 'HEAD'))) return notFound();
    return reply(200, { id: app.installationId, app_id: app.appId, account: { login: owner } });
  }

  /**
   * docs.github.com/rest/apps/installations#revoke-an-installation-access-token: revokes the
   * token the request carries (the caller has checked it is live).
   */
  revokeToken(authorization: string | undefined): Reply {
    const token = this.restToken(authorization);
    if (token) token.revoked = true;
    return reply(204);
  }

  /** Whether `token` may reach repository `name` (its repository restriction, if any). */
  static reaches(token: InstallationToken, name: string) {
    return !token.repositories || token.repositories.includes(name);
  }

  /**
   * Whether `token` grants `need` (docs.github.com/rest/authentication/permissions-required-for-github-apps);
   * a token without a permission restriction has all of the installation's, and every token
   * may read metadata.
   */
  static grants(token: InstallationToken, need: PermissionNeed) {
    if (!token.permissions) return true;
    if (need.level === 'read' && need.permissions.includes('metadata')) return true;
    return need.permissions.some((permission) => {
      const level = token.permissions![permission] as keyof typeof LEVELS | undefined;
      return level !== undefined && LEVELS[level] >= LEVELS[need.level];
    });
  }

  /** The `owner/name` of the first repository named `name` under `root`, if any. */
  private findRepository(name: string) {
    const owners = existsSync(this.options.root) ? readdirSync(this.options.root) : [];
    const owner = owners.find((candidate) =>
      existsSync(join(this.options.root, candidate, `${name}.git`, 'HEAD')),
    );
    return owner && `${owner}/${name}`;
  }

  private live(value: string | undefined) {
    if (!value) return undefined;
    const token =
      value === this.staticToken?.token
        ? this.staticToken
        : this.tokens.find((candidate) => candidate.token === value);
    return token && !token.revoked && token.expiresAt.getTime() > Date.now() ? token : undefined;
  }
}
