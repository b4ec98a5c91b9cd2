import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A file under portal/static/, read once, served at `/static/<name>`. */
export interface StaticAsset {
  /** File name, e.g. `portal.css`; served at `/static/<name>`. */
  name: string;
  contentType: string;
  body: string;
  /** The first 12 hex digits of the body's SHA-256: the `?v=` of its URL. */
  version: string;
  /**
   * Its URL under the portal's public `base`, with `?v=<version>`: a new body gets a new URL,
   * so browsers may keep one for a year (`Cache-Control: immutable`).
   */
  url(base: string): string;
}

function staticAsset(name: string, contentType: string): StaticAsset {
  const body = readFileSync(new URL(`./static/${name}`, import.meta.url), 'utf8');
  const version = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return {
    name,
    contentType,
    body,
    version,
    url: (base) => `${base}/static/${name}?v=${version}`,
  };
}

/** The portal's one script (progressive enhancement: live logs, copy buttons). */
export const PORTAL_SCRIPT = staticAsset('portal.js', 'text/javascript; charset=utf-8');
/** The portal's style sheet. */
export const PORTAL_STYLE = staticAsset('portal.css', 'text/css; charset=utf-8');
/** Every static asset, to serve. */
export const STATIC_ASSETS = [PORTAL_SCRIPT, PORTAL_STYLE];

/**
 * How long a browser may keep `asset` when asked with `version` (the request's `?v=`): a year
 * and immutable when it is the current one (RFC 8246), else five minutes (an old page asking for
 * an old version, or no version).
 */
export function assetCacheControl(asset: StaticAsset, version: string | undefined): string {
  return version === asset.version ? 'public, max-age=31536000, immutable' : 'public, max-age=300';
}
