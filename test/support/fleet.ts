import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBuild, getBuild, type NewJob } from '../../db/queries/builds';
import type { JobSpec } from '../../db/schema';
import { waitFor } from '../fakes/http';
import { connect } from '../../db/client';
import type { StorageOptions } from '../../core/storage';
import { makeRepository } from './repository';
import { createTestBucket, createTestDatabase, type TestDatabase } from './services';
import {
  containersOf,
  removeContainersOf,
  spawnWorker,
  stopProcess,
  storageEnvOf,
} from './processes';

export { containersOf };

/** The builder image deploy/setup.sh builds. */
export const BUILDER_IMAGE = 'crossdock/builder-debian:bookworm';

/** A target of a test job: a script and what it produces; everything else has defaults. */
export interface TestTarget extends Partial<JobSpec> {
  script: string;
  platform?: string;
  labels?: string[];
  maxInfraFailures?: number;
}

type SpawnedWorker = ReturnType<typeof spawnWorker>;

/** A database the caller made (and drops): only the connection is closed at the end. */
function ownDatabase(url: string): TestDatabase {
  const db = connect(url, { max: 5 });
  return { url, db, drop: () => db.$client.end({ timeout: 5 }) };
}

/**
 * Workers against a fresh database and bucket (or the given database and S3 endpoint), building a one-commit git repository: for tests of
 * the worker fleet that need no front end. Jobs are queued straight into the database. `close()`
 * kills the workers, removes their containers and drops what it made; `leftoverContainers()`
 * and `leftoverRunDirectories()` let a test check it left none behind first.
 */
export async function startFleet(options: { databaseUrl?: string; storage?: StorageOptions } = {}) {
  const database = options.databaseUrl
    ? ownDatabase(options.databaseUrl)
    : await createTestDatabase();
  const bucket = await createTestBucket(options.storage);
  const workDir = mkdtempSync(join(tmpdir(), 'crossdock-fleet-'));
  const { cloneUrl, sha } = makeRepository(workDir);
  const workers: SpawnedWorker[] = [];

  return {
    database,
    db: database.db,
    bucket,
    sha,
    workers,

    /** Starts a worker process; `env` overrides the test defaults (heartbeat 3 s, poll 1 s). */
    spawnWorker(env: Record<string, string> = {}): SpawnedWorker {
      const worker = spawnWorker({
        DATABASE_URL: database.url,
        ...storageEnvOf(bucket.storage),
        WORKER_WORK_DIR: join(workDir, 'work'),
        WORKER_HEARTBEAT_SECONDS: '3',
        WORKER_POLL_SECONDS: '1',
        WORKER_PLATFORMS: 'linux/amd64',
        WORKER_EMULATED_PLATFORMS: '',
        ...env,
      });
      workers.push(worker);
      return worker;
    },

    /** Queues a build of the repository's commit with one job per target; returns it. */
    async queue(
      targets: Record<string, TestTarget>,
      options: { ref?: string; trusted?: boolean; pullNumber?: number } = {},
    ) {
      const jobs: NewJob[] = Object.entries(targets).map(([target, spec]) => ({
        target,
        platform: spec.platform ?? 'linux/amd64',
        toolchains: ['native'],
        image: BUILDER_IMAGE,
        labels: spec.labels,
        maxInfraFailures: spec.maxInfraFailures,
        spec: {
          script: spec.script,
          artifacts: spec.artifacts ?? [],
          env: spec.env ?? {},
          network: spec.network ?? false,
          timeoutMinutes: spec.timeoutMinutes ?? 5,
          secrets: spec.secrets,
          resources: spec.resources,
          caches: spec.caches,
        },
      }));
      return createBuild(database.db, {
        repo: { owner: 'test', name: 'fleet', cloneUrl, source: 'git' },
        sha,
        ref: options.ref ?? 'main',
        branch: 'main',
        trusted: options.trusted,
        pullNumber: options.pullNumber,
        trigger: 'api',
        requester: 'test',
        recipeDigest: `${Date.now()}-${Math.random()}`,
        jobs,
      });
    },

    /** Waits until `check` accepts the build's jobs; returns the build. */
    async waitForBuild(
      buildId: number,
      what: string,
      check: (build: NonNullable<Awaited<ReturnType<typeof getBuild>>>) => boolean,
      timeoutMs = 60_000,
    ) {
      return waitFor(
        what,
        async () => {
          const build = await getBuild(database.db, buildId);
          return build && check(build) ? build : undefined;
        },
        timeoutMs,
      );
    },

    /** Containers any of this fleet's workers made that still exist. */
    leftoverContainers(): string[] {
      return containersOf(workers.map((worker) => worker.workerId));
    },

    /** The attempts' run directories (sources and /out) still in the workers' work directory. */
    leftoverRunDirectories(): string[] {
      try {
        return readdirSync(join(workDir, 'work', 'runs'));
      } catch {
        return [];
      }
    },

    async close() {
      await Promise.all(workers.map((worker: ChildProcess) => stopProcess(worker, 15_000)));
      removeContainersOf(workers.map((worker) => worker.workerId));
      await database.drop();
      await bucket.remove();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export type Fleet = Awaited<ReturnType<typeof startFleet>>;
