import { Hono } from 'hono';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { getCookie } from 'hono/cookie';
import { SESSION_COOKIE, type PortalEnv, type Viewer } from './auth';
import { createPageCache } from './page-cache';

/**
 * A Hono app wired like the portal (portal/app.tsx): the cache's `anonymous` middleware first,
 * then a middleware that sets a header and counts the requests reaching it, then a stand-in for
 * the viewer middleware (`Authorization: Bearer N`, or a session cookie `crossdock_session=N`,
 * signs in as user N), then `signedIn`. Its one page counts its renderings.
 */
function countingApp(ttlMs: number) {
  const cache = createPageCache({ ttlMs });
  const app = new Hono<PortalEnv>();
  let renderings = 0;
  let throughChain = 0;
  let fail = false;
  for (const path of ['/page', '/private']) app.get(path, cache.anonymous);
  app.use(async (c, next) => {
    throughChain += 1;
    await next();
    c.header('X-Frame-Options', 'DENY');
  });
  app.use(async (c, next) => {
    const credential =
      c.req.header('authorization')?.replace(/^Bearer /, '') ?? getCookie(c, SESSION_COOKIE);
    c.set('viewer', credential ? ({ user: { id: Number(credential) } } as Viewer) : undefined);
    await next();
  });
  for (const path of ['/page', '/private']) app.get(path, cache.signedIn);
  app.get('/page', async (c) => {
    renderings += 1;
    await new Promise((resolve) => setTimeout(resolve, 30));
    if (fail) throw new Error('rendering failed');
    return c.text(`rendering ${renderings} for ${c.get('viewer')?.user.id ?? 'anonymous'}`);
  });
  for (const path of ['/big', '/small']) {
    app.get(path, cache.anonymous);
    app.get(path, (c) => {
      renderings += 1;
      return c.html(path === '/big' ? BIG_PAGE : '<p>small</p>');
    });
  }
  app.get('/private', (c) => {
    renderings += 1;
    c.header('Cache-Control', 'no-store');
    return c.text('secret');
  });
  app.onError((_error, c) => c.text('error', 500));
  return {
    app,
    renderings: () => renderings,
    throughChain: () => throughChain,
    failNext: (value: boolean) => {
      fail = value;
    },
  };
}

/** A page big enough to be sent compressed. */
const BIG_PAGE = `<!doctype html><table>${'<tr><td>amd64</td><td>widget.deb</td></tr>'.repeat(200)}</table>`;

describe('page cache', () => {
  it('renders a page once for a burst of requests and serves it again until it is old', async () => {
    const { app, renderings } = countingApp(300);
    const answers = await Promise.all(
      Array.from({ length: 20 }, async () => (await app.request('/page')).text()),
    );
    expect(new Set(answers)).toEqual(new Set(['rendering 1 for anonymous']));
    expect(renderings()).toBe(1);
    expect(await (await app.request('/page')).text()).toBe('rendering 1 for anonymous');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await (await app.request('/page')).text()).toBe('rendering 2 for anonymous');
  });

  it('answers anonymous requests before the rest of the chain, with the headers it set', async () => {
    const { app, renderings, throughChain } = countingApp(10_000);
    const first = await app.request('/page');
    expect(await first.text()).toBe('rendering 1 for anonymous');
    for (let i = 0; i < 5; i++) {
      const again = await app.request('/page', { headers: { Cookie: 'theme=dark' } });
      expect(again.status).toBe(200);
      expect(await again.text()).toBe('rendering 1 for anonymous');
      expect(again.headers.get('x-frame-options')).toBe('DENY');
      expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(again.headers.get('content-length')).toBe('25');
    }
    expect({ renderings: renderings(), throughChain: throughChain() }).toEqual({
      renderings: 1,
      throughChain: 1,
    });
  });

  it('keeps answers apart per signed-in user, by token or by session cookie', async () => {
    const { app } = countingApp(10_000);
    const text = async (headers: Record<string, string> = {}) =>
      (await app.request('/page', { headers })).text();
    expect(await text()).toBe('rendering 1 for anonymous');
    expect(await text({ Authorization: 'Bearer 7' })).toBe('rendering 2 for 7');
    expect(await text({ Cookie: `${SESSION_COOKIE}=8` })).toBe('rendering 3 for 8');
    expect(await text({ Cookie: `theme=dark; ${SESSION_COOKIE}=7` })).toBe('rendering 2 for 7');
    expect(await text()).toBe('rendering 1 for anonymous');
  });

  it('keeps no answer marked no-store, nor a failed one', async () => {
    const { app, renderings, failNext } = countingApp(10_000);
    await app.request('/private');
    await app.request('/private');
    expect(renderings()).toBe(2);
    failNext(true);
    const failed = await Promise.all([app.request('/page'), app.request('/page')]);
    expect(failed.map((response) => response.status)).toEqual([500, 500]);
    failNext(false);
    expect((await app.request('/page')).status).toBe(200);
  });

  it('sends a kept page compressed as Accept-Encoding asks, coded once', async () => {
    const { app, renderings } = countingApp(10_000);
    const get = (path: string, acceptEncoding?: string) =>
      app.request(path, {
        headers: acceptEncoding === undefined ? {} : { 'Accept-Encoding': acceptEncoding },
      });
    const bytes = async (response: Response) => Buffer.from(await response.arrayBuffer());
    const plain = await get('/big', 'gzip, deflate, br');
    // The request that rendered gets the page as the cache keeps it.
    expect(plain.headers.get('vary')).toBe('Accept-Encoding');

    const cases = [
      { accept: undefined, encoding: null },
      { accept: 'identity', encoding: null },
      { accept: 'gzip', encoding: 'gzip' },
      { accept: 'gzip, deflate, br, zstd', encoding: 'br' },
      { accept: 'br;q=0, gzip;q=0.8', encoding: 'gzip' },
      { accept: 'br;q=0.5, gzip;q=1', encoding: 'gzip' },
      { accept: 'zstd', encoding: null },
    ];
    for (const { accept, encoding } of cases) {
      const response = await get('/big', accept);
      const body = await bytes(response);
      const decoded =
        encoding === 'br'
          ? brotliDecompressSync(body)
          : encoding === 'gzip'
            ? gunzipSync(body)
            : body;
      expect({ accept, encoding: response.headers.get('content-encoding') }).toEqual({
        accept,
        encoding,
      });
      expect(decoded.toString('utf8')).toBe(BIG_PAGE);
      expect(response.headers.get('content-length')).toBe(String(body.byteLength));
      expect(response.headers.get('vary')).toBe('Accept-Encoding');
      if (encoding) expect(body.byteLength).toBeLessThan(BIG_PAGE.length / 10);
    }
    expect(renderings()).toBe(1);

    // A small page is sent as it is.
    await get('/small', 'gzip');
    const small = await get('/small', 'gzip');
    expect(small.headers.get('content-encoding')).toBeNull();
    expect(small.headers.get('vary')).toBeNull();
    expect(await small.text()).toBe('<p>small</p>');
  });

  it("with keep: 'redirects', keeps 302 answers with a Location only", async () => {
    const cache = createPageCache({ ttlMs: 10_000, keep: 'redirects' });
    const app = new Hono<PortalEnv>();
    let lookups = 0;
    app.get('/download/:name', cache.anonymous);
    app.get('/download/:name', (c) => {
      lookups += 1;
      const name = c.req.param('name');
      if (name === 'missing') return c.notFound();
      if (name === 'streamed') return c.body('the bytes');
      if (name === 'signing-in') c.header('Set-Cookie', 'state=1');
      c.header('Cache-Control', 'no-store');
      return c.redirect(`https://store.example/${name}?signature=${lookups}`, 302);
    });
    const twice = async (name: string) => {
      const before = lookups;
      const answers = [
        await app.request(`/download/${name}`),
        await app.request(`/download/${name}`),
      ];
      return { answers, lookups: lookups - before };
    };
    const kept = await twice('installer.deb');
    expect(kept.lookups).toBe(1);
    for (const answer of kept.answers) {
      expect(answer.status).toBe(302);
      expect(answer.headers.get('location')).toBe(
        'https://store.example/installer.deb?signature=1',
      );
      expect(answer.headers.get('cache-control')).toBe('no-store');
    }
    for (const name of ['missing', 'streamed', 'signing-in'])
      expect((await twice(name)).lookups).toBe(2);
    // HEAD requests are not answered from the cache.
    await app.request('/download/installer.deb', { method: 'HEAD' });
    expect(lookups).toBe(kept.lookups + 6 + 1);
  });

  it('answers once when a URL matches several routes it is registered for', async () => {
    const cache = createPageCache({ ttlMs: 10_000 });
    const app = new Hono<PortalEnv>();
    let renderings = 0;
    for (const path of ['/builds/:id', '/:owner/:repo']) app.get(path, cache.anonymous);
    app.use(async (c, next) => {
      c.set('viewer', c.req.header('authorization') ? ({ user: { id: 1 } } as Viewer) : undefined);
      await next();
    });
    for (const path of ['/builds/:id', '/:owner/:repo']) app.get(path, cache.signedIn);
    app.get('/builds/:id', (c) => c.text(`build ${c.req.param('id')}, rendering ${++renderings}`));
    for (const headers of [{}, { Authorization: 'Bearer 1' }] as Record<string, string>[]) {
      const answers = [await app.request('/builds/7', { headers })];
      answers.push(await app.request('/builds/7', { headers }));
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      expect(new Set(await Promise.all(answers.map((answer) => answer.text()))).size).toBe(1);
    }
    expect(renderings).toBe(2);
  });

  it('keeps answers to credentials that sign nobody in apart from anonymous ones', async () => {
    const cache = createPageCache({ ttlMs: 10_000 });
    const app = new Hono<PortalEnv>();
    app.get('/page', cache.anonymous);
    // As secureHeaders does: its headers are added once the rest of the chain has answered.
    app.use(async (c, next) => {
      await next();
      c.header('Content-Security-Policy', "default-src 'none'");
    });
    app.use(async (c, next) => {
      c.set('viewer', undefined);
      await next();
    });
    app.get('/page', cache.signedIn);
    app.get('/page', (c) => c.text('public page'));
    // A cookie that only mentions the session cookie's name passes `anonymous` by, signs nobody
    // in, and is answered first: that answer must not become the anonymous one.
    const odd = await app.request('/page', { headers: { Cookie: `x=${SESSION_COOKIE}` } });
    expect(odd.headers.get('content-security-policy')).toBe("default-src 'none'");
    const anonymous = await app.request('/page');
    expect(anonymous.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(await anonymous.text()).toBe('public page');
  });
});
