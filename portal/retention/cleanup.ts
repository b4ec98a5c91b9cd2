import type { Client } from 'minio';
import type { Logger } from '../../core/logger';
import { retentionOf, type RetentionClass, type RetentionPolicy } from '../../core/retention';
import type { Database } from '../../db/client';
import {
  deleteBuildArtifacts,
  describeBuildArtifacts,
  dueBuilds,
  type BuildArtifacts,
  type DueBuild,
} from '../../db/queries/retention';

/**
 * Key of the PostgreSQL session advisory lock held while a cleanup runs, so that two portals (or
 * a portal and `npm run cleanup`) never run one at once. db/client.ts MIGRATION_LOCK is ...001.
 */
export const CLEANUP_LOCK = 7_340_552_002;

/** Builds read per query when no `batchSize` is given. */
export const DEFAULT_CLEANUP_BATCH_SIZE = 100;

export interface CleanupOptions {
  db: Database;
  /** The S3 store that holds the artifacts' objects. */
  storage: Client;
  bucket: string;
  log: Logger;
  /** The instant expiry is judged at; builds are due when their expiry is at or before it. */
  now: Date;
  /** Days each class is kept (portal/retention/config.ts). */
  policy: RetentionPolicy;
  /** Builds read per query (default DEFAULT_CLEANUP_BATCH_SIZE); every due build is visited. */
  batchSize?: number;
  /** Only report what would be deleted; delete nothing and take no lock. */
  dryRun?: boolean;
  /** Stops the run between two builds (e.g. when the portal shuts down). */
  signal?: AbortSignal;
}

/** One build whose artifacts were deleted (or, in a dry run, would be). */
export interface CleanedBuild {
  buildId: number;
  /** owner/name */
  repo: string;
  /** The ref as requested: pr-123, main, a sha. */
  ref: string;
  class: RetentionClass;
  /** When its artifacts expired. */
  expiresAt: Date | null;
  /** Artifact rows deleted. */
  artifacts: number;
  /** Objects removed from the store (fewer than rows when other builds still show some). */
  objects: number;
  /** Bytes of the objects removed. */
  bytes: number;
}

export interface CleanupResult {
  /** False when another cleanup held the lock: nothing was read or deleted. */
  ran: boolean;
  dryRun: boolean;
  /** Builds whose artifacts were deleted (would be, in a dry run), in id order. */
  cleaned: CleanedBuild[];
  /** Totals over `cleaned`: builds, artifact rows, objects and bytes freed. */
  builds: number;
  artifacts: number;
  objects: number;
  bytes: number;
  /** Builds whose objects could not be removed: their rows stay; the next run tries again. */
  failed: number;
}

/**
 * Removes `objectKeys` from `bucket` with S3 DeleteObjects (1000 per request). An object already
 * missing counts as removed (S3 and MinIO answer success for it; a NoSuchKey error is ignored
 * too). Throws an Error naming the first failure when the request fails (no such bucket, bad
 * credentials, store unreachable) or when the store refuses any object.
 */
export async function removeStoredObjects(
  storage: Client,
  bucket: string,
  objectKeys: string[],
): Promise<void> {
  if (objectKeys.length === 0) return;
  const answers: unknown[] = await storage.removeObjects(bucket, objectKeys);
  // minio's typings say { Error: {...} }; its parser returns the Error elements themselves.
  const failures = answers
    .map((answer) => {
      const entry = answer as { Error?: ObjectError } & ObjectError;
      return entry?.Error ?? entry;
    })
    .filter((entry): entry is ObjectError => Boolean(entry) && entry.Code !== 'NoSuchKey');
  if (failures.length > 0) {
    const first = failures[0]!;
    throw new Error(
      `the store refused to delete ${failures.length} of ${objectKeys.length} objects: ` +
        `${first.Code ?? 'error'} ${first.Message ?? ''} (${first.Key ?? '?'})`,
    );
  }
}

interface ObjectError {
  Code?: string;
  Message?: string;
  Key?: string;
}

/**
 * Deletes the artifacts of every build due at `now` (db/queries/retention.ts dueBuilds), oldest
 * first, in batches of `batchSize`. For each build: removes from the store the objects no kept
 * build shows, then deletes its artifact rows and sets `artifacts_deleted_at`, with the build's
 * row locked throughout and the deletes in one transaction (deleteBuildArtifacts): a build whose
 * objects cannot be removed keeps its rows, is logged (error) and counted in `failed`, and is due
 * again at the next run. The run holds a PostgreSQL session advisory lock (CLEANUP_LOCK): if
 * another run holds it, returns `ran: false` at once. A dry run takes no lock and deletes nothing.
 * Throws only database errors (connection lost, ...); the lock is released in any case.
 */
export async function runCleanup(options: CleanupOptions): Promise<CleanupResult> {
  const { db, log } = options;
  const result: CleanupResult = {
    ran: false,
    dryRun: options.dryRun ?? false,
    cleaned: [],
    builds: 0,
    artifacts: 0,
    objects: 0,
    bytes: 0,
    failed: 0,
  };
  if (result.dryRun) {
    result.ran = true;
    await visitDueBuilds(options, result);
    return result;
  }
  const connection = await db.$client.reserve();
  try {
    const [row] = await connection<{ locked: boolean }[]>`
      select pg_try_advisory_lock(${CLEANUP_LOCK}) as locked`;
    if (!row?.locked) {
      log.info('retention cleanup skipped: another one is running');
      return result;
    }
    try {
      result.ran = true;
      await visitDueBuilds(options, result);
    } finally {
      await connection`select pg_advisory_unlock(${CLEANUP_LOCK})`;
    }
  } finally {
    connection.release();
  }
  return result;
}

async function visitDueBuilds(options: CleanupOptions, result: CleanupResult): Promise<void> {
  const { db, now, policy } = options;
  const limit = options.batchSize ?? DEFAULT_CLEANUP_BATCH_SIZE;
  let afterId = 0;
  for (;;) {
    const batch = await dueBuilds(db, { now, policy, limit, afterId });
    for (const due of batch) {
      if (options.signal?.aborted) return;
      await cleanBuild(options, due, result);
    }
    if (batch.length < limit) return;
    afterId = batch.at(-1)!.build.id;
  }
}

async function cleanBuild(
  options: CleanupOptions,
  due: DueBuild,
  result: CleanupResult,
): Promise<void> {
  const { db, storage, bucket, now, policy } = options;
  const { build, repo } = due;
  const log = options.log.child({ buildId: build.id });
  let deleted: BuildArtifacts | undefined;
  if (result.dryRun) {
    deleted = await describeBuildArtifacts(db, build.id);
  } else {
    try {
      deleted = await deleteBuildArtifacts(db, build.id, { now, policy }, (keys) =>
        removeStoredObjects(storage, bucket, keys),
      );
    } catch (error) {
      result.failed += 1;
      log.error({ err: error }, 'deleting build artifacts failed; they are kept for the next run');
      return;
    }
    // Pinned meanwhile, or held by another cleanup.
    if (!deleted) return;
  }
  const info = retentionOf({ ...build, latestOfBranchFor: [], targets: [] }, policy);
  const cleaned: CleanedBuild = {
    buildId: build.id,
    repo: `${repo.owner}/${repo.name}`,
    ref: build.ref,
    class: info.class,
    expiresAt: info.expiresAt,
    artifacts: deleted.artifacts.length,
    objects: deleted.objectKeys.length,
    bytes: deleted.bytes,
  };
  result.cleaned.push(cleaned);
  result.builds += 1;
  result.artifacts += cleaned.artifacts;
  result.objects += cleaned.objects;
  result.bytes += cleaned.bytes;
  log.info(
    {
      class: cleaned.class,
      artifacts: cleaned.artifacts,
      objects: cleaned.objects,
      bytes: cleaned.bytes,
    },
    result.dryRun ? 'would delete build artifacts (dry run)' : 'build artifacts deleted',
  );
}

/** A running cleanup loop (startCleanupLoop). */
export interface CleanupLoop {
  /** Stops the loop: no run starts after it; a run in progress stops after its current build. */
  stop(): Promise<void>;
}

/**
 * Runs runCleanup at once and then `intervalMs` (> 0) after each run ends, with `now` from
 * `clock` (default: the system clock) at each run. Runs never overlap. A run that throws (the
 * database unreachable) is logged (error) and the next one tries again. Timers do not keep the
 * process alive.
 */
export function startCleanupLoop(
  options: Omit<CleanupOptions, 'now' | 'signal'> & { intervalMs: number; clock?: () => Date },
): CleanupLoop {
  if (!(options.intervalMs > 0)) throw new Error('startCleanupLoop: intervalMs must be > 0');
  const { log, intervalMs, clock = () => new Date() } = options;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const pass = () => {
    timer = undefined;
    running = runCleanup({ ...options, now: clock(), signal: abort.signal })
      .then((result) => {
        const { builds, artifacts, objects, bytes, failed, dryRun, ran } = result;
        const level = builds > 0 || failed > 0 ? 'info' : 'debug';
        log[level](
          { ran, dryRun, builds, artifacts, objects, bytes, failed },
          'retention cleanup done',
        );
      })
      .catch((error) => log.error({ err: error }, 'retention cleanup failed'))
      .finally(() => {
        running = undefined;
        if (!abort.signal.aborted) timer = setTimeout(pass, intervalMs).unref();
      });
  };
  timer = setTimeout(pass, 0).unref();
  return {
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
