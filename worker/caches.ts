import { createHash } from 'node:crypto';
import { CACHE_KINDS, type CacheKind } from '../core/recipe';

/** A cache volume of one job: its Docker volume name, where it is mounted, and its variables. */
export interface CacheMount {
  /**
   * The named volume kept between builds; undefined for an untrusted build, which gets an empty
   * anonymous volume removed with its container, so that nothing it writes is ever read again.
   */
  volume?: string;
  path: string;
  env: Record<string, string>;
  /** Labels of the volume: io.crossdock.cache and who it belongs to. */
  labels: Record<string, string>;
}

const slug = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40);

/**
 * The cache volumes of a job: one per cache the recipe names (CACHE_KINDS or an absolute path),
 * named by repository + target + cache for trusted builds. Builds of untrusted code (a fork's pull
 * request) never write a kept cache: theirs are empty scratch volumes (no `volume` name), so one
 * fork cannot poison the cache another build reads. Names are
 * `crossdock-cache-<repo>-<target>-<trusted|untrusted>-<cache>-<12 hex>`, the hex a sha256 of
 * the exact parts so that two that slug alike stay apart (Docker's volume names allow
 * [a-zA-Z0-9][a-zA-Z0-9_.-]*).
 */
export function cacheMounts(scope: {
  repository: string;
  target: string;
  trusted: boolean;
  caches: string[];
}): CacheMount[] {
  const trust = scope.trusted ? 'trusted' : 'untrusted';
  return scope.caches.map((cache) => {
    const kind = CACHE_KINDS[cache as CacheKind];
    const path = kind?.path ?? cache;
    const hash = createHash('sha256')
      .update(JSON.stringify([scope.repository, scope.target, trust, cache]))
      .digest('hex')
      .slice(0, 12);
    return {
      volume: scope.trusted
        ? ['crossdock-cache', slug(scope.repository), slug(scope.target), trust, slug(cache), hash]
            .filter(Boolean)
            .join('-')
        : undefined,
      path,
      env: { ...(kind?.env ?? {}) },
      labels: {
        'io.crossdock.cache': cache,
        'io.crossdock.repository': scope.repository,
        'io.crossdock.target': scope.target,
        'io.crossdock.trust': trust,
      },
    };
  });
}
