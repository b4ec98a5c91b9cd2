import { randomBytes } from 'node:crypto';
import { eq, inArray } from 'drizzle-orm';
import type { Client } from 'minio';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../core/logger';
import { DEFAULT_RETENTION_POLICY, isExpired, type RetentionPolicy } from '../../core/retention';
import { createStorageClient } from '../../core/storage';
import type { Database } from '../../db/client';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { createBuild, getBuild, type NewBuild, type NewJob } from '../../db/queries/builds';
import { cancelBuild, claimJob, completeJob, setJobImageDigest } from '../../db/queries/jobs';
import {
  deleteBuildArtifacts,
  dueBuilds,
  expiriesOf,
  setBuildPinned,
} from '../../db/queries/retention';
import { registerWorker } from '../../db/queries/workers';
import { artifacts, builds } from '../../db/schema';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import { portalBuildRequest, uploadArtifacts } from '../../test/support/portal-builds';
import { workerRegistration } from '../../test/support/queue';
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../../test/support/services';
import {
  CLEANUP_LOCK,
  removeStoredObjects,
  runCleanup,
  startCleanupLoop,
  type CleanupOptions,
} from './cleanup';

const DAY = 86_400_000;
/** The instant the tests call "now": builds are backdated from it, and the cleanup runs at it. */
const NOW = new Date();
const daysAgo = (days: number) => new Date(NOW.getTime() - days * DAY);
const later = (days: number) => new Date(NOW.getTime() + days * DAY);
const IMAGE = 'crossdock/builder-debian:bookworm';
const DIGEST = 'sha256:builder-of-the-test';

const job = (target: string, platform: string): NewJob => ({
  target,
  platform,
  toolchains: ['native'],
  image: IMAGE,
  spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
});
const JOBS = [job('amd64', 'linux/amd64'), job('arm64', 'linux/arm64')];

let requests = 0;
/** A request of acme/`repo` at a fresh sha (unless given one), both targets. */
const request = (repo: string, overrides: Partial<NewBuild>): NewBuild => {
  requests += 1;
  const sha = `${randomBytes(4).toString('hex')}${requests.toString(16)}`.padStart(40, 'e');
  return portalBuildRequest(repo, sha, { jobs: JOBS, ...overrides });
};
const pull = (number: number) => ({ ref: `pr-${number}`, pullNumber: number, branch: 'feature' });
const branch = (name: string) => ({ ref: name, branch: name });
const tag = (name: string) => ({ ref: name, tag: name, trigger: 'tag' as const });

type Outcome = 'succeeded' | 'failed';

/** A test's own database and bucket, and helpers over them; dropped after the test. */
interface World {
  db: Database;
  database: TestDatabase;
  bucket: TestBucket;
  /** A logger whose lines (parsed JSON) are kept in `lines`. */
  log: Logger;
  lines: { level: number; msg: string; buildId?: number }[];
  /**
   * Stores `input`, runs each job to `outcomes[target]` (default succeeded) with one file per
   * succeeded job uploaded first, and backdates the build's finish to `finishedDaysAgo` days
   * before NOW. Returns the build id and its objects' keys.
   */
  finished(
    input: NewBuild,
    finishedDaysAgo: number,
    outcomes?: Record<string, Outcome>,
  ): Promise<{ id: number; keys: string[]; bytes: number }>;
  /** Whether the object `key` is in the bucket (statObject). */
  stored(key: string, client?: Client): Promise<boolean>;
  /** The artifact rows of a build's jobs. */
  rows(buildId: number): Promise<{ objectKey: string }[]>;
  deletedAt(buildId: number): Promise<Date | null>;
  cleanup(overrides?: Partial<CleanupOptions>): ReturnType<typeof runCleanup>;
}

const teardowns: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(teardowns.splice(0).map((teardown) => teardown()));
});

async function world(): Promise<World> {
  const [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
  teardowns.push(
    () => database.drop(),
    () => bucket.remove(),
  );
  const { db } = database;
  const lines: World['lines'] = [];
  const log: Logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return {
    db,
    database,
    bucket,
    log,
    lines,
    async finished(input, finishedDaysAgo, outcomes = {}) {
      const { build } = await createBuild(db, input);
      const keys: string[] = [];
      let bytes = 0;
      for (;;) {
        const claimed = await claimJob(db, {
          workerId: 'worker-a',
          platforms: ['linux/amd64', 'linux/arm64'],
          leaseSeconds: 60,
        });
        if (!claimed) break;
        const fence = { jobId: claimed.job.id, attempt: claimed.job.attempt };
        await setJobImageDigest(db, fence, DIGEST);
        const state = outcomes[claimed.job.target] ?? 'succeeded';
        const artifacts =
          state === 'succeeded'
            ? await uploadArtifacts(bucket, input, claimed.job, {
                [`widget-${claimed.job.target}.tar.gz`]: randomBytes(
                  1000 + Math.floor(Math.random() * 1000),
                ),
              })
            : [];
        for (const artifact of artifacts) {
          keys.push(artifact.objectKey);
          bytes += artifact.size;
        }
        await completeJob(db, fence, { state, exitCode: state === 'succeeded' ? 0 : 1, artifacts });
      }
      await db
        .update(builds)
        .set({ finishedAt: daysAgo(finishedDaysAgo) })
        .where(eq(builds.id, build.id));
      return { id: build.id, keys, bytes };
    },
    async stored(key, client = bucket.client) {
      try {
        await client.statObject(bucket.storage.bucket, key);
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === 'NotFound') return false;
        throw error;
      }
    },
    async rows(buildId) {
      const found = await getBuild(db, buildId);
      return listArtifactsForJobs(
        db,
        found!.jobs.map((each) => each.id),
      );
    },
    async deletedAt(buildId) {
      return (await getBuild(db, buildId))!.build.artifactsDeletedAt;
    },
    cleanup(overrides = {}) {
      return runCleanup({
        db,
        storage: bucket.client,
        bucket: bucket.storage.bucket,
        log,
        now: NOW,
        policy: DEFAULT_RETENTION_POLICY,
        ...overrides,
      });
    },
  };
}

/** Expects the build's artifacts to be gone: objects, rows, and artifacts_deleted_at set. */
async function expectDeleted(w: World, build: { id: number; keys: string[] }) {
  expect(build.keys.length).toBeGreaterThan(0);
  for (const key of build.keys) expect(await w.stored(key), key).toBe(false);
  expect(await w.rows(build.id)).toEqual([]);
  expect(await w.deletedAt(build.id)).toBeInstanceOf(Date);
}

/** Expects the build's artifacts to be all there: every object, every row, not marked deleted. */
async function expectKept(w: World, build: { id: number; keys: string[] }) {
  expect(build.keys.length).toBeGreaterThan(0);
  for (const key of build.keys) expect(await w.stored(key), key).toBe(true);
  expect((await w.rows(build.id)).map((row) => row.objectKey).sort()).toEqual(
    [...build.keys].sort(),
  );
  expect(await w.deletedAt(build.id)).toBeNull();
}

describe('retention cleanup', () => {
  it('deletes a pull request build 14 days after it finished, objects and rows; keeps a younger one', async () => {
    const w = await world();
    const old = await w.finished(request('widget', pull(1)), 15);
    const young = await w.finished(request('widget', pull(2)), 13);

    const result = await w.cleanup();
    expect(result).toMatchObject({ ran: true, builds: 1, artifacts: 2, objects: 2, failed: 0 });
    expect(result.bytes).toBe(old.bytes);
    expect(result.cleaned).toEqual([
      expect.objectContaining({ buildId: old.id, repo: 'acme/widget', class: 'pull-request' }),
    ]);
    await expectDeleted(w, old);
    await expectKept(w, young);

    // Nothing more to do now; the younger one goes once its 14 days are over.
    expect((await w.cleanup()).builds).toBe(0);
    expect((await w.cleanup({ now: later(1) })).builds).toBe(1);
    await expectDeleted(w, young);
  });

  it('keeps the latest successful build of a branch per target, however old; deletes the others', async () => {
    const w = await world();
    const oldest = await w.finished(request('widget', branch('main')), 110);
    // Latest for arm64: the two newer builds' arm64 jobs failed.
    const latestArm = await w.finished(request('widget', branch('main')), 100);
    // Latest for amd64.
    const latestAmd = await w.finished(request('widget', branch('main')), 90, {
      arm64: 'failed',
    });
    // Failed everywhere: nothing to keep it for.
    const failed = await w.finished(request('widget', branch('main')), 80, {
      amd64: 'failed',
      arm64: 'failed',
    });
    // Another repository's main, and another branch: each the latest of its own.
    const otherRepo = await w.finished(request('gadget', branch('main')), 200);
    const feature = await w.finished(request('widget', branch('feature/x')), 200);
    // A newer main build of untrusted code does not replace the trusted one.
    const untrusted = await w.finished(
      request('widget', { ...branch('main'), trusted: false }),
      40,
    );

    const result = await w.cleanup();
    expect(result.cleaned.map((each) => each.buildId).sort()).toEqual(
      [oldest.id, failed.id, untrusted.id].sort(),
    );
    await expectDeleted(w, oldest);
    await expectDeleted(w, untrusted);
    expect(await w.deletedAt(failed.id)).toBeInstanceOf(Date);
    await expectKept(w, latestArm);
    await expectKept(w, latestAmd);
    await expectKept(w, otherRepo);
    await expectKept(w, feature);

    const infos = await expiriesOf(
      w.db,
      [latestArm.id, latestAmd.id, oldest.id],
      DEFAULT_RETENTION_POLICY,
    );
    expect(infos.get(latestArm.id)).toMatchObject({
      class: 'branch',
      expiresAt: null,
      reason: 'kept: latest build of main for arm64',
    });
    expect(infos.get(latestAmd.id)?.reason).toBe('kept: latest build of main for amd64');
    expect(infos.get(oldest.id)?.reason).toMatch(/^artifacts deleted \d{4}-\d{2}-\d{2}$/);

    // A newer successful build takes over both targets: the two kept ones expire.
    await w.finished(request('widget', branch('main')), 1);
    const next = await w.cleanup();
    expect(next.cleaned.map((each) => each.buildId).sort()).toEqual(
      [latestArm.id, latestAmd.id].sort(),
    );
  });

  it('keeps tag builds forever and pinned builds until unpinned', async () => {
    const w = await world();
    const release = await w.finished(request('widget', tag('v1.0.0')), 2000);
    const pinned = await w.finished(request('widget', pull(3)), 100);
    await setBuildPinned(w.db, pinned.id, true);

    expect((await w.cleanup({ now: later(10_000) })).builds).toBe(0);
    await expectKept(w, release);
    await expectKept(w, pinned);
    const infos = await expiriesOf(w.db, [release.id, pinned.id], DEFAULT_RETENTION_POLICY);
    expect(infos.get(release.id)).toMatchObject({ class: 'tag', reason: 'kept: tag v1.0.0' });
    expect(infos.get(pinned.id)).toMatchObject({ class: 'pinned', reason: 'kept: pinned' });

    await setBuildPinned(w.db, pinned.id, false);
    expect((await w.cleanup()).builds).toBe(1);
    await expectDeleted(w, pinned);
    await expectKept(w, release);
  });

  it("keeps a reused job's objects while a kept build shows them, and never reuses a cleaned build", async () => {
    const w = await world();
    const sha = 'f'.repeat(40);
    const original = await w.finished(request('widget', { ...branch('main'), sha }), 40);
    await w.finished(request('widget', branch('main')), 35);
    // A live worker still has the builder image: a pull request at the same commit reuses
    // the original's outcome, with copies of its artifact rows (same objects).
    await registerWorker(w.db, workerRegistration('w-images', { images: { [IMAGE]: DIGEST } }));
    const reusing = await createBuild(w.db, request('widget', { ...pull(4), sha }));
    expect(reusing.build.state).toBe('succeeded');
    expect(reusing.jobs.every((each) => each.reuseOfJobId !== null)).toBe(true);
    const copy = { id: reusing.build.id, keys: original.keys };
    await w.database.db
      .update(builds)
      .set({ finishedAt: daysAgo(10) })
      .where(eq(builds.id, copy.id));

    const first = await w.cleanup();
    expect(first).toMatchObject({ builds: 1, artifacts: 2, objects: 0, bytes: 0 });
    expect(await w.rows(original.id)).toEqual([]);
    await expectKept(w, copy);

    // Requested again, the cleaned build is not reused (it would give a build without files).
    const again = await createBuild(w.db, request('widget', { ...branch('main'), sha }));
    expect(again.jobs.map((each) => [each.state, each.reuseOfJobId])).toEqual([
      ['queued', null],
      ['queued', null],
    ]);
    await cancelBuild(w.db, again.build.id, 'test');

    // Once the pull request build expires too, the objects go with its rows.
    const second = await w.cleanup({ now: later(5) });
    expect(second.cleaned.map((each) => each.buildId)).toEqual([copy.id]);
    expect(second).toMatchObject({ artifacts: 2, objects: 2, bytes: original.bytes });
    await expectDeleted(w, copy);
  });

  it('a build being cleaned cannot be reused: the request fails retryably and copies nothing', async () => {
    const w = await world();
    const sha = 'a'.repeat(40);
    const original = await w.finished(request('widget', { ...branch('main'), sha }), 40);
    await w.finished(request('widget', branch('main')), 35);
    await registerWorker(w.db, workerRegistration('w-images', { images: { [IMAGE]: DIGEST } }));

    let requested: Promise<unknown> | undefined;
    const deleted = await deleteBuildArtifacts(
      w.db,
      original.id,
      { now: NOW, policy: DEFAULT_RETENTION_POLICY },
      async (keys) => {
        // While the cleanup holds the build's row and removes its objects, the same commit is
        // requested again: the request must wait, then not copy the rows of the removed objects.
        requested = createBuild(w.db, request('widget', { ...pull(8), sha })).catch(
          (error: unknown) => error,
        );
        await expect
          .poll(async () => {
            const [row] = await w.db.$client<{ waiting: number }[]>`
              select count(*)::int as waiting from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`;
            return row!.waiting;
          })
          .toBe(1);
        await removeStoredObjects(w.bucket.client, w.bucket.storage.bucket, keys);
      },
    );
    expect(deleted?.objectKeys).toEqual([...original.keys].sort());
    expect(await requested).toMatchObject({ code: '40001' });
    const copies = await w.db
      .select()
      .from(artifacts)
      .where(inArray(artifacts.objectKey, original.keys));
    expect(copies).toEqual([]);
    await expectDeleted(w, original);
  });

  it('a build pinned after it was listed, or held by another cleanup, is left alone', async () => {
    const w = await world();
    const due = await w.finished(request('widget', pull(9)), 20);
    const listed = await dueBuilds(w.db, { now: NOW, policy: DEFAULT_RETENTION_POLICY });
    expect(listed.map((each) => each.build.id)).toEqual([due.id]);
    const remove = async () => {
      throw new Error('must not be called');
    };
    const options = { now: NOW, policy: DEFAULT_RETENTION_POLICY };

    await setBuildPinned(w.db, due.id, true);
    expect(await deleteBuildArtifacts(w.db, due.id, options, remove)).toBeUndefined();
    await setBuildPinned(w.db, due.id, false);

    const other = postgres(w.database.url, { max: 1, onnotice: () => {} });
    try {
      await other.begin(async (tx) => {
        await tx`select id from builds where id = ${due.id} for update`;
        expect(await deleteBuildArtifacts(w.db, due.id, options, remove)).toBeUndefined();
      });
    } finally {
      await other.end();
    }
    await expectKept(w, due);
  });

  it.each([
    [
      'refuses the credentials',
      (w: World) => ({
        storage: createStorageClient({ ...w.bucket.storage, secretKey: 'wrong-secret' }),
        bucket: w.bucket.storage.bucket,
      }),
    ],
    [
      'has no such bucket',
      (w: World) => ({ storage: w.bucket.client, bucket: `${w.bucket.storage.bucket}-missing` }),
    ],
  ])(
    'when the store %s, keeps the rows and objects, and deletes them at a later run',
    async (_name, broken) => {
      const w = await world();
      const due = await w.finished(request('widget', pull(5)), 20);

      const failing = await w.cleanup(broken(w));
      expect(failing).toMatchObject({ ran: true, builds: 0, failed: 1, cleaned: [] });
      await expectKept(w, due);
      expect(w.lines).toContainEqual(
        expect.objectContaining({
          level: 50,
          buildId: due.id,
          msg: 'deleting build artifacts failed; they are kept for the next run',
        }),
      );

      // One object went missing meanwhile: that is no reason to keep the rows.
      await w.bucket.client.removeObject(w.bucket.storage.bucket, due.keys[0]!);
      const next = await w.cleanup();
      expect(next).toMatchObject({ builds: 1, artifacts: 2, failed: 0 });
      await expectDeleted(w, due);
    },
  );

  it('a dry run reports what it would delete and deletes nothing', async () => {
    const w = await world();
    const due = await w.finished(request('widget', pull(6)), 20);
    const kept = await w.finished(request('widget', pull(7)), 1);

    const result = await w.cleanup({ dryRun: true });
    expect(result).toMatchObject({ ran: true, dryRun: true, builds: 1, artifacts: 2, objects: 2 });
    expect(result.bytes).toBe(due.bytes);
    expect(result.cleaned.map((each) => each.buildId)).toEqual([due.id]);
    await expectKept(w, due);
    await expectKept(w, kept);
  });

  it('never runs twice at once: a run while another holds the lock does nothing', async () => {
    const w = await world();
    const due = [];
    for (let number = 10; number < 16; number += 1)
      due.push(await w.finished(request('widget', pull(number)), 30));

    const other = postgres(w.database.url, { max: 1, onnotice: () => {} });
    try {
      await other`select pg_advisory_lock(${CLEANUP_LOCK})`;
      expect(await w.cleanup()).toMatchObject({ ran: false, builds: 0 });
      for (const build of due) await expectKept(w, build);
      await other`select pg_advisory_unlock(${CLEANUP_LOCK})`;
    } finally {
      await other.end();
    }

    // Two runs started together, in small batches: each build is deleted by exactly one.
    const runs = await Promise.all([w.cleanup({ batchSize: 2 }), w.cleanup({ batchSize: 2 })]);
    const cleaned = runs.flatMap((run) => run.cleaned.map((each) => each.buildId));
    expect(cleaned.sort()).toEqual(due.map((build) => build.id).sort());
    expect(runs.some((run) => run.ran)).toBe(true);
    for (const build of due) await expectDeleted(w, build);
  });

  it('the due query and the pure rules agree, at every instant', async () => {
    const w = await world();
    const ids = [
      (await w.finished(request('widget', pull(20)), 3)).id,
      (await w.finished(request('widget', pull(21)), 16)).id,
      (await w.finished(request('widget', branch('main')), 50)).id,
      (await w.finished(request('widget', branch('main')), 20, { arm64: 'failed' })).id,
      (await w.finished(request('widget', branch('main')), 5, { amd64: 'failed', arm64: 'failed' }))
        .id,
      (await w.finished(request('widget', { ...branch('main'), trusted: false }), 2)).id,
      (await w.finished(request('widget', tag('v2.0.0')), 400)).id,
      (await w.finished(request('widget', { ref: 'abc1234' }), 25)).id,
      (await w.finished(request('widget', pull(22)), 60)).id,
    ];
    await setBuildPinned(w.db, ids.at(-1)!, true);
    // Still queued: never due.
    ids.push((await createBuild(w.db, request('widget', pull(23)))).build.id);

    const policies: RetentionPolicy[] = [
      DEFAULT_RETENTION_POLICY,
      { pullRequestDays: 1, branchDays: 3 },
    ];
    for (const policy of policies) {
      const infos = await expiriesOf(w.db, ids, policy);
      for (const days of [0, 4, 10, 15, 30, 60, 1000]) {
        const now = later(days);
        const due = await dueBuilds(w.db, { now, policy, limit: 100 });
        const expected = ids.filter((id) => isExpired(infos.get(id)!, now));
        expect(
          due.map((each) => each.build.id),
          `${JSON.stringify(policy)} + ${days} days`,
        ).toEqual(expected);
      }
    }
  });

  it('the loop runs the cleanup at once and then every interval, until stopped', async () => {
    const w = await world();
    const due = await w.finished(request('widget', pull(30)), 20);
    const loop = startCleanupLoop({
      db: w.db,
      storage: w.bucket.client,
      bucket: w.bucket.storage.bucket,
      log: w.log,
      policy: DEFAULT_RETENTION_POLICY,
      intervalMs: 50,
      clock: () => NOW,
    });
    try {
      await expect.poll(() => w.deletedAt(due.id), { timeout: 10_000 }).toBeInstanceOf(Date);
      const runs = () => w.lines.filter((line) => line.msg === 'retention cleanup done').length;
      await expect.poll(runs, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    } finally {
      await loop.stop();
    }
    await expectDeleted(w, due);
    const stoppedAt = w.lines.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(w.lines.length).toBe(stoppedAt);
  });
});
