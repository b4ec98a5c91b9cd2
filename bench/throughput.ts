// Benchmark 2: throughput of no-op jobs at concurrency 8, against graphile-worker (unbatched).
//
// A seed database gets QUEUED Crossdock builds of one no-op job each (createBuild, as the bot
// makes them) and QUEUED graphile-worker jobs (add_job), then is analyzed. Each run copies the
// seed (CREATE DATABASE … TEMPLATE), so every run starts from the same queue, starts one
// system's consumers in this process, and times until every job is done:
//
// - crossdock-1x8: one Dispatcher with 8 slots (pool of 11 connections, as worker/main.ts sizes
//   it). This is the configuration the target is judged on: one worker process with
//   WORKER_SLOTS=8 is what an operator runs on one machine, as graphile-worker's concurrency 8
//   is one process with 8 workers.
// - crossdock-8x1: eight Dispatchers with 1 slot each (pools of 4), as eight worker processes
//   would be, for comparison: it shows how much of the difference is the single claim loop.
// - crossdock-1x8-held: as crossdock-1x8, but each job holds its slot until its outcome is
//   recorded, for comparison: it shows what releasing the slot first (as the Docker worker does
//   once its container is gone; see JobHandler) is worth.
// - graphile-worker: run() with concurrency 8, default pool (10), no local queue or batching.
//
// A handler completes its job at once (Crossdock: releases its slot and records the outcome
// through the CompletionBatcher, as the Docker worker does; graphile-worker: the task returns and
// the library completes it, unbatched). Throughput = jobs ÷ (last completion − first job start), in
// jobs per second; the runs rotate the order of the systems and each is run RUNS times; the
// median counts.
import { EventEmitter } from 'node:events';
import postgres from 'postgres';
import { makeWorkerUtils, run, type WorkerEvents } from 'graphile-worker';
import { createLogger } from '../core/logger';
import { completeJobs } from '../db/queries/jobs';
import { CompletionBatcher } from '../worker/completions';
import { Dispatcher } from '../worker/dispatcher';
import { databaseUrlFor, loadServiceEnv } from '../test/support/services';
import {
  benchWorker,
  createBenchDatabase,
  enqueueNoopBuild,
  median,
  openDatabase,
  openWorkerDatabase,
  progress,
  round,
  silentGraphileLogger,
  waitUntil,
  writeResult,
  BENCH_REPO,
  GRAPHILE_WORKER_VERSION,
  cpuBusyPercent,
} from './support';

const NAME = 'throughput';
/** Jobs pre-queued for each run. */
const JOBS = Number(process.env.BENCH_THROUGHPUT_JOBS ?? 2000);
/** Runs of each configuration. */
const RUNS = Number(process.env.BENCH_THROUGHPUT_RUNS ?? 5);
/** Jobs that run at once. */
const CONCURRENCY = 8;
/** Poll interval of every consumer, in seconds; NOTIFY and the claim loops do the work. */
const POLL_SECONDS = 2;
/** Target: Crossdock (one Dispatcher, 8 slots) ≥ this times graphile-worker's throughput. */
const TARGET_RATIO = 0.8;
/** createBuild calls in flight while seeding (each lane its own repository, so none wait). */
const SEED_LANES = 4;

/** What one run measured; times in ms from performance.now(). */
interface RunResult {
  config: string;
  jobsPerSecond: number;
  /** Jobs ÷ (last completion − consumers started): includes startup (registration, LISTEN). */
  wallJobsPerSecond: number;
  firstStartMs: number;
  lastDoneMs: number;
}

/** Counts job starts and completions of one run. */
class Tally {
  started = 0;
  done = 0;
  firstStartAt = Number.NaN;
  lastDoneAt = Number.NaN;

  start(): void {
    if (this.started++ === 0) this.firstStartAt = performance.now();
  }

  finish(): void {
    this.done += 1;
    this.lastDoneAt = performance.now();
  }
}

/**
 * A Dispatcher whose handler records its job as succeeded. With `releaseSlot`, the handler first
 * releases its slot, as the Docker worker does once the container is gone (see JobHandler).
 */
function dispatcher(url: string, id: string, slots: number, tally: Tally, releaseSlot: boolean) {
  const db = openWorkerDatabase(url, slots);
  const completions = new CompletionBatcher((batch) => completeJobs(db, batch));
  const instance = new Dispatcher(
    {
      worker: benchWorker(id, slots),
      pollSeconds: POLL_SECONDS,
    },
    {
      db,
      log: createLogger({ name: 'bench', level: 'warn' }),
      handler: async ({ job }, _signal, release) => {
        tally.start();
        if (releaseSlot) release();
        await completions.complete(
          { jobId: job.id, attempt: job.attempt },
          { state: 'succeeded', exitCode: 0 },
        );
        tally.finish();
      },
    },
  );
  return { instance, db };
}

/** Consumes the copied queue with `count` Dispatchers of `slots` slots; checks exactly-once. */
async function runCrossdock(
  url: string,
  count: number,
  slots: number,
  tally: Tally,
  releaseSlot = true,
) {
  const dispatchers = Array.from({ length: count }, (_, index) =>
    dispatcher(url, `bench-throughput-${index}`, slots, tally, releaseSlot),
  );
  const runs = dispatchers.map(({ instance }) => instance.run());
  await waitUntil(
    'Crossdock jobs done',
    async () => (tally.done >= JOBS ? true : undefined),
    300_000,
    5,
  );
  for (const { instance } of dispatchers) instance.stop();
  await Promise.all(runs);
  const [check] = await dispatchers[0]!.db.$client<{ succeeded: number; once: number }[]>`
    select count(*) filter (where state = 'succeeded')::int as succeeded,
           count(*) filter (where attempt = 1)::int as once
    from jobs`;
  for (const { db } of dispatchers) await db.$client.end();
  if (check?.succeeded !== JOBS || check.once !== JOBS)
    throw new Error(
      `Crossdock: expected ${JOBS} jobs succeeded once, got ${JSON.stringify(check)}`,
    );
}

/** Consumes the copied queue with graphile-worker at concurrency 8; checks the queue is empty. */
async function runGraphile(url: string, tally: Tally) {
  const events: WorkerEvents = new EventEmitter();
  events.on('job:complete', () => tally.finish());
  const runner = await run({
    connectionString: url,
    concurrency: CONCURRENCY,
    pollInterval: POLL_SECONDS * 1000,
    noHandleSignals: true,
    logger: silentGraphileLogger,
    events,
    taskList: {
      noop: async () => {
        tally.start();
      },
    },
  });
  await waitUntil(
    'graphile-worker jobs done',
    async () => (tally.done >= JOBS ? true : undefined),
    300_000,
    5,
  );
  await runner.stop();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const [left] = await sql<{ count: number }[]>`select count(*)::int from graphile_worker.jobs`;
  await sql.end();
  if (left?.count !== 0) throw new Error(`graphile-worker: ${left?.count} jobs left in the queue`);
}

/** Queues JOBS Crossdock builds and JOBS graphile-worker jobs into the seed database. */
async function seed(url: string): Promise<void> {
  const db = openDatabase(url, SEED_LANES);
  let next = 0;
  await Promise.all(
    Array.from({ length: SEED_LANES }, async (_, lane) => {
      const repo = { ...BENCH_REPO, name: `noop-${lane}` };
      while (next < JOBS) {
        next += 1;
        await enqueueNoopBuild(db, repo);
      }
    }),
  );
  await db.$client.end();
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGraphileLogger });
  await utils.migrate();
  await utils.withPgClient((client) =>
    client.query(
      `select graphile_worker.add_job('noop', json_build_object('i', i)) from generate_series(1, $1::int) as i`,
      [JOBS],
    ),
  );
  await utils.release();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  await sql`vacuum analyze`;
  await sql.end();
}

/** A copy of database `template` for one run; returns its URL and how to drop it. */
async function copyDatabase(template: string, copy: string) {
  const env = loadServiceEnv();
  const admin = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${copy} template ${template}`);
  await admin.end();
  return {
    url: databaseUrlFor(env.databaseUrl, copy),
    async drop() {
      const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists ${copy} with (force)`);
      await sql.end();
    },
  };
}

const CONFIGS: Record<string, (url: string, tally: Tally) => Promise<void>> = {
  'crossdock-1x8': (url, tally) => runCrossdock(url, 1, CONCURRENCY, tally),
  'crossdock-8x1': (url, tally) => runCrossdock(url, CONCURRENCY, 1, tally),
  'crossdock-1x8-held': (url, tally) => runCrossdock(url, 1, CONCURRENCY, tally, false),
  'graphile-worker': (url, tally) => runGraphile(url, tally),
};

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const seedDatabase = await createBenchDatabase();
  const seedName = new URL(seedDatabase.url).pathname.slice(1);
  try {
    progress(NAME, `seeding ${JOBS} Crossdock builds and ${JOBS} graphile-worker jobs`);
    await seed(seedDatabase.url);
    const results: RunResult[] = [];
    // BENCH_THROUGHPUT_CONFIGS=crossdock-1x8 runs one system alone (e.g. to profile it).
    const names = process.env.BENCH_THROUGHPUT_CONFIGS?.split(',') ?? Object.keys(CONFIGS);
    for (let round_ = 0; round_ < RUNS; round_ += 1) {
      const order = names.map((_, index) => names[(index + round_) % names.length]!);
      for (const config of order) {
        const copy = await copyDatabase(seedName, `${seedName}_run`);
        try {
          const tally = new Tally();
          const startedAt = performance.now();
          await CONFIGS[config]!(copy.url, tally);
          const result = {
            config,
            jobsPerSecond: round(JOBS / ((tally.lastDoneAt - tally.firstStartAt) / 1000), 1),
            wallJobsPerSecond: round(JOBS / ((tally.lastDoneAt - startedAt) / 1000), 1),
            firstStartMs: round(tally.firstStartAt - startedAt),
            lastDoneMs: round(tally.lastDoneAt - startedAt),
          };
          results.push(result);
          progress(NAME, `run ${round_ + 1}/${RUNS} ${config}: ${result.jobsPerSecond} jobs/s`);
        } finally {
          await copy.drop();
        }
      }
    }
    const medianOf = (config: string) =>
      round(median(results.filter((r) => r.config === config).map((r) => r.jobsPerSecond)), 1);
    if (process.env.BENCH_THROUGHPUT_CONFIGS) {
      for (const config of names) progress(NAME, `${config}: median ${medianOf(config)} jobs/s`);
      return; // a partial run is no result to write
    }
    const ours = medianOf('crossdock-1x8');
    const eightProcesses = medianOf('crossdock-8x1');
    const held = medianOf('crossdock-1x8-held');
    const theirs = medianOf('graphile-worker');
    const ratio = round(ours / theirs);
    await writeResult(
      NAME,
      {
        description:
          'Throughput of pre-queued no-op jobs at concurrency 8, jobs per second (first start → last completion), median of runs',
        parameters: {
          jobsPerRun: JOBS,
          runsPerConfiguration: RUNS,
          concurrency: CONCURRENCY,
          pollSeconds: POLL_SECONDS,
          crossdock:
            'crossdock-1x8: one Dispatcher, slots 8, pool 11, slot released before the outcome is recorded, as the Docker worker does (judged); crossdock-8x1: eight Dispatchers, slots 1, pools of 4; crossdock-1x8-held: slot held until the outcome is recorded (both for comparison)',
          baseline: `graphile-worker ${GRAPHILE_WORKER_VERSION}: run() concurrency 8, pollInterval 2000, default pool, unbatched`,
          enqueue:
            'Crossdock: createBuild, one job per build; graphile-worker: add_job; both before the run',
        },
        crossdock: {
          jobsPerSecond: ours,
          eightDispatchersJobsPerSecond: eightProcesses,
          slotHeldJobsPerSecond: held,
        },
        baseline: { jobsPerSecond: theirs },
        ratio: {
          oneDispatcher: ratio,
          eightDispatchers: round(eightProcesses / theirs),
          slotHeld: round(held / theirs),
        },
        runs: results,
        verdicts: [
          {
            target: `Crossdock (1 Dispatcher × 8 slots) ${ours} jobs/s ≥ ${TARGET_RATIO} × graphile-worker's ${theirs} jobs/s (ratio ${ratio})`,
            pass: ratio >= TARGET_RATIO,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    await seedDatabase.drop();
  }
}

await main();
