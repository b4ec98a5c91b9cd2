import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/services';
import { listArtifactsForJobs } from './artifacts';
import { createBuild, getBuild, type NewBuild } from './builds';
import { claimJob, completeJob, requeueExpiredJobs } from './jobs';

const spec = { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 5 };
const request = (overrides: Partial<NewBuild> = {}): NewBuild => ({
  repo: { owner: 'acme', name: 'widget', cloneUrl: '/tmp/none.git', source: 'git' },
  sha: 'a'.repeat(40),
  ref: 'main',
  trigger: 'cli',
  requester: 'cli:test',
  recipeDigest: 'b'.repeat(64),
  jobs: [
    {
      target: 'amd64',
      platform: 'linux/amd64',
      toolchains: ['native'],
      image: 'i',
      spec,
    },
    {
      target: 'arm64',
      platform: 'linux/arm64',
      toolchains: ['emulated'],
      image: 'i',
      spec,
    },
  ],
  ...overrides,
});

describe('the job queue', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('stores a build with its jobs, and a replayed request attaches to it', async () => {
    const first = await createBuild(database.db, request({ requestKey: 'delivery-1' }));
    const replay = await createBuild(database.db, request({ requestKey: 'delivery-1' }));
    expect(first.created).toBe(true);
    expect(replay.created).toBe(false);
    expect(replay.build.id).toBe(first.build.id);
    expect(replay.jobs.map((job) => job.id).sort()).toEqual(first.jobs.map((job) => job.id).sort());
  });

  it('gives each job to one claimer only, and only to workers of its platform', async () => {
    const { build } = await createBuild(database.db, request({ sha: 'c'.repeat(40) }));
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        claimJob(database.db, {
          workerId: `w${index}`,
          platforms: ['linux/amd64'],
          leaseSeconds: 30,
        }),
      ),
    );
    const claimed = claims.filter((claim) => claim?.build.id === build.id);
    expect(claimed).toHaveLength(1);
    expect(claimed[0]!.job).toMatchObject({ target: 'amd64', state: 'running', attempt: 1 });
    const after = await getBuild(database.db, build.id);
    expect(after!.build.state).toBe('running');
    expect(after!.jobs.find((job) => job.target === 'arm64')!.state).toBe('queued');
  });

  it('fences a superseded attempt: it cannot finish the job or publish artifacts', async () => {
    const { build } = await createBuild(
      database.db,
      request({ sha: 'd'.repeat(40), jobs: [request().jobs[0]!] }),
    );
    const first = await claimJob(database.db, {
      workerId: 'dead',
      platforms: ['linux/amd64'],
      leaseSeconds: 0,
    });
    expect(first!.build.id).toBe(build.id);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const requeued = await requeueExpiredJobs(database.db);
    expect(requeued.map(({ job }) => job.id)).toContain(first!.job.id);
    const second = await claimJob(database.db, {
      workerId: 'alive',
      platforms: ['linux/amd64'],
      leaseSeconds: 30,
    });
    expect(second!.job).toMatchObject({ id: first!.job.id, attempt: 2 });

    const artifact = { name: 'x', objectKey: 'k', size: 1, sha256: 'e'.repeat(64) };
    const late = await completeJob(
      database.db,
      { jobId: first!.job.id, attempt: 1 },
      { state: 'succeeded', artifacts: [artifact] },
    );
    expect(late).toBe(false);
    expect(await listArtifactsForJobs(database.db, [first!.job.id])).toEqual([]);

    const live = await completeJob(
      database.db,
      { jobId: first!.job.id, attempt: 2 },
      { state: 'succeeded', exitCode: 0, artifacts: [artifact] },
    );
    expect(live).toBe(true);
    expect(await listArtifactsForJobs(database.db, [first!.job.id])).toHaveLength(1);
    expect((await getBuild(database.db, build.id))!.build.state).toBe('succeeded');
  });
});
