import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildRequest, workerRegistration } from '../../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../../test/support/services';
import { connect } from '../client';
import { CHANNELS } from '../notify';
import { listArtifactsByJob } from './artifacts';
import { createBuild, getBuild, type NewBuild, type NewJob } from './builds';
import {
  cancelBuild,
  claimJob,
  claimJobs,
  completeJob,
  completeJobs,
  findStaleAttempts,
  nextLeaseExpiry,
  renewLeases,
  requeueExpiredJobs,
  retryJob,
  setJobImageDigest,
  type Claimer,
} from './jobs';
import { explainQueuedJobs, listWorkers, queueDepth, registerWorker } from './workers';

const spec = { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 5 };
const job = (target: string, overrides: Partial<NewJob> = {}): NewJob => ({
  target,
  platform: 'linux/amd64',
  toolchains: ['native'],
  image: 'builder:1',
  spec,
  ...overrides,
});
/** A build request of repository `repo` (each test uses its own) at a fresh sha by default. */
const request = (repo: string, overrides: Partial<NewBuild> = {}): NewBuild =>
  buildRequest(repo, { jobs: [job('amd64')], ...overrides });
const amd64: Claimer = { workerId: 'w-amd64', platforms: ['linux/amd64'], leaseSeconds: 30 };
const artifact = (name: string) => ({
  name,
  objectKey: `artifacts/${name}`,
  size: 3,
  sha256: 'f'.repeat(64),
});

describe('the job queue', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });
  // Each test starts with an empty queue: what earlier tests left unfinished is closed.
  beforeEach(async () => {
    await database.db.execute(
      sql`update jobs set state = 'failed', lease_expires_at = null where state in ('queued', 'running')`,
    );
  });

  /** Claims until nothing is claimable; returns the claimed jobs' build ids in claim order. */
  async function drain(claimer: Claimer): Promise<number[]> {
    const order: number[] = [];
    for (;;) {
      const claimed = await claimJob(database.db, claimer);
      if (!claimed) return order;
      order.push(claimed.build.id);
      await completeJob(
        database.db,
        { jobId: claimed.job.id, attempt: claimed.job.attempt },
        { state: 'succeeded', exitCode: 0 },
      );
    }
  }

  it('claims release tags first, then pull requests, then manual builds, oldest first', async () => {
    const manual = await createBuild(database.db, request('priorities'));
    const pull = await createBuild(
      database.db,
      request('priorities', { ref: 'pr-7', pullNumber: 7, branch: undefined }),
    );
    const tag = await createBuild(
      database.db,
      request('priorities', { ref: 'v1.0', tag: 'v1.0', branch: undefined }),
    );
    const laterManual = await createBuild(database.db, request('priorities'));
    expect(await drain(amd64)).toEqual([
      tag.build.id,
      pull.build.id,
      manual.build.id,
      laterManual.build.id,
    ]);
  });

  it("plans a worker's claim once per connection, not at every claim", async () => {
    // A worker's pool (genericPlans). Without it PostgreSQL plans the claim for its parameters
    // at least the first five times, and for as long as the generic plan looks dearer.
    const pool = connect(database.url, { max: 1, genericPlans: true });
    try {
      for (let index = 0; index < 8; index += 1) await createBuild(database.db, request('plans'));
      for (let index = 0; index < 8; index += 1) expect(await claimJob(pool, amd64)).toBeDefined();
      const plans = await pool.$client<{ generic: number; custom: number }[]>`
        select generic_plans::int as generic, custom_plans::int as custom
        from pg_prepared_statements
        where statement like '%skip locked%' and statement not like '%pg_prepared_statements%'`;
      expect(plans).toEqual([{ generic: 8, custom: 0 }]);
    } finally {
      await pool.$client.end();
    }
  });

  it('routes by platform, emulation and labels', async () => {
    const { jobs } = await createBuild(
      database.db,
      request('routing', {
        jobs: [
          job('arm64-native', { platform: 'linux/arm64' }),
          job('arm64-emulated', {
            platform: 'linux/arm64',
            toolchains: ['emulated'],
          }),
          job('kvm', { labels: ['kvm'] }),
        ],
      }),
    );
    const byTarget = Object.fromEntries(jobs.map((row) => [row.target, row.id]));
    const emulating: Claimer = { ...amd64, emulatedPlatforms: ['linux/arm64'] };
    const first = await claimJob(database.db, emulating);
    expect(first?.job.id).toBe(byTarget['arm64-emulated']);
    // Neither the native arm64 job nor the job needing the kvm label is for this worker.
    expect(await claimJob(database.db, emulating)).toBeUndefined();
    const kvm = await claimJob(database.db, { ...amd64, labels: ['kvm', 'big'] });
    expect(kvm?.job.id).toBe(byTarget.kvm);
    const arm = await claimJob(database.db, { ...amd64, platforms: ['linux/arm64'] });
    expect(arm?.job.id).toBe(byTarget['arm64-native']);
  });

  it('says why a job waits, and lists workers and queue depth', async () => {
    const { jobs } = await createBuild(
      database.db,
      request('reasons', {
        jobs: [job('riscv64', { platform: 'linux/riscv64' }), job('gpu', { labels: ['gpu'] })],
      }),
    );
    const before = await explainQueuedJobs(database.db, jobs);
    expect(before.get(jobs[0]!.id)).toBe('no worker serves linux/riscv64');
    expect(before.get(jobs[1]!.id)).toBe('no worker with labels gpu serves linux/amd64');

    await registerWorker(
      database.db,
      workerRegistration('w-riscv', { platforms: ['linux/riscv64'], slots: 2 }),
    );
    const after = await explainQueuedJobs(database.db, jobs);
    expect(after.get(jobs[0]!.id)).toBe(
      'waiting for a free slot: 1 worker(s) serve linux/riscv64 with 2 slot(s); 0 job(s) ahead',
    );
    const workers = await listWorkers(database.db);
    expect(workers.find((worker) => worker.id === 'w-riscv')).toMatchObject({
      live: true,
      runningJobIds: [],
    });
    const depth = await queueDepth(database.db);
    expect(depth.find((row) => row.runPlatform === 'linux/riscv64')).toEqual({
      runPlatform: 'linux/riscv64',
      queued: 1,
      running: 0,
      workers: 1,
      freeSlots: 2,
    });
    const claimed = await claimJob(database.db, { ...amd64, platforms: ['linux/riscv64'] });
    expect(claimed?.job.id).toBe(jobs[0]!.id);
  });

  it('queues a lost attempt again and fails the job after its limit of infrastructure failures', async () => {
    const { jobs } = await createBuild(
      database.db,
      request('retries', { jobs: [job('amd64', { maxInfraFailures: 2 })] }),
    );
    const jobId = jobs[0]!.id;
    const lost = await claimJob(database.db, { ...amd64, leaseSeconds: 0 });
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Its own worker, alive and only late to renew, neither sees the expiry nor queues it again.
    expect(await nextLeaseExpiry(database.db, amd64.workerId)).toBeUndefined();
    expect(await requeueExpiredJobs(database.db, amd64.workerId)).toEqual([]);
    expect(await nextLeaseExpiry(database.db, 'w-other')).toEqual(expect.any(Date));
    expect(
      (await requeueExpiredJobs(database.db)).map(({ job, result }) => [job.id, result]),
    ).toEqual([[jobId, 'queued']]);
    // A worker that shuts down hands its job back without it counting as a failure.
    const handedBack = await claimJob(database.db, amd64);
    expect(
      await retryJob(
        database.db,
        { jobId, attempt: handedBack!.job.attempt },
        { reason: 'worker shut down', infrastructure: false },
      ),
    ).toBe('queued');
    // A superseded attempt can no longer hand the job back.
    expect(
      await retryJob(
        database.db,
        { jobId, attempt: lost!.job.attempt },
        { reason: 'late', infrastructure: true },
      ),
    ).toBeUndefined();
    const third = await claimJob(database.db, amd64);
    expect(
      await retryJob(
        database.db,
        { jobId, attempt: third!.job.attempt },
        { reason: 'Docker daemon unreachable', infrastructure: true },
      ),
    ).toBe('failed');
    const build = await getBuild(database.db, jobs[0]!.buildId);
    expect(build!.build.state).toBe('failed');
    expect(build!.jobs[0]).toMatchObject({
      state: 'failed',
      attempt: 3,
      infraFailures: 2,
      error: 'infrastructure failure on 2 attempts; the last: Docker daemon unreachable',
    });
  });

  it('cancels queued jobs at once and asks the workers of running ones to stop them', async () => {
    const { build, jobs } = await createBuild(
      database.db,
      request('cancel', { jobs: [job('amd64'), job('other', { platform: 'linux/s390x' })] }),
    );
    const running = await claimJob(database.db, amd64);
    expect(running?.build.id).toBe(build.id);
    const heard: string[] = [];
    const listener = await database.db.$client.listen(CHANNELS.cancel, (payload) =>
      heard.push(payload),
    );
    expect(await cancelBuild(database.db, build.id, 'slack:U1')).toEqual({
      canceled: 1,
      stopping: 1,
    });
    await expect.poll(() => heard).toEqual([String(running!.job.id)]);
    await listener.unlisten();
    const held = await renewLeases(database.db, amd64.workerId, 30);
    expect(held.find((item) => item.jobId === running!.job.id)?.cancelRequested).toBe(true);
    expect((await getBuild(database.db, build.id))!.build.state).toBe('running');
    await completeJob(
      database.db,
      { jobId: running!.job.id, attempt: running!.job.attempt },
      { state: 'canceled' },
    );
    const after = await getBuild(database.db, build.id);
    expect(after!.build.state).toBe('canceled');
    expect(after!.jobs.map((row) => [row.target, row.state, row.error])).toEqual([
      ['amd64', 'canceled', 'canceled by slack:U1'],
      ['other', 'canceled', 'canceled by slack:U1'],
    ]);
    expect(jobs).toHaveLength(2);
    // A running job whose worker died is canceled, not queued again, when its lease runs out.
    const orphan = await createBuild(database.db, request('cancel'));
    const claimed = await claimJob(database.db, { ...amd64, leaseSeconds: 0.05 });
    expect(claimed?.build.id).toBe(orphan.build.id);
    await cancelBuild(database.db, orphan.build.id, 'cli:ops');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect((await requeueExpiredJobs(database.db)).map(({ result }) => result)).toEqual([
      'canceled',
    ]);
  });

  it('cancels older builds of the same targets on the same pull request, not tags or other targets', async () => {
    const pull = { ref: 'pr-9', pullNumber: 9, branch: undefined, cancelSuperseded: true };
    const old = await createBuild(
      database.db,
      request('supersede', { ...pull, jobs: [job('amd64'), job('arm64')] }),
    );
    const tag = await createBuild(
      database.db,
      request('supersede', { ref: 'v2', tag: 'v2', branch: undefined }),
    );
    const otherPull = await createBuild(
      database.db,
      request('supersede', { ...pull, ref: 'pr-10', pullNumber: 10 }),
    );
    const newer = await createBuild(database.db, request('supersede', pull));
    const oldAfter = await getBuild(database.db, old.build.id);
    expect(oldAfter!.jobs.map((row) => [row.target, row.state, row.canceledBy])).toEqual([
      ['amd64', 'canceled', `build ${newer.build.id} (a newer commit of pr-9)`],
      ['arm64', 'queued', null],
    ]);
    expect((await getBuild(database.db, tag.build.id))!.jobs[0]!.state).toBe('queued');
    expect((await getBuild(database.db, otherPull.build.id))!.jobs[0]!.state).toBe('queued');
  });

  it('attaches an identical request to a running job and settles it with that outcome', async () => {
    const sha = 'e'.repeat(40);
    const first = await createBuild(database.db, request('dedupe', { sha }));
    const claimed = await claimJob(database.db, amd64);
    expect(claimed?.build.id).toBe(first.build.id);
    const second = await createBuild(database.db, request('dedupe', { sha }));
    expect(second.jobs[0]).toMatchObject({ state: 'queued', reuseOfJobId: first.jobs[0]!.id });
    expect(await claimJob(database.db, amd64)).toBeUndefined();
    const reasons = await explainQueuedJobs(database.db, second.jobs);
    expect(reasons.get(second.jobs[0]!.id)).toMatch(/^attached to job \d+, an identical build/);
    const forced = await createBuild(database.db, request('dedupe', { sha, reuse: false }));
    expect(forced.jobs[0]).toMatchObject({ state: 'queued', reuseOfJobId: null });

    await setJobImageDigest(
      database.db,
      { jobId: claimed!.job.id, attempt: 1 },
      'sha256:builder-one',
    );
    await completeJob(
      database.db,
      { jobId: claimed!.job.id, attempt: 1 },
      { state: 'succeeded', exitCode: 0, artifacts: [artifact('hello.tar.gz')] },
    );
    const settled = await getBuild(database.db, second.build.id);
    expect(settled!.build.state).toBe('succeeded');
    expect(settled!.jobs[0]).toMatchObject({
      state: 'succeeded',
      imageDigest: 'sha256:builder-one',
    });
    const copied = await listArtifactsByJob(database.db, [second.jobs[0]!.id]);
    expect(copied.get(second.jobs[0]!.id)?.map((row) => row.objectKey)).toEqual([
      'artifacts/hello.tar.gz',
    ]);
  });

  it('reuses a succeeded job only while a live worker has the same builder image', async () => {
    const sha = 'd'.repeat(40);
    const first = await createBuild(database.db, request('reuse', { sha }));
    const claimed = await claimJob(database.db, amd64);
    expect(claimed?.build.id).toBe(first.build.id);
    const fence = { jobId: claimed!.job.id, attempt: 1 };
    await setJobImageDigest(database.db, fence, 'sha256:old');
    await completeJob(database.db, fence, {
      state: 'succeeded',
      exitCode: 0,
      artifacts: [artifact('reuse.bin')],
    });
    const worker = workerRegistration('w-images');
    await registerWorker(database.db, { ...worker, images: { 'builder:1': 'sha256:new' } });
    const rebuilt = await createBuild(database.db, request('reuse', { sha }));
    expect(rebuilt.jobs[0]).toMatchObject({ state: 'queued', reuseOfJobId: null });
    await cancelBuild(database.db, rebuilt.build.id, 'test');

    await registerWorker(database.db, { ...worker, images: { 'builder:1': 'sha256:old' } });
    const reused = await createBuild(database.db, request('reuse', { sha }));
    expect(reused.build.state).toBe('succeeded');
    expect(reused.jobs[0]).toMatchObject({
      state: 'succeeded',
      reuseOfJobId: first.jobs[0]!.id,
      imageDigest: 'sha256:old',
    });
    const copied = await listArtifactsByJob(database.db, [reused.jobs[0]!.id]);
    expect(copied.get(reused.jobs[0]!.id)?.map((row) => row.name)).toEqual(['reuse.bin']);
  });

  it('detaches jobs attached to one that is canceled, so they run on their own', async () => {
    const sha = 'c'.repeat(40);
    const first = await createBuild(database.db, request('detach', { sha }));
    const second = await createBuild(database.db, request('detach', { sha }));
    expect(second.jobs[0]!.reuseOfJobId).toBe(first.jobs[0]!.id);
    await cancelBuild(database.db, first.build.id, 'slack:U2');
    const claimed = await claimJob(database.db, amd64);
    expect(claimed?.job.id).toBe(second.jobs[0]!.id);
  });

  it('records an outcome once: a repeated completeJob after a lost reply is harmless', async () => {
    await createBuild(database.db, request('idempotent'));
    const claimed = await claimJob(database.db, amd64);
    const fence = { jobId: claimed!.job.id, attempt: claimed!.job.attempt };
    const outcome = { state: 'succeeded' as const, exitCode: 0, artifacts: [artifact('once')] };
    expect(await completeJob(database.db, fence, outcome)).toBe(true);
    expect(await completeJob(database.db, fence, outcome)).toBe(true);
    const rows = await listArtifactsByJob(database.db, [fence.jobId]);
    expect(rows.get(fence.jobId)).toHaveLength(1);
    expect(await completeJob(database.db, fence, { state: 'failed' })).toBe(false);
  });

  it('records a batch of outcomes in one call, each fenced on its own, answered in input order', async () => {
    const builds = [];
    for (const name of ['batch-a', 'batch-b', 'batch-c'])
      builds.push(await createBuild(database.db, request(name)));
    const claimed = await claimJobs(database.db, amd64, 3);
    expect(claimed).toHaveLength(3);
    const [first, second, third] = claimed.map(({ job }) => ({
      jobId: job.id,
      attempt: job.attempt,
    }));
    // The second was recorded before (a lost reply); the third lost its lease and runs elsewhere.
    await completeJob(database.db, second!, { state: 'failed', exitCode: 2, error: 'exit 2' });
    await database.db.execute(
      sql`update jobs set attempt = attempt + 1 where id = ${third!.jobId}`,
    );
    const recorded = await completeJobs(database.db, [
      { ...third!, state: 'succeeded', exitCode: 0, artifacts: [artifact('late')] },
      { ...first!, state: 'succeeded', exitCode: 0, artifacts: [artifact('a1'), artifact('a2')] },
      { ...second!, state: 'failed', exitCode: 2, error: 'exit 2' },
      { jobId: 999_999_999, attempt: 1, state: 'succeeded' },
    ]);
    expect(recorded).toEqual([false, true, true, false]);
    const artifacts = await listArtifactsByJob(database.db, [first!.jobId, third!.jobId]);
    expect(
      artifacts
        .get(first!.jobId)
        ?.map((row) => row.name)
        .sort(),
    ).toEqual(['a1', 'a2']);
    expect(artifacts.get(third!.jobId)).toBeUndefined();
    const states = await Promise.all(builds.map(({ build }) => getBuild(database.db, build.id)));
    expect(states.map((view) => view?.build.state)).toEqual(['succeeded', 'failed', 'running']);
  });

  it('takes concurrent completions, followers and cancels without deadlocks', async () => {
    // Build O has jobs x and z; build R has y and a follower of x. One worker completes x (which
    // settles R's follower), another completes z and y together, and an operator cancels R.
    // Each side locks both builds: only a common lock order keeps them from deadlocking.
    for (let round = 0; round < 15; round += 1) {
      const sha = `d${round}`.padStart(40, '0');
      const o = await createBuild(
        database.db,
        request(`lock-o-${round}`, { sha, jobs: [job('x'), job('z')] }),
      );
      const r = await createBuild(
        database.db,
        request(`lock-o-${round}`, {
          sha,
          ref: 'pr-1',
          branch: undefined,
          pullNumber: 1,
          jobs: [job('x'), job('y')],
        }),
      );
      expect(r.jobs.find((each) => each.target === 'x')?.reuseOfJobId).toBeTruthy();
      const claimed = await claimJobs(database.db, amd64, 3);
      const fence = (target: string, buildId: number) => {
        const { job: found } = claimed.find(
          (c) => c.job.target === target && c.job.buildId === buildId,
        )!;
        return { jobId: found.id, attempt: found.attempt };
      };
      const results = await Promise.allSettled([
        completeJobs(database.db, [{ ...fence('x', o.build.id), state: 'succeeded' }]),
        completeJobs(database.db, [
          { ...fence('y', r.build.id), state: 'succeeded' },
          { ...fence('z', o.build.id), state: 'succeeded' },
        ]),
        cancelBuild(database.db, r.build.id, 'test'),
      ]);
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
    }
  });

  it("names the containers of attempts that no longer hold their job, ignoring other fleets' workers", async () => {
    await createBuild(database.db, request('stale'));
    const claimed = await claimJob(database.db, { ...amd64, workerId: 'w-stale', leaseSeconds: 0 });
    await registerWorker(database.db, workerRegistration('w-stale', { heartbeatSeconds: 1 }));
    const attempt = { jobId: claimed!.job.id, attempt: 1, workerId: 'w-stale' };
    const foreign = { jobId: claimed!.job.id, attempt: 1, workerId: 'not-in-this-fleet' };
    expect(await findStaleAttempts(database.db, [attempt, foreign])).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    await requeueExpiredJobs(database.db);
    expect(await findStaleAttempts(database.db, [attempt, foreign])).toEqual([attempt]);
  });
});
