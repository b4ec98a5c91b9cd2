import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueNoopBuilds } from '../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { getBuild } from '../db/queries/builds';
import { claimJobs, completeJobs, type Completion, type Fence } from '../db/queries/jobs';
import { CompletionBatcher, CompletionTimeoutError } from './completions';

describe('CompletionBatcher', () => {
  let database: TestDatabase;
  /** The batches the batcher sent, as the number of outcomes in each. */
  let batches: number[];
  let batcher: CompletionBatcher;

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  /** Queues `count` builds of one job each and claims them all. */
  async function claimed(count: number): Promise<Fence[]> {
    batches = [];
    batcher = new CompletionBatcher((completions: Completion[]) => {
      batches.push(completions.length);
      return completeJobs(database.db, completions);
    });
    await queueNoopBuilds(database.db, 'batch', count);
    const jobs = await claimJobs(
      database.db,
      { workerId: 'w', platforms: ['linux/amd64'], leaseSeconds: 30 },
      count,
    );
    expect(jobs).toHaveLength(count);
    return jobs.map(({ job }) => ({ jobId: job.id, attempt: job.attempt }));
  }

  it('sends the first outcome at once and those that arrive meanwhile together', async () => {
    const fences = await claimed(8);
    const recorded = await Promise.all(
      fences.map((fence) => batcher.complete(fence, { state: 'succeeded', exitCode: 0 })),
    );
    expect(recorded).toEqual(Array(8).fill(true));
    expect(batches).toEqual([1, 7]);
    const job = await database.db.query.jobs.findFirst({
      where: (jobs, { eq }) => eq(jobs.id, fences[7]!.jobId),
    });
    expect(job?.state).toBe('succeeded');
    expect((await getBuild(database.db, job!.buildId))?.build.state).toBe('succeeded');
  });

  it('answers false for an attempt that no longer holds its job', async () => {
    const [fence] = await claimed(1);
    expect(
      await batcher.complete({ ...fence!, attempt: fence!.attempt + 1 }, { state: 'succeeded' }),
    ).toBe(false);
    expect(await batcher.complete(fence!, { state: 'succeeded' })).toBe(true);
  });

  it('sends each outcome of a failing batch on its own, so one bad outcome fails alone', async () => {
    const fences = await claimed(4);
    const file = { name: 'same', objectKey: 'k', size: 1, sha256: 'f'.repeat(64) };
    const results = await Promise.allSettled(
      fences.map((fence, index) =>
        batcher.complete(fence, {
          state: 'succeeded',
          // Two artifacts of one name break artifacts_job_name: that outcome cannot be stored.
          artifacts: index === 2 ? [file, file] : [file],
        }),
      ),
    );
    expect(results.map((result) => result.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/artifacts_job_name/);
    // The first alone, the other three together (failed), then each of the three alone.
    expect(batches).toEqual([1, 3, 1, 1, 1]);
  });

  it('gives up on a statement that hangs, so that later outcomes are not held up behind it', async () => {
    const [first, second] = await claimed(2);
    let calls = 0;
    const stuck = new CompletionBatcher(
      (completions) =>
        calls++ === 0 ? new Promise<boolean[]>(() => {}) : completeJobs(database.db, completions),
      // Long enough for the second, real statement on a loaded machine.
      { timeoutMs: 1000 },
    );
    await expect(stuck.complete(first!, { state: 'succeeded' })).rejects.toBeInstanceOf(
      CompletionTimeoutError,
    );
    expect(await stuck.complete(second!, { state: 'succeeded' })).toBe(true);
  });
});
