// Benchmark 1: dispatch latency, enqueue → job start, against graphile-worker.
//
// Crossdock: `createBuild` with one job (one transaction, NOTIFY crossdock_jobs) → the handler
// of a Dispatcher with 1 slot in this process is invoked. graphile-worker: `addJob` through
// WorkerUtils → the task function of a runner with concurrency 1 in this process is invoked.
// Both wake on their own LISTEN/NOTIFY; polling is set to 2 s so that a sample that waited for a
// poll stands out. The two systems take turns in batches, so machine noise hits both.
//
// Latency of one sample = performance.now() at the handler's first line − performance.now()
// just before the enqueue call, in milliseconds. After each sample the job is completed and the
// bench waits SETTLE_MS, so every sample starts with an idle consumer (the "sequential").
// A second, shorter phase enqueues the next job as soon as the previous one completed, with no
// settle time: it shows whether a notification that arrives while the consumer is busy with
// its own bookkeeping after a job is lost (the sample then waits for the 2 s poll).
//
// The results also split each latency: the enqueue call itself (`enqueueMs`, until its commit
// returned) and the rest (`afterEnqueueMs`: NOTIFY delivery, the claim, the handler call).
import { EventEmitter } from 'node:events';
import { makeWorkerUtils, run, type WorkerEvents } from 'graphile-worker';
import { createLogger } from '../core/logger';
import { completeJob } from '../db/queries/jobs';
import { Dispatcher } from '../worker/dispatcher';
import {
  benchWorker,
  createBenchDatabase,
  deferred,
  enqueueNoopBuild,
  openDatabase,
  openWorkerDatabase,
  progress,
  round,
  silentGraphileLogger,
  sleep,
  summarize,
  withTimeout,
  writeResult,
  GRAPHILE_WORKER_VERSION,
  cpuBusyPercent,
} from './support';

const NAME = 'dispatch';
/** Measured samples per system. */
const SAMPLES = Number(process.env.BENCH_DISPATCH_SAMPLES ?? 1000);
/** Samples per system before measuring (connections, JIT, plans), discarded. */
const WARMUP = 30;
/** Samples in a row of one system before the other takes its turn. */
const BATCH = 50;
/** Pause after a sample's job completed, in ms, so that the consumer is idle again. */
const SETTLE_MS = 15;
/** Samples per system of the back-to-back phase (no settle time). */
const BACK_TO_BACK = Number(process.env.BENCH_DISPATCH_BACK_TO_BACK ?? 100);
/** Poll interval of both systems, in seconds: long, so that only NOTIFY wakes them in time. */
const POLL_SECONDS = 2;
/** A sample slower than this (ms) waited for a poll: its NOTIFY was missed. */
const MISSED_NOTIFY_MS = 500;
/** Target: Crossdock's p50 at most this many ms … */
const TARGET_P50_MS = 10;
/** … and at most this times graphile-worker's p50. */
const TARGET_RATIO = 1.2;

/** One system under test: `enqueue` adds one job; its handler reports to the system's Probe. */
interface System {
  name: string;
  enqueue(): Promise<unknown>;
  stop(): Promise<void>;
}

/** What the handlers report to the sample that is waiting for them. */
class Probe {
  private startedAt = deferred<number>();
  private finished = deferred();

  /** Called from a handler's first line. */
  started(): void {
    this.startedAt.resolve(performance.now());
  }

  /** Called once the job's completion is recorded. */
  done(): void {
    this.finished.resolve();
  }

  /** Arms the probe for the next sample; returns the promises of its start (ms) and end. */
  arm(): { started: Promise<number>; done: Promise<void> } {
    this.startedAt = deferred<number>();
    this.finished = deferred();
    return { started: this.startedAt.promise, done: this.finished.promise };
  }
}

/** A Dispatcher with one slot whose handler records the job as succeeded at once. */
async function startCrossdock(url: string, probe: Probe): Promise<System> {
  const producer = openDatabase(url, 2);
  const consumer = openWorkerDatabase(url, 1);
  const dispatcher = new Dispatcher(
    {
      worker: benchWorker(`bench-dispatch-${process.pid}`, 1),
      pollSeconds: POLL_SECONDS,
    },
    {
      db: consumer,
      log: createLogger({ name: 'bench', level: 'warn' }),
      handler: async ({ job }) => {
        probe.started();
        await completeJob(
          consumer,
          { jobId: job.id, attempt: job.attempt },
          { state: 'succeeded', exitCode: 0 },
        );
        probe.done();
      },
    },
  );
  const running = dispatcher.run();
  return {
    name: 'crossdock',
    enqueue: () => enqueueNoopBuild(producer),
    async stop() {
      dispatcher.stop();
      await running;
      await producer.$client.end();
      await consumer.$client.end();
    },
  };
}

/** A graphile-worker runner with concurrency 1 and a no-op task, plus WorkerUtils to add jobs. */
async function startGraphile(url: string, probe: Probe): Promise<System> {
  const utils = await makeWorkerUtils({ connectionString: url, logger: silentGraphileLogger });
  await utils.migrate();
  const events: WorkerEvents = new EventEmitter();
  events.on('job:complete', () => probe.done());
  const runner = await run({
    connectionString: url,
    concurrency: 1,
    pollInterval: POLL_SECONDS * 1000,
    noHandleSignals: true,
    logger: silentGraphileLogger,
    events,
    taskList: {
      noop: async () => {
        probe.started();
      },
    },
  });
  return {
    name: 'graphile-worker',
    enqueue: () => utils.addJob('noop', {}),
    async stop() {
      await runner.stop();
      await utils.release();
    },
  };
}

/** One sample: enqueue, wait for the handler's start and the completion; times in ms. */
async function sample(
  system: System,
  probe: Probe,
): Promise<{ latencyMs: number; enqueueMs: number }> {
  const { started, done } = probe.arm();
  const before = performance.now();
  await system.enqueue();
  const enqueued = performance.now();
  const startedAt = await withTimeout(started, 10_000, `${system.name}: job start`);
  await withTimeout(done, 10_000, `${system.name}: job completion`);
  return { latencyMs: startedAt - before, enqueueMs: enqueued - before };
}

/** Runs `count` samples per system, alternating batches; returns each system's samples. */
async function measure(
  systems: { system: System; probe: Probe }[],
  count: number,
  settleMs: number,
): Promise<Map<string, { latencyMs: number[]; enqueueMs: number[] }>> {
  const results = new Map(
    systems.map(({ system }) => [
      system.name,
      { latencyMs: [] as number[], enqueueMs: [] as number[] },
    ]),
  );
  for (let batch = 0; batch * BATCH < count; batch += 1) {
    const order = batch % 2 === 0 ? systems : [...systems].reverse();
    for (const { system, probe } of order) {
      const into = results.get(system.name)!;
      for (let i = 0; i < Math.min(BATCH, count - batch * BATCH); i += 1) {
        const { latencyMs, enqueueMs } = await sample(system, probe);
        into.latencyMs.push(latencyMs);
        into.enqueueMs.push(enqueueMs);
        if (settleMs > 0) await sleep(settleMs);
      }
    }
  }
  return results;
}

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const database = await createBenchDatabase();
  const crossdockProbe = new Probe();
  const graphileProbe = new Probe();
  let crossdock: System | undefined;
  let graphile: System | undefined;
  try {
    crossdock = await startCrossdock(database.url, crossdockProbe);
    graphile = await startGraphile(database.url, graphileProbe);
    const systems = [
      { system: crossdock, probe: crossdockProbe },
      { system: graphile, probe: graphileProbe },
    ];
    progress(NAME, `warming up (${WARMUP} samples each)`);
    await measure(systems, WARMUP, SETTLE_MS);
    progress(NAME, `${SAMPLES} sequential samples each, in alternating batches of ${BATCH}`);
    const sequential = await measure(systems, SAMPLES, SETTLE_MS);
    progress(NAME, `${BACK_TO_BACK} back-to-back samples each (no settle time)`);
    const backToBack = await measure(systems, BACK_TO_BACK, 0);

    const summary = (runs: typeof sequential, name: string) => {
      const { latencyMs, enqueueMs } = runs.get(name)!;
      return {
        latencyMs: summarize(latencyMs),
        enqueueMs: summarize(enqueueMs),
        afterEnqueueMs: summarize(latencyMs.map((value, index) => value - enqueueMs[index]!)),
        missedNotifications: latencyMs.filter((value) => value > MISSED_NOTIFY_MS).length,
      };
    };
    const ours = summary(sequential, 'crossdock');
    const theirs = summary(sequential, 'graphile-worker');
    const ratioP50 = round(ours.latencyMs.p50 / theirs.latencyMs.p50);
    await writeResult(
      NAME,
      {
        description:
          'Dispatch latency, enqueue call → handler invoked, same process, idle consumer with 1 slot; milliseconds',
        parameters: {
          samplesPerSystem: SAMPLES,
          warmupPerSystem: WARMUP,
          batch: BATCH,
          settleMs: SETTLE_MS,
          pollSeconds: POLL_SECONDS,
          backToBackSamplesPerSystem: BACK_TO_BACK,
          missedNotificationAboveMs: MISSED_NOTIFY_MS,
          crossdock: 'createBuild (1 job) → Dispatcher slots 1, pollSeconds 2',
          baseline: `graphile-worker ${GRAPHILE_WORKER_VERSION}: WorkerUtils.addJob → run() concurrency 1, pollInterval 2000`,
        },
        crossdock: ours,
        baseline: theirs,
        ratio: { p50: ratioP50, p99: round(ours.latencyMs.p99 / theirs.latencyMs.p99) },
        backToBack: {
          crossdock: summary(backToBack, 'crossdock'),
          baseline: summary(backToBack, 'graphile-worker'),
        },
        verdicts: [
          {
            target: `Crossdock p50 ${ours.latencyMs.p50} ms ≤ ${TARGET_P50_MS} ms`,
            pass: ours.latencyMs.p50 <= TARGET_P50_MS,
          },
          {
            target: `Crossdock p50 ${ours.latencyMs.p50} ms ≤ ${TARGET_RATIO} × graphile-worker's ${theirs.latencyMs.p50} ms (ratio ${ratioP50})`,
            pass: ratioP50 <= TARGET_RATIO,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    await crossdock?.stop().catch((error) => console.error(error));
    await graphile?.stop().catch((error) => console.error(error));
    await database.drop();
  }
}

await main();
