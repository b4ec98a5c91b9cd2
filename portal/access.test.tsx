import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalUrls } from '../core/urls';
import type { NewBuild } from '../db/queries/builds';
import { setRepoVisibility } from '../db/queries/repos';
import { createUserToken, hashTokenSecret, upsertUser } from '../db/queries/users';
import { createTestPortal, finishBuild, portalBuildRequest } from '../test/support/portal-builds';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../test/support/services';
import { createPortalApp, type PortalDeps } from './app';
import { STATIC_ASSETS } from './assets';
import { SESSION_COOKIE } from './auth';
import { createStorageClient } from '../core/storage';

const BASE = 'http://portal.test';
const CLIENT = { id: 'crossdock-portal', secret: randomBytes(16).toString('hex') };

/** Cookies by name, as a browser would keep them for one site (paths ignored). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(response: Response): Response {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at).trim();
      const value = pair!.slice(at + 1).trim();
      // Expired (deleted) cookies have Max-Age=0.
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
  get(name: string) {
    return this.cookies.get(name);
  }
}

describe('access: private repositories, sign-in, API tokens, presigned links', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let provider: Server;
  let issuer: string;
  let app: ReturnType<typeof createPortalApp>;
  const portalWith = (options: Partial<PortalDeps> = {}) =>
    createTestPortal(database, bucket, { portalUrl: BASE, ...options });
  const installer = randomBytes(40_000);
  const ids: Record<string, number> = {};

  const request = (name: string, overrides: Partial<NewBuild> = {}): NewBuild =>
    portalBuildRequest(
      name,
      createHash('sha1')
        .update(`${name}${JSON.stringify(overrides)}`)
        .digest('hex'),
      { ref: 'v2.0.0', tag: 'v2.0.0', trigger: 'tag', ...overrides },
    );

  beforeAll(async () => {
    [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
    const outcome = { amd64: { state: 'succeeded' as const, files: { 'secret.deb': installer } } };
    ids.secret = await finishBuild(database.db, bucket, request('secret'), outcome);
    ids.open = await finishBuild(database.db, bucket, request('open'), outcome);
    await setRepoVisibility(database.db, 'acme', 'secret', 'private');

    // A real OpenID Connect provider on loopback, with its development login and consent forms.
    provider = createServer();
    await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
    const oidc = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT.id,
          client_secret: CLIENT.secret,
          redirect_uris: [`${BASE}/auth/callback`],
        },
      ],
      cookies: { keys: [randomBytes(16).toString('hex')] },
      claims: { openid: ['sub'], profile: ['preferred_username'], email: ['email'] },
      findAccount: (_ctx, id) => ({
        accountId: id,
        claims: () => ({ sub: id, preferred_username: id, email: `${id}@example.com` }),
      }),
    });
    provider.on('request', oidc.callback());

    app = portalWith({
      oidc: {
        issuer,
        clientId: CLIENT.id,
        clientSecret: CLIENT.secret,
        scopes: 'openid profile email',
        allowHttp: true,
      },
    });
  });
  afterAll(async () => {
    provider?.closeAllConnections();
    await new Promise((resolve) => provider?.close(resolve));
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  const path = (url: string) => url.slice(BASE.length);
  const get = (url: string, headers: Record<string, string> = {}) =>
    app.request(path(url), { headers });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  /** The secret of a new API token of user `login` (signed in once), valid until `expiresAt`. */
  const apiTokenOf = async (login: string, expiresAt: Date | null = null) => {
    const user = await upsertUser(database.db, { issuer, subject: login, login, email: undefined });
    const secret = `cdk_${randomBytes(32).toString('base64url')}`;
    await createUserToken(database.db, {
      userId: user.id,
      kind: 'api',
      name: 'a script',
      secretHash: hashTokenSecret(secret),
      expiresAt,
    });
    return secret;
  };

  /** Every URL of a repository's pages, API answers and downloads. */
  const urlsOf = (repo: string) => [
    portalUrls.repo(BASE, 'acme', repo),
    portalUrls.commit(BASE, 'acme', repo, request(repo).sha),
    portalUrls.build(BASE, ids[repo]!),
    portalUrls.release(BASE, 'acme', repo, 'v2.0.0'),
    portalUrls.releaseDownload(BASE, 'acme', repo, 'v2.0.0', 'secret.deb'),
    portalUrls.latestReleaseDownload(BASE, 'acme', repo, 'secret.deb'),
    portalUrls.commitDownload(BASE, 'acme', repo, request(repo).sha, 'amd64', 'secret.deb'),
    portalUrls.releasesApi(BASE, 'acme', repo),
    portalUrls.releaseApi(BASE, 'acme', repo, 'v2.0.0'),
    portalUrls.releasesFeed(BASE, 'acme', repo),
    `${BASE}/api/v1/repos/acme/${repo}/commits/${request(repo).sha}/builds`,
  ];
  /** The job log and artifact URLs of a build, read from its page as a signed-in user would. */
  const jobUrlsOf = async (repo: string, headers: Record<string, string>) => {
    const page = await (await get(portalUrls.build(BASE, ids[repo]!), headers)).text();
    const links = [...page.matchAll(/href="(http:\/\/portal\.test\/(?:jobs|artifacts)\/[^"]+)"/g)];
    return [...new Set(links.map((match) => match[1]!.replaceAll('&amp;', '&')))];
  };

  /**
   * Signs in through the provider as `login`, following every redirect and posting its login and
   * consent forms as a browser would. Returns the portal's cookie jar and where it landed.
   */
  async function signIn(login: string, returnTo: string) {
    const portal = new CookieJar();
    const idp = new CookieJar();
    let response = portal.take(await app.request(portalUrls.signIn('', returnTo)));
    for (let step = 0; step < 12; step += 1) {
      const location = response.headers.get('location');
      if (location?.startsWith(`${BASE}/auth/callback`)) {
        response = portal.take(
          await app.request(path(location), { headers: { cookie: portal.header() } }),
        );
        return { portal, response };
      }
      if (location) {
        response = idp.take(
          await fetch(new URL(location, issuer), {
            redirect: 'manual',
            headers: { cookie: idp.header() },
          }),
        );
        continue;
      }
      // An interaction page: a login or a consent form.
      const html = await response.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
      if (!action || !prompt) throw new Error(`unexpected provider page: ${html.slice(0, 300)}`);
      const form = new URLSearchParams({ prompt });
      if (prompt === 'login') {
        form.set('login', login);
        form.set('password', 'any');
      }
      response = idp.take(
        await fetch(new URL(action, issuer), {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie: idp.header(), 'content-type': 'application/x-www-form-urlencoded' },
          body: form,
        }),
      );
    }
    throw new Error('sign-in did not come back to the portal');
  }

  it('a private repository is "not found" without credentials; a public one is not', async () => {
    for (const url of urlsOf('secret')) {
      const response = await get(url);
      expect({ url, status: response.status }).toEqual({ url, status: 404 });
      // Nothing of it shows, e.g. its installer's checksum.
      const text = await response.text();
      expect(text).not.toContain(createHash('sha256').update(installer).digest('hex'));
    }
    for (const url of urlsOf('open'))
      expect({ url, status: (await get(url)).status }).toEqual({ url, status: 200 });
    // Nor do lists or search show it.
    const home = await (await get(`${BASE}/`)).text();
    expect(home).toContain('acme/open');
    expect(home).not.toContain('acme/secret');
    const hits = (await (await get(portalUrls.searchApi(BASE, 'v2.0'))).json()) as {
      hits: { repo: string }[];
    };
    expect(hits.hits.map((hit) => hit.repo)).toEqual(['acme/open']);
    // The 404 page offers to sign in.
    expect(await (await get(portalUrls.repo(BASE, 'acme', 'secret'))).text()).toContain(
      'sign in</a> to see it',
    );
  });

  it('signs in through OpenID Connect and sees the private repository', async () => {
    const returnTo = '/acme/secret';
    const { portal, response } = await signIn('alice', returnTo);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe(`${BASE}${returnTo}`);
    const cookie = response.headers
      .getSetCookie()
      .find((line) => line.startsWith('crossdock_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const headers = { cookie: portal.header() };

    const page = await get(portalUrls.repo(BASE, 'acme', 'secret'), headers);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('alice');
    for (const url of [...urlsOf('secret'), ...(await jobUrlsOf('secret', headers))])
      expect({ url, status: (await get(url, headers)).status }).toEqual({ url, status: 200 });
    const user = await (await get(`${BASE}/api/v1/user`, headers)).json();
    expect(user).toEqual({ login: 'alice', email: 'alice@example.com' });

    // Signing out ends the session: the same cookie sees nothing private any more.
    const out = await app.request('/auth/logout', {
      method: 'POST',
      headers: { ...headers, origin: BASE },
    });
    expect(out.status).toBe(303);
    expect((await get(portalUrls.repo(BASE, 'acme', 'secret'), headers)).status).toBe(404);
    expect((await get(`${BASE}/api/v1/user`, headers)).status).toBe(401);
  });

  it('a sign-in that was not started here, or that the provider refused, fails clearly', async () => {
    const stray = await app.request('/auth/callback?code=abc&state=def');
    expect(stray.status).toBe(400);
    expect(await stray.text()).toContain('was not started here');
    // A started sign-in whose state does not match.
    const jar = new CookieJar();
    jar.take(await app.request(portalUrls.signIn('', '/')));
    const forged = await app.request('/auth/callback?code=abc&state=forged', {
      headers: { cookie: jar.header() },
    });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('did not check out');
    // Where to return is only ever a path on the portal.
    const awayJar = new CookieJar();
    const away = awayJar.take(await app.request(portalUrls.signIn('', '//evil.example/x')));
    expect(away.status).toBe(302);
    const state = JSON.parse(decodeURIComponent(awayJar.get('crossdock_login')!)) as {
      returnTo: string;
    };
    expect(state.returnTo).toBe('/');
  });

  it('personal API tokens: made in a session, used by scripts, revoked, expired', async () => {
    const { portal } = await signIn('bob', '/');
    const session = { cookie: portal.header() };
    const made = await app.request('/api/v1/tokens', {
      method: 'POST',
      headers: { ...session, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'release script', expiresInDays: 30 }),
    });
    expect(made.status).toBe(201);
    const { token, secret } = (await made.json()) as { token: { id: number }; secret: string };
    expect(secret).toMatch(/^cdk_[A-Za-z0-9_-]{43}$/);

    // A script downloads the private installer with it, as curl would.
    const download = await get(
      portalUrls.releaseDownload(BASE, 'acme', 'secret', 'v2.0.0', 'secret.deb'),
      bearer(secret),
    );
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(installer)).toBe(true);
    // Only its hash is stored.
    const listed = (await (await get(`${BASE}/api/v1/tokens`, bearer(secret))).json()) as {
      tokens: { id: number; name: string; lastUsedAt: string | null }[];
    };
    expect(listed.tokens).toMatchObject([{ id: token.id, name: 'release script' }]);
    expect(listed.tokens[0]!.lastUsedAt).not.toBeNull();
    expect(JSON.stringify(listed)).not.toContain(secret);

    // A token cannot make more tokens.
    const minted = await app.request('/api/v1/tokens', {
      method: 'POST',
      headers: { ...bearer(secret), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'more' }),
    });
    expect(minted.status).toBe(403);
    // Bad input says what to do.
    const bad = await app.request('/api/v1/tokens', {
      method: 'POST',
      headers: { ...session, 'content-type': 'application/json' },
      body: JSON.stringify({ name: ' ', expiresInDays: 9999 }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(
      /give the token a name.*at most 366 days/,
    );

    // Revoked: 401 with the RFC 6750 challenge, and nothing private.
    const revoked = await app.request(`/api/v1/tokens/${token.id}`, {
      method: 'DELETE',
      headers: { ...session, origin: BASE },
    });
    expect(revoked.status).toBe(204);
    const after = await get(portalUrls.repo(BASE, 'acme', 'secret'), bearer(secret));
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
    expect(((await after.json()) as { message: string }).message).toContain('/settings/tokens');

    // Expired, unknown or malformed: 401 too.
    const old = await apiTokenOf('carol', new Date(Date.now() - 1000));
    for (const credential of [old, `cdk_${'x'.repeat(43)}`])
      expect((await get(portalUrls.repo(BASE, 'acme', 'open'), bearer(credential))).status).toBe(
        401,
      );
    const basic = await get(portalUrls.repo(BASE, 'acme', 'open'), { authorization: 'Basic eDp5' });
    expect(basic.status).toBe(401);

    // What is the same for everyone is answered before any credential is looked at: a health
    // check with a stale token passes, and a stylesheet does not end an unknown session (it
    // would, with a Set-Cookie, had the session been looked up).
    expect((await app.request('/healthz', { headers: bearer(old) })).status).toBe(200);
    for (const asset of STATIC_ASSETS) {
      const served = await app.request(`/static/${asset.name}`, {
        headers: { cookie: `${SESSION_COOKIE}=unknown` },
      });
      expect(served.status).toBe(200);
      expect(served.headers.get('set-cookie')).toBeNull();
    }
    const page = await app.request('/', { headers: { cookie: `${SESSION_COOKIE}=unknown` } });
    expect(page.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;`));
  });

  it('the tokens page makes and revokes tokens through forms, and refuses other origins', async () => {
    const { portal } = await signIn('dave', '/settings/tokens');
    const form = (body: Record<string, string>, origin = BASE) => ({
      method: 'POST',
      headers: {
        cookie: portal.header(),
        origin,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(body),
    });
    const made = await app.request(
      '/settings/tokens',
      form({ name: '<b>ci</b>', expiresInDays: '7' }),
    );
    expect(made.status).toBe(201);
    const page = await made.text();
    expect(page).toContain('&lt;b&gt;ci&lt;/b&gt;');
    const secret = /id="new-token">(cdk_[^<]+)</.exec(page)![1]!;
    expect((await get(portalUrls.repo(BASE, 'acme', 'secret'), bearer(secret))).status).toBe(200);
    const tokenId = /\/settings\/tokens\/(\d+)\/revoke/.exec(page)![1]!;

    // A page elsewhere cannot make the browser revoke it (CSRF).
    const forged = await app.request(
      `/settings/tokens/${tokenId}/revoke`,
      form({}, 'https://evil.example'),
    );
    expect(forged.status).toBe(403);
    expect((await get(portalUrls.repo(BASE, 'acme', 'secret'), bearer(secret))).status).toBe(200);

    const revoked = await app.request(`/settings/tokens/${tokenId}/revoke`, form({}));
    expect(revoked.status).toBe(303);
    expect((await get(portalUrls.repo(BASE, 'acme', 'secret'), bearer(secret))).status).toBe(401);
    // Anonymous visitors of the page are sent to sign in.
    const anonymous = await app.request('/settings/tokens');
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toBe(portalUrls.signIn(BASE, '/settings/tokens'));
  });

  it('redirect mode: a presigned link that downloads the file, honours Range and expires', async () => {
    const presigning = portalWith({
      // X-Amz-Date is whole seconds: a 4 s link is good for 3 s at least, time enough for the
      // two downloads on a busy machine.
      presign: { storage: createStorageClient(bucket.storage), seconds: 4 },
    });
    const url = portalUrls.releaseDownload(BASE, 'acme', 'open', 'v2.0.0', 'secret.deb');
    const answer = await presigning.request(path(url));
    expect(answer.status).toBe(302);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    const link = answer.headers.get('location')!;
    expect(link).toMatch(/X-Amz-Expires=4&/);
    const fetched = await fetch(link);
    expect(fetched.status).toBe(200);
    expect(fetched.headers.get('content-disposition')).toBe('attachment; filename="secret.deb"');
    expect(Buffer.from(await fetched.arrayBuffer()).equals(installer)).toBe(true);
    const part = await fetch(link, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(installer.subarray(10, 20))).toBe(true);
    // A private repository's link is given only with credentials.
    const privateUrl = portalUrls.releaseDownload(BASE, 'acme', 'secret', 'v2.0.0', 'secret.deb');
    expect((await presigning.request(path(privateUrl))).status).toBe(404);

    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const expired = await fetch(link);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('expired');
  });

  it('redirect mode with the page cache: one signature per burst and user, for a tenth of a link’s life', async () => {
    /** A portal presigning for `seconds` with a page cache of 60 s, and its signatures so far. */
    const presigningApp = (seconds: number) => {
      const signer = createStorageClient(bucket.storage);
      const signed: string[] = [];
      const sign = signer.presignedGetObject.bind(signer);
      signer.presignedGetObject = async (...args: Parameters<typeof sign>) => {
        const link = await sign(...args);
        signed.push(link);
        return link;
      };
      const portal = portalWith({
        presign: { storage: signer, seconds },
        pageCache: { ttlMs: 60_000 },
      });
      return { portal, signed };
    };
    const url = path(portalUrls.latestReleaseDownload(BASE, 'acme', 'open', 'secret.deb'));
    const privateUrl = path(portalUrls.latestReleaseDownload(BASE, 'acme', 'secret', 'secret.deb'));

    // Links valid 61 s: answers are kept 6 s, per user.
    const long = presigningApp(61);
    const burst = await Promise.all(Array.from({ length: 5 }, () => long.portal.request(url)));
    expect(burst.map((answer) => answer.status)).toEqual([302, 302, 302, 302, 302]);
    expect(long.signed).toHaveLength(1);
    expect(new Set(burst.map((answer) => answer.headers.get('location')))).toEqual(
      new Set(long.signed),
    );
    // A kept answer carries what the portal set: browsers and proxies still must not keep it.
    expect(burst[4]!.headers.get('cache-control')).toBe('no-store');
    expect(burst[4]!.headers.get('x-checksum-sha256')).toBe(
      createHash('sha256').update(installer).digest('hex'),
    );
    // A private repository's link: to each token holder, not to anonymous requests after them.
    const [erin, frank] = [await apiTokenOf('erin'), await apiTokenOf('frank')];
    for (const token of [erin, erin, frank, frank]) {
      const given = await long.portal.request(privateUrl, { headers: bearer(token) });
      expect(given.status).toBe(302);
    }
    expect(long.signed).toHaveLength(3);
    expect((await long.portal.request(privateUrl)).status).toBe(404);
    expect(long.signed).toHaveLength(3);

    // Links valid 3 s: answers are kept 200 ms; once the first link has expired, a download gets
    // a fresh one that works (for 2 s at least).
    const short = presigningApp(3);
    await short.portal.request(url);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await short.portal.request(url);
    expect(short.signed).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect((await fetch(short.signed[0]!)).status).toBe(403);
    const again = await short.portal.request(url);
    const fresh = again.headers.get('location')!;
    expect(short.signed).toHaveLength(3);
    expect(fresh).toBe(short.signed[2]);
    const fetched = await fetch(fresh);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(installer)).toBe(true);
  });
});
