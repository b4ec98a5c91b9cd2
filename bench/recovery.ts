// Benchmark 4: recovery after `kill -9`, time to reclaim ÷ heartbeat interval.
//
// Worker processes (worker/main.ts) with a heartbeat of HEARTBEAT_SECONDS share one database and
// bucket. One long job (`sleep`) is queued; the first worker claims it and its container runs.
// Each sample then: starts a fresh worker and waits until it has registered (it is idle: the
// only job is held), waits a random part of a heartbeat (so the kill falls anywhere between two
// heartbeats), SIGKILLs the worker holding the job, and measures from the kill to the moment the
// job's next attempt was claimed by the fresh worker (the job row's started_at, set by the claim,
// on the database's clock, which is this machine's). The fresh worker then holds the job and is
// the next sample's victim. The job allows enough infrastructure failures to outlive every kill.
//
// A lease lasts 1.5 heartbeats from the last renewal, so the reclaim is expected between 0.5 and
// 1.5 heartbeats after the kill, plus the time to notice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBuild } from '../db/queries/builds';
import { createTestBucket } from '../test/support/services';
import {
  benchJob,
  createBenchDatabase,
  makeRepository,
  median,
  openDatabase,
  progress,
  removeContainersOf,
  round,
  sleep,
  spawnWorker,
  stopProcess,
  summarize,
  waitUntil,
  writeResult,
  type WorkerProcess,
  cpuBusyPercent,
} from './support';

const NAME = 'recovery';
/** Samples (kills). */
const SAMPLES = Number(process.env.BENCH_RECOVERY_SAMPLES ?? 6);
/** Heartbeat interval of every worker, in seconds. */
const HEARTBEAT_SECONDS = 2;
/** Target: reclaim ÷ heartbeat at most this, for every sample. */
const TARGET_RATIO = 2;

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const database = await createBenchDatabase();
  const bucket = await createTestBucket();
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-bench-'));
  const db = openDatabase(database.url, 2);
  const workers: WorkerProcess[] = [];
  const start = () => {
    const worker = spawnWorker(
      { databaseUrl: database.url, storage: bucket.storage, workDir: join(dir, 'work') },
      { WORKER_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS), WORKER_STOP_GRACE_SECONDS: '0' },
    );
    workers.push(worker);
    return worker;
  };
  const registered = (worker: WorkerProcess) =>
    waitUntil(`worker ${worker.workerId} registered`, async () => {
      const [row] =
        await db.$client`select 1 from workers where id = ${worker.workerId} and online`;
      return row ? true : undefined;
    });
  /** Waits until `worker` holds the job with attempt `attempt` and its script has started. */
  const holding = (jobId: number, worker: WorkerProcess, attempt: number) =>
    waitUntil(
      `worker ${worker.workerId} runs attempt ${attempt}`,
      async () => {
        const [row] = await db.$client<{ started_ms: number }[]>`
          select extract(epoch from j.started_at) * 1000 as started_ms from jobs j
          where j.id = ${jobId} and j.attempt = ${attempt} and j.worker_id = ${worker.workerId}
            and j.state = 'running'
            and exists (select 1 from job_log_chunks c where c.job_id = j.id
                          and c.attempt = ${attempt} and c.data like '%job is running%')`;
        return row ? Number(row.started_ms) : undefined;
      },
      60_000,
      10,
    );

  try {
    const { cloneUrl, sha } = makeRepository(dir);
    let holder = start();
    await registered(holder);
    const { jobs } = await createBuild(db, {
      repo: { owner: 'bench', name: 'recovery', cloneUrl, source: 'git' },
      sha,
      ref: 'main',
      branch: 'main',
      trigger: 'api',
      requester: 'bench',
      recipeDigest: 'recovery',
      reuse: false,
      jobs: [benchJob('echo "job is running"; sleep 3600', { maxInfraFailures: SAMPLES + 5 })],
    });
    const jobId = jobs[0]!.id;
    await holding(jobId, holder, 1);

    const reclaimMs: number[] = [];
    for (let attempt = 2; attempt <= SAMPLES + 1; attempt += 1) {
      const next = start();
      await registered(next);
      await sleep(Math.random() * HEARTBEAT_SECONDS * 1000);
      const killedAt = Date.now();
      holder.kill('SIGKILL');
      const claimedAt = await holding(jobId, next, attempt);
      reclaimMs.push(claimedAt - killedAt);
      progress(
        NAME,
        `sample ${attempt - 1}/${SAMPLES}: reclaimed ${round((claimedAt - killedAt) / 1000)} s after the kill`,
      );
      holder = next;
    }

    const ratios = reclaimMs.map((ms) => round(ms / 1000 / HEARTBEAT_SECONDS));
    const worst = Math.max(...ratios);
    const medianRatio = round(median(ratios));
    await writeResult(
      NAME,
      {
        description:
          'Recovery after SIGKILL of the worker holding a job: kill → next attempt claimed by an idle worker; reclaim time ÷ heartbeat interval',
        parameters: {
          samples: SAMPLES,
          heartbeatSeconds: HEARTBEAT_SECONDS,
          leaseSeconds: HEARTBEAT_SECONDS * 1.5,
          pollSeconds: 2,
          workers:
            'worker/main.ts processes; the kill falls at a random point between two heartbeats',
        },
        crossdock: {
          reclaimMs: summarize(reclaimMs),
          ratios,
          medianRatio,
          worstRatio: worst,
        },
        baseline:
          'none: graphile-worker 0.16 recovers jobs of a dead worker only after 4 hours (locked_at) unless told with forceUnlockWorkers',
        verdicts: [
          {
            target: `reclaim ÷ heartbeat ≤ ${TARGET_RATIO} in every sample (worst ${worst}, median ${medianRatio})`,
            pass: worst <= TARGET_RATIO,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    // The last holder is killed too: the workers and their containers are this bench's only.
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((worker) => stopProcess(worker, 1000)));
    removeContainersOf(workers.map((worker) => worker.workerId));
    await db.$client.end();
    await database.drop();
    await bucket.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
