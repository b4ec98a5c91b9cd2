import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import type { Context, MiddlewareHandler } from 'hono';
import { LRUCache } from 'lru-cache';
import Negotiator from 'negotiator';
import { SESSION_COOKIE, type PortalEnv } from './auth';

/** The content codings a kept answer is sent in (RFC 9110 §8.4.1), best first. */
const ENCODINGS = ['br', 'gzip', 'identity'] as const;
type Encoding = (typeof ENCODINGS)[number];

/** Answers smaller than this, in bytes, are always sent as they are: coding would not pay. */
const MIN_COMPRESSED_BYTES = 1024;

/** A rendered answer, kept to be sent again. */
interface CachedAnswer {
  status: number;
  /** Lower-case names; never Set-Cookie (such answers are not kept), so one value per name. */
  headers: Record<string, string>;
  body: Uint8Array;
  /** The body coded in `br` or `gzip`, made when first asked for. */
  coded: Partial<
    Record<Exclude<Encoding, 'identity'>, { body: Uint8Array; headers: Record<string, string> }>
  >;
}

/** How the portal micro-caches rendered pages (docs/portal.md "Page cache"). */
export interface PageCacheOptions {
  /** How long, in ms, a rendered answer is served again; after that it is rendered anew. */
  ttlMs: number;
  /** At most this many answers are kept (least recently used go first). Default 500. */
  maxEntries?: number;
  /**
   * Which answers are kept. `pages` (the default): 200 answers not marked `no-store`.
   * `redirects`: 302 answers with a Location (downloads sent to presigned URLs); their
   * `no-store` tells browsers and proxies not to keep a link that expires, not this cache, whose
   * `ttlMs` must be a small part of the link's life.
   */
  keep?: 'pages' | 'redirects';
}

/** The key of anonymous answers, which every request without credentials shares. */
const ANONYMOUS = '-';
/**
 * The key of answers to requests that carried credentials that signed nobody in (a cookie that
 * only mentions the session cookie's name): kept apart from ANONYMOUS, since `signedIn` keeps
 * answers without the headers that middleware before it adds on the way out.
 */
const NOBODY = '?';

/**
 * Whether a request carries no credentials at all: no Authorization header and no session
 * cookie. Such a request is answered as anonymous whatever else it carries (portal/auth.ts
 * `viewerMiddleware`), so its answer depends on its URL only.
 */
function isAnonymous(c: Context<PortalEnv>): boolean {
  if (c.req.header('authorization') !== undefined) return false;
  const cookie = c.req.header('cookie');
  return cookie === undefined || !cookie.includes(SESSION_COOKIE);
}

/**
 * The coding to send a kept answer in, by the request's Accept-Encoding (RFC 9110 §12.5.3, with
 * q-values, read by `negotiator`): Brotli, else gzip, else as it is; of codings the client
 * weighs alike, Brotli first.
 */
function encodingFor(c: Context<PortalEnv>): Encoding {
  const accepted = c.req.header('accept-encoding');
  if (accepted === undefined) return 'identity';
  // negotiator 1.x orders codings of equal q by `preferred` (browsers list gzip before br);
  // @types/negotiator 0.6 lacks that argument.
  const negotiator = new Negotiator({ headers: { 'accept-encoding': accepted } }) as unknown as {
    encoding(available: readonly string[], options: { preferred: readonly string[] }): string;
  };
  return (
    (negotiator.encoding(ENCODINGS, { preferred: ENCODINGS }) as Encoding | undefined) ?? 'identity'
  );
}

/** `body` coded in `encoding`: Brotli at quality 5 (fast, yet smaller than gzip), gzip level 6. */
function encode(body: Uint8Array, encoding: Exclude<Encoding, 'identity'>): Uint8Array {
  return encoding === 'br'
    ? brotliCompressSync(body, {
        params: {
          [zlib.BROTLI_PARAM_QUALITY]: 5,
          [zlib.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
        },
      })
    : gzipSync(body);
}

/**
 * A micro-cache of rendered GET answers (nginx's "microcaching"): an answer is served again for
 * `ttlMs`, keyed by URL and by who asks (anonymous, or the signed-in user's id: pages name the
 * user and private repositories differ). Concurrent requests for an answer not yet cached wait
 * for one rendering (lru-cache `fetch` deduplicates them), so a burst of requests costs one
 * rendering per key and period; if that rendering fails, each waiting request renders on its own.
 * Only answers without `Set-Cookie` are kept, with every header the portal's middleware set:
 * 200 answers not marked `no-store`, or with `keep: 'redirects'` only 302 answers. Pages are
 * thus up to `ttlMs` old; live pages (logs) follow events instead and are not wrapped.
 *
 * A kept answer of 1 KiB or more is sent compressed to clients that accept it (Brotli or gzip,
 * by Accept-Encoding, with `Vary: Accept-Encoding`), coded once per rendering.
 *
 * Two middlewares share the cache, for the same routes:
 * - `anonymous`, first in the chain: requests without credentials get a kept answer before any
 *   other middleware runs (most traffic: public pages, scripts without tokens);
 * - `signedIn`, after portal/auth.ts `viewerMiddleware`: requests with a token or a session
 *   cookie, keyed by the user they authenticate as.
 */
export function createPageCache(options: PageCacheOptions) {
  const cache = new LRUCache<string, CachedAnswer, Context<PortalEnv>>({
    max: options.maxEntries ?? 500,
    ttl: options.ttlMs,
    fetchMethod: async (_key, _stale, { context }) => render(context),
  });
  const keepRedirects = options.keep === 'redirects';
  /** Set by the middleware for the duration of one rendering. */
  const pending = new WeakMap<Context<PortalEnv>, () => Promise<void>>();
  async function render(c: Context<PortalEnv>): Promise<CachedAnswer | undefined> {
    await pending.get(c)!();
    const response = c.res;
    const cacheable =
      !response.headers.has('set-cookie') &&
      !response.headers.has('content-encoding') &&
      (keepRedirects
        ? response.status === 302 && response.headers.has('location')
        : response.status === 200 && !/no-store/.test(response.headers.get('cache-control') ?? ''));
    if (!cacheable) return undefined;
    const body = new Uint8Array(await response.clone().arrayBuffer());
    const headers = Object.fromEntries(response.headers);
    headers['content-length'] = String(body.byteLength);
    if (body.byteLength >= MIN_COMPRESSED_BYTES)
      headers['vary'] = headers['vary'] ? `${headers['vary']}, Accept-Encoding` : 'Accept-Encoding';
    return { status: response.status, headers, body, coded: {} };
  }

  /**
   * A kept answer as a Response, coded as `encoding` asks when it is big enough. A Uint8Array
   * body and plain headers with Content-Length: @hono/node-server writes them as they are. A
   * body is never written to, so every hit can share the kept one.
   */
  function responseOf(kept: CachedAnswer, encoding: Encoding) {
    if (encoding === 'identity' || kept.body.byteLength < MIN_COMPRESSED_BYTES)
      return new Response(kept.body, { status: kept.status, headers: kept.headers });
    let coded = kept.coded[encoding];
    if (!coded) {
      const body = encode(kept.body, encoding);
      coded = {
        body,
        headers: {
          ...kept.headers,
          'content-encoding': encoding,
          'content-length': String(body.byteLength),
        },
      };
      kept.coded[encoding] = coded;
    }
    return new Response(coded.body, { status: kept.status, headers: coded.headers });
  }

  /** Answers from the cache under `key`, rendering (the rest of the chain) when it has none. */
  async function answer(c: Context<PortalEnv>, key: string, next: () => Promise<void>) {
    let rendered = false;
    pending.set(c, async () => {
      rendered = true;
      await next();
    });
    let kept: CachedAnswer | undefined;
    try {
      kept = await cache.fetch(key, { context: c });
    } catch (error) {
      if (rendered) throw error;
    }
    if (!kept) {
      // This request rendered an answer not to keep (it is in c.res), or the cache had none.
      return rendered ? undefined : next();
    }
    // The request that rendered is answered like the others (Hono keeps the Response a
    // middleware returns only if nothing downstream answered, so it is set).
    c.res = responseOf(kept, encodingFor(c));
    return undefined;
  }

  // A URL may match several of the routes a middleware is registered for: only the first
  // registration answers (pending: a rendering of this request is under way).
  const anonymous: MiddlewareHandler<PortalEnv> = async (c, next) => {
    if (c.req.method !== 'GET' || pending.has(c) || !isAnonymous(c)) return next();
    const key = `${ANONYMOUS} ${c.req.url}`;
    // A fresh answer is there most of the time: taken without waiting.
    const kept = cache.get(key);
    if (kept) return responseOf(kept, encodingFor(c));
    return answer(c, key, next);
  };
  const signedIn: MiddlewareHandler<PortalEnv> = async (c, next) => {
    if (c.req.method !== 'GET' || pending.has(c) || isAnonymous(c)) return next();
    return answer(c, `${c.get('viewer')?.user.id ?? NOBODY} ${c.req.url}`, next);
  };
  return { anonymous, signedIn };
}
