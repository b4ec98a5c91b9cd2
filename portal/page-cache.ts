import type { Context, MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import type { PortalEnv } from './auth';

/** A rendered answer, kept to be sent again. */
interface CachedAnswer {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
}

/** How the portal micro-caches rendered pages (docs/portal.md "Page cache"). */
export interface PageCacheOptions {
  /** How long, in ms, a rendered answer is served again; after that it is rendered anew. */
  ttlMs: number;
  /** At most this many answers are kept (least recently used go first). Default 500. */
  maxEntries?: number;
}

/**
 * A micro-cache of rendered GET answers (nginx's "microcaching"): an answer is served again for
 * `ttlMs`, keyed by URL and by who asks (anonymous, or the signed-in user's id: pages name the
 * user and private repositories differ). Concurrent requests for an answer not yet cached wait
 * for one rendering (lru-cache `fetch` deduplicates them), so a burst of requests costs one
 * rendering per key and period; if that rendering fails, each waiting request renders on its own.
 * Only 200 answers without `Set-Cookie` and not marked
 * `no-store` are kept. Pages are thus up to `ttlMs` old; live pages (logs) follow events
 * instead and are not wrapped.
 */
export function createPageCache(options: PageCacheOptions) {
  const cache = new LRUCache<string, CachedAnswer, Context<PortalEnv>>({
    max: options.maxEntries ?? 500,
    ttl: options.ttlMs,
    fetchMethod: async (_key, _stale, { context }) => render(context),
  });
  /** Set by the middleware for the duration of one rendering. */
  const pending = new WeakMap<Context<PortalEnv>, () => Promise<void>>();
  async function render(c: Context<PortalEnv>): Promise<CachedAnswer | undefined> {
    await pending.get(c)!();
    const response = c.res;
    const body = await response.clone().arrayBuffer();
    const cacheable =
      response.status === 200 &&
      !response.headers.has('set-cookie') &&
      !/no-store/.test(response.headers.get('cache-control') ?? '');
    return cacheable ? { status: 200, headers: [...response.headers], body } : undefined;
  }

  /** The middleware for the routes to cache; GET only. */
  const middleware: MiddlewareHandler<PortalEnv> = async (c, next) => {
    if (c.req.method !== 'GET') return next();
    const key = `${c.get('viewer')?.user.id ?? '-'} ${c.req.url}`;
    let rendered = false;
    pending.set(c, async () => {
      rendered = true;
      await next();
    });
    let answer: CachedAnswer | undefined;
    try {
      answer = await cache.fetch(key, { context: c });
    } catch (error) {
      if (rendered) throw error;
    }
    // This request rendered (its own answer is in c.res), or the cache had nothing to give.
    if (rendered) return;
    if (!answer) return next();
    // Making a body of an ArrayBuffer copies it (Fetch "extract a body"): the kept one stays whole.
    c.res = new Response(answer.body, {
      status: answer.status,
      headers: answer.headers,
    });
  };
  return { middleware, clear: () => cache.clear() };
}
