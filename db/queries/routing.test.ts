import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOOLCHAIN_MODES, type ToolchainMode } from '../../core/recipe';
import { toolchainFor } from '../../core/routing';
import { buildRequest, workerRegistration } from '../../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../../test/support/services';
import { createBuild, type NewJob } from './builds';
import { claimJob, completeJob, retryJob, setJobImageDigest, type Claimer } from './jobs';
import { registerWorker } from './workers';

const CROSS_IMAGE = 'crossdock/builder-debian:bookworm';
const ARM64_IMAGE = 'crossdock/builder-debian:bookworm-arm64';
const spec = { script: 'make', artifacts: [], env: {}, network: false, timeoutMinutes: 5 };
const arm64Job = (target: string, toolchains: ToolchainMode[]): NewJob => ({
  target,
  platform: 'linux/arm64',
  toolchains,
  spec: { ...spec, images: { cross: CROSS_IMAGE, native: ARM64_IMAGE, emulated: ARM64_IMAGE } },
});
const fenceOf = (job: { id: number; attempt: number }) => ({ jobId: job.id, attempt: job.attempt });
const request = buildRequest;

/** Every subset of the toolchain modes but the empty one. */
const modeSets: ToolchainMode[][] = [1, 2, 3, 4, 5, 6, 7].map((bits) =>
  TOOLCHAIN_MODES.filter((_, index) => bits & (1 << index)),
);
const workerShapes = [
  { platforms: ['linux/amd64'], emulatedPlatforms: [] },
  { platforms: ['linux/amd64'], emulatedPlatforms: ['linux/arm64', 'linux/riscv64'] },
  { platforms: ['linux/arm64'], emulatedPlatforms: [] },
  { platforms: ['linux/riscv64'], emulatedPlatforms: ['linux/arm64'] },
  { platforms: ['linux/arm64', 'linux/amd64'], emulatedPlatforms: [] },
];

describe('routing between toolchain modes', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  /** Registers a live worker and returns it as a claimer. */
  const worker = async (
    id: string,
    platforms: string[],
    emulatedPlatforms: string[] = [],
  ): Promise<Claimer> => {
    await registerWorker(database.db, workerRegistration(id, { platforms, emulatedPlatforms }));
    return { workerId: id, platforms, emulatedPlatforms, leaseSeconds: 60 };
  };

  it('the SQL rule the claim uses and core/routing.ts agree on every case', async () => {
    for (const toolchains of modeSets)
      for (const platform of ['linux/arm64', 'linux/amd64', 'linux/riscv64'])
        for (const shape of workerShapes) {
          const [row] = await database.db.$client<{ mode: string | null }[]>`
            select crossdock_toolchain_for(${toolchains}::text[], ${platform},
                   ${shape.platforms}::text[], ${shape.emulatedPlatforms}::text[]) as mode`;
          expect(row!.mode ?? undefined, JSON.stringify({ toolchains, platform, shape })).toBe(
            toolchainFor(toolchains, platform, shape),
          );
        }
    // Spot checks of the policy itself.
    const amd64Qemu = workerShapes[1]!;
    expect(toolchainFor(['native', 'cross', 'emulated'], 'linux/arm64', amd64Qemu)).toBe('cross');
    expect(toolchainFor(['native', 'emulated'], 'linux/arm64', amd64Qemu)).toBe('emulated');
    expect(toolchainFor(['emulated'], 'linux/arm64', workerShapes[2]!)).toBe('native');
    expect(toolchainFor(['cross'], 'linux/arm64', workerShapes[2]!)).toBeUndefined();
  });

  it('runs natively on a free arm64 worker, else cross-compiled, and records the mode', async () => {
    const amd64 = await worker('amd64-1', ['linux/amd64'], ['linux/arm64']);
    const arm64 = await worker('arm64-1', ['linux/arm64']);
    const { jobs } = await createBuild(
      database.db,
      request('policy', {
        jobs: [arm64Job('first', ['native', 'cross', 'emulated'])],
      }),
    );
    expect(jobs[0]).toMatchObject({
      toolchain: 'native',
      toolchains: ['native', 'cross', 'emulated'],
    });
    // The arm64 worker is free, so the amd64 worker leaves the job to it.
    expect(await claimJob(database.db, amd64)).toBeUndefined();
    const native = await claimJob(database.db, arm64);
    expect(native?.job).toMatchObject({
      target: 'first',
      toolchain: 'native',
      runPlatform: 'linux/arm64',
      image: ARM64_IMAGE,
      workerId: 'arm64-1',
    });

    // Now its one slot is taken: the next such job is cross-compiled on the amd64 worker.
    const second = await createBuild(
      database.db,
      request('policy', { jobs: [arm64Job('second', ['native', 'cross', 'emulated'])] }),
    );
    const cross = await claimJob(database.db, amd64);
    expect(cross?.job).toMatchObject({
      id: second.jobs[0]!.id,
      toolchain: 'cross',
      runPlatform: 'linux/amd64',
      image: CROSS_IMAGE,
    });

    // An attempt that ends for infrastructure goes back to the queue; with the arm64 worker free
    // again, the next attempt runs natively and the job records that.
    await completeJob(database.db, fenceOf(native!.job), {
      state: 'succeeded',
      exitCode: 0,
      artifacts: [],
    });
    await retryJob(database.db, fenceOf(cross!.job), {
      reason: 'docker went away',
      infrastructure: true,
    });
    expect(await claimJob(database.db, amd64)).toBeUndefined();
    const again = await claimJob(database.db, arm64);
    expect(again?.job).toMatchObject({ id: cross!.job.id, toolchain: 'native', attempt: 2 });
  });

  it('emulates only when no free worker can build natively or cross-compile', async () => {
    // A riscv64 worker that emulates arm64, and an amd64 worker that is free.
    const riscv = await worker('riscv64-1', ['linux/riscv64'], ['linux/arm64']);
    const amd64 = await worker('amd64-2', ['linux/amd64']);
    await database.db
      .$client`update workers set online = false where id not in ('riscv64-1', 'amd64-2')`;
    await createBuild(
      database.db,
      request('emulation', { jobs: [arm64Job('emulable', ['cross', 'emulated'])] }),
    );
    expect(await claimJob(database.db, riscv)).toBeUndefined();
    // The amd64 worker stops heartbeating: lost workers are not free workers.
    await database.db.$client`
      update workers set last_heartbeat_at = now() - interval '10 minutes' where id = 'amd64-2'`;
    const emulated = await claimJob(database.db, riscv);
    expect(emulated?.job).toMatchObject({
      target: 'emulable',
      toolchain: 'emulated',
      runPlatform: 'linux/arm64',
      image: ARM64_IMAGE,
    });
    // A target that allows only cross is never emulated.
    await createBuild(
      database.db,
      request('emulation', { jobs: [arm64Job('cross-only', ['cross'])] }),
    );
    expect(await claimJob(database.db, riscv)).toBeUndefined();
    const [waiting] = await database.db.$client<{ state: string }[]>`
      select state from jobs where target = 'cross-only'`;
    expect(waiting?.state).toBe('queued');
    void amd64;
  });

  it('keeps trust levels apart when reusing finished jobs', async () => {
    const amd64 = await worker('amd64-3', ['linux/amd64']);
    // What earlier tests left queued is not this test's.
    await database.db.$client`update jobs set state = 'canceled' where state = 'queued'`;
    const native = (target: string): NewJob => ({
      target,
      platform: 'linux/amd64',
      image: CROSS_IMAGE,
      spec,
    });
    await database.db
      .$client`update workers set images = ${JSON.stringify({ [CROSS_IMAGE]: 'sha256:1' })}::jsonb`;
    /** Records `job` succeeded in the image a live worker has (as a worker would). */
    const succeedIn = async (imageDigest: string, job: { id: number; attempt: number }) => {
      await setJobImageDigest(database.db, fenceOf(job), imageDigest);
      await completeJob(database.db, fenceOf(job), {
        state: 'succeeded',
        exitCode: 0,
        artifacts: [],
      });
    };
    const sha = 'a'.repeat(40);
    const untrusted = await createBuild(
      database.db,
      request('trust', { sha, trusted: false, pullNumber: 7, jobs: [native('amd64')] }),
    );
    expect(untrusted.build.trusted).toBe(false);
    const claimed = await claimJob(database.db, amd64);
    expect(claimed?.build.trusted).toBe(false);
    await succeedIn('sha256:1', claimed!.job);
    // The same commit, trusted: it builds anew rather than take the untrusted outcome.
    const trusted = await createBuild(
      database.db,
      request('trust', { sha, jobs: [native('amd64')] }),
    );
    expect(trusted.build.trusted).toBe(true);
    expect(trusted.jobs[0]).toMatchObject({ state: 'queued', reuseOfJobId: null });
    const trustedRun = await claimJob(database.db, amd64);
    await succeedIn('sha256:1', trustedRun!.job);
    // An untrusted build may take a trusted one's outcome.
    const later = await createBuild(
      database.db,
      request('trust', { sha, trusted: false, pullNumber: 7, jobs: [native('amd64')] }),
    );
    expect(later.jobs[0]).toMatchObject({ state: 'succeeded', reuseOfJobId: trustedRun!.job.id });
  });
});
