import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { PortalEnv, Viewer } from './auth';
import { createPageCache } from './page-cache';

/** A Hono app whose one page counts its renderings; `?user=N` signs in as user N. */
function countingApp(ttlMs: number) {
  const cache = createPageCache({ ttlMs });
  const app = new Hono<PortalEnv>();
  let renderings = 0;
  let fail = false;
  app.use(async (c, next) => {
    const user = c.req.query('user');
    c.set('viewer', user ? ({ user: { id: Number(user) } } as Viewer) : undefined);
    await next();
  });
  app.get('/page', cache.middleware);
  app.get('/page', async (c) => {
    renderings += 1;
    await new Promise((resolve) => setTimeout(resolve, 30));
    if (fail) throw new Error('rendering failed');
    return c.text(`rendering ${renderings} for ${c.get('viewer')?.user.id ?? 'anonymous'}`);
  });
  app.get('/private', cache.middleware);
  app.get('/private', (c) => {
    renderings += 1;
    c.header('Cache-Control', 'no-store');
    return c.text('secret');
  });
  app.onError((_error, c) => c.text('error', 500));
  return {
    app,
    renderings: () => renderings,
    failNext: (value: boolean) => {
      fail = value;
    },
  };
}

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

  it('keeps answers apart per signed-in user', async () => {
    const { app } = countingApp(10_000);
    expect(await (await app.request('/page')).text()).toBe('rendering 1 for anonymous');
    expect(await (await app.request('/page?user=7')).text()).toBe('rendering 2 for 7');
    expect(await (await app.request('/page')).text()).toBe('rendering 1 for anonymous');
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
});
