import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger';
import { queueNoopBuilds, workerRegistration } from '../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { completeJobs } from '../db/queries/jobs';
import { CompletionBatcher } from './completions';
import { Dispatcher } from './dispatcher';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Dispatcher', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('runs every job once and never more at a time than its slots, with claims overlapping', async () => {
    const jobs = 60;
    const slots = 3;
    await queueNoopBuilds(database.db, 'slots', jobs);
    const completions = new CompletionBatcher((batch) => completeJobs(database.db, batch));
    const ran: number[] = [];
    let running = 0;
    let mostAtOnce = 0;
    const dispatcher = new Dispatcher(
      {
        worker: workerRegistration('w-slots', { slots, heartbeatSeconds: 30 }),
        pollSeconds: 30,
      },
      {
        db: database.db,
        log: createLogger({ name: 'test', level: 'silent' }),
        handler: async ({ job }) => {
          running += 1;
          mostAtOnce = Math.max(mostAtOnce, running);
          ran.push(job.id);
          // Uneven lengths, so that slots free up one by one while claims are on their way.
          await sleep(job.id % 3);
          running -= 1;
          await completions.complete(
            { jobId: job.id, attempt: job.attempt },
            { state: 'succeeded' },
          );
        },
      },
    );
    const run = dispatcher.run();
    for (let waited = 0; ran.length < jobs && waited < 20_000; waited += 20) await sleep(20);
    dispatcher.stop();
    await run;
    expect(ran).toHaveLength(jobs);
    expect(new Set(ran).size).toBe(jobs);
    expect(mostAtOnce).toBe(slots);
    const [counts] = await database.db.$client<{ succeeded: number; once: number }[]>`
      select count(*) filter (where state = 'succeeded')::int as succeeded,
             count(*) filter (where attempt = 1)::int as once
      from jobs`;
    expect(counts).toEqual({ succeeded: jobs, once: jobs });
  });

  it('claims for a released slot while the outcome is recorded, up to twice its slots, and waits for those jobs at stop', async () => {
    const slots = 2;
    await queueNoopBuilds(database.db, 'released', 6);
    // Every job releases its slot at once, then waits to record its outcome until `recordAll`.
    let recordAll!: () => void;
    const recording = new Promise<void>((resolve) => (recordAll = resolve));
    const completions = new CompletionBatcher((batch) => completeJobs(database.db, batch));
    const started: number[] = [];
    const recorded: number[] = [];
    const dispatcher = new Dispatcher(
      {
        worker: workerRegistration('w-released', { slots, heartbeatSeconds: 30 }),
        pollSeconds: 30,
      },
      {
        db: database.db,
        log: createLogger({ name: 'test', level: 'silent' }),
        handler: async ({ job }, _signal, releaseSlot) => {
          started.push(job.id);
          releaseSlot();
          releaseSlot(); // twice is once
          await recording;
          await completions.complete(
            { jobId: job.id, attempt: job.attempt },
            { state: 'succeeded' },
          );
          recorded.push(job.id);
        },
      },
    );
    const run = dispatcher.run();
    for (let waited = 0; started.length < 2 * slots && waited < 10_000; waited += 20)
      await sleep(20);
    await sleep(300); // time for a wrong extra claim
    // Released slots were claimed again, but no more jobs wait for their outcome than slots.
    expect(started).toHaveLength(2 * slots);
    dispatcher.stop();
    let stopped = false;
    void run.then(() => (stopped = true));
    await sleep(100);
    expect(stopped).toBe(false); // run() waits for the outcomes being recorded
    recordAll();
    await run;
    expect(recorded.sort()).toEqual(started.sort());
    const [counts] = await database.db.$client<{ succeeded: number; queued: number }[]>`
      select count(*) filter (where jobs.state = 'succeeded')::int as succeeded,
             count(*) filter (where jobs.state = 'queued')::int as queued
      from jobs join builds on builds.id = jobs.build_id
      join repos on repos.id = builds.repo_id where repos.name = 'released'`;
    expect(counts).toEqual({ succeeded: 2 * slots, queued: 6 - 2 * slots });
  });

  it('never queues its own job again when its lease ran out (a late heartbeat): the job runs on', async () => {
    await queueNoopBuilds(database.db, 'late', 1);
    let finish!: () => void;
    const finishing = new Promise<void>((resolve) => (finish = resolve));
    const completions = new CompletionBatcher((batch) => completeJobs(database.db, batch));
    const started: { id: number; attempt: number }[] = [];
    const stops: unknown[] = [];
    const dispatcher = new Dispatcher(
      {
        worker: workerRegistration('w-late', { slots: 2, heartbeatSeconds: 30 }),
        pollSeconds: 0.1,
      },
      {
        db: database.db,
        log: createLogger({ name: 'test', level: 'silent' }),
        handler: async ({ job, repo }, signal) => {
          // Jobs other tests left queued are finished at once.
          if (repo.name === 'late') {
            started.push({ id: job.id, attempt: job.attempt });
            signal.addEventListener('abort', () => stops.push(signal.reason));
            await finishing;
          }
          await completions.complete(
            { jobId: job.id, attempt: job.attempt },
            { state: 'succeeded' },
          );
        },
      },
    );
    const run = dispatcher.run();
    for (let waited = 0; started.length === 0 && waited < 10_000; waited += 20) await sleep(20);
    // Its heartbeat is late (a busy host): the lease has run out, and the worker polls every
    // 100 ms. Another worker would queue the job again; this one, which runs it, must not.
    await database.db.$client`
      update jobs set lease_expires_at = now() - interval '1 second' where id = ${started[0]!.id}`;
    await sleep(600);
    const [row] = await database.db.$client<{ state: string; attempt: number }[]>`
      select state, attempt from jobs where id = ${started[0]!.id}`;
    expect(row).toEqual({ state: 'running', attempt: 1 });
    expect(started).toHaveLength(1);
    expect(stops).toEqual([]);
    finish();
    dispatcher.stop();
    await run;
    const [done] = await database.db.$client<{ state: string; attempt: number }[]>`
      select state, attempt from jobs where id = ${started[0]!.id}`;
    expect(done).toEqual({ state: 'succeeded', attempt: 1 });
  });
});
