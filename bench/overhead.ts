// Benchmark 3: worker overhead, a trivial job end to end against a bare `docker run --rm`.
//
// Crossdock: a real worker process (worker/main.ts, idle, heartbeat 5 s, poll 2 s) with its own
// database and MinIO bucket; the bench stores a build of one job (createBuild) and waits for the
// build's NOTIFY saying it succeeded. Each build is of a new commit of a small local git
// repository, so a worker that keeps fetched repositories still fetches one commit per build. In
// between the worker claims the job, fetches the commit, creates a container of the builder
// image, copies the sources in, runs the script, stores its log, reads /out and uploads the one
// small file to MinIO, and records the outcome. Wall time = performance.now() when the build
// succeeded − performance.now() before createBuild, in milliseconds.
//
// Baseline: `docker run --rm` of the same image and script with the security settings the worker
// gives its containers (docker-init, no network, no-new-privileges, pids limit), timed around the
// CLI process, in milliseconds. The two alternate, after one warm-up each; medians count.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { CHANNELS } from '../db/notify';
import { createBuild, getBuild } from '../db/queries/builds';
import { createTestBucket } from '../test/support/services';
import { BUILD_CAPABILITIES } from '../worker/runner';
import {
  benchJob,
  createBenchDatabase,
  deferred,
  makeRepository,
  median,
  openDatabase,
  progress,
  removeContainersOf,
  round,
  spawnWorker,
  stopProcess,
  summarize,
  waitUntil,
  withTimeout,
  writeResult,
  BUILDER_IMAGE,
  type WorkerProcess,
  cpuBusyPercent,
} from './support';

const NAME = 'overhead';
const run = promisify(execFile);
/** Measured samples of each. */
const SAMPLES = Number(process.env.BENCH_OVERHEAD_SAMPLES ?? 10);
/** The trivial job: a line of log and one small file in /out. */
const SCRIPT = 'mkdir -p /out; echo "hello from a trivial job"; echo hello > /out/hello.txt';
/** Target: Crossdock's median at most this times the bare run's … */
const TARGET_RATIO = 1.15;
/** … or at most this many ms more. */
const TARGET_ADDED_MS = 100;

/** The same container as the worker makes, through the docker CLI; wall time in ms. */
async function bareDockerRun(): Promise<number> {
  const before = performance.now();
  await run('docker', [
    'run',
    '--rm',
    '--init',
    '--network',
    'none',
    '--security-opt',
    'no-new-privileges',
    '--pids-limit',
    '4096',
    '--cap-drop',
    'ALL',
    ...BUILD_CAPABILITIES.flatMap((capability) => ['--cap-add', capability]),
    BUILDER_IMAGE,
    'bash',
    '--noprofile',
    '--norc',
    '-eo',
    'pipefail',
    '-c',
    SCRIPT,
  ]);
  return performance.now() - before;
}

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const database = await createBenchDatabase();
  const bucket = await createTestBucket();
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-bench-'));
  const db = openDatabase(database.url, 3);
  const listener = postgres(database.url, { max: 1, onnotice: () => {} });
  const waiting = new Map<number, (state: string) => void>();
  let worker: WorkerProcess | undefined;
  try {
    const { cloneUrl, newCommit } = makeRepository(dir);
    await listener.listen(CHANNELS.builds, (payload) => {
      const buildId = Number(payload);
      const resolve = waiting.get(buildId);
      if (!resolve) return;
      void getBuild(db, buildId).then((build) => {
        const state = build?.build.state;
        if (state && state !== 'queued' && state !== 'running') resolve(state);
      });
    });
    worker = spawnWorker(
      { databaseUrl: database.url, storage: bucket.storage, workDir: join(dir, 'work') },
      { WORKER_HEARTBEAT_SECONDS: '5' },
    );
    const workerId = worker.workerId;
    await waitUntil('the worker registered', async () => {
      const [row] = await db.$client`select 1 from workers where id = ${workerId} and online`;
      return row ? true : undefined;
    });

    /** One Crossdock sample: wall time in ms, and where it went, from the database's clock. */
    const crossdockSample = async () => {
      const finished = deferred<string>();
      const sha = newCommit();
      const before = performance.now();
      const { build, jobs } = await createBuild(db, {
        repo: { owner: 'bench', name: 'overhead', cloneUrl, source: 'git' },
        sha,
        ref: 'main',
        branch: 'main',
        trigger: 'api',
        requester: 'bench',
        recipeDigest: `overhead-${before}`,
        reuse: false,
        jobs: [benchJob(SCRIPT, { artifacts: ['hello.txt'] })],
      });
      waiting.set(build.id, finished.resolve);
      // The build may have finished before the listener knew to wait for it.
      const stored = await getBuild(db, build.id);
      if (stored?.build.state === 'succeeded') finished.resolve('succeeded');
      const state = await withTimeout(finished.promise, 60_000, `build ${build.id}`);
      const wallMs = performance.now() - before;
      waiting.delete(build.id);
      if (state !== 'succeeded')
        throw new Error(`build ${build.id} ended ${state}: ${worker?.output()}`);
      const [row] = await db.$client<{ queued_ms: number; run_ms: number; artifacts: number }[]>`
        select extract(epoch from j.started_at - b.created_at) * 1000 as queued_ms,
               extract(epoch from j.finished_at - j.started_at) * 1000 as run_ms,
               (select count(*)::int from artifacts a where a.job_id = j.id) as artifacts
        from jobs j join builds b on b.id = j.build_id where j.id = ${jobs[0]!.id}`;
      if (row?.artifacts !== 1)
        throw new Error(`job ${jobs[0]!.id} has ${row?.artifacts} artifacts`);
      return { wallMs, claimMs: Number(row.queued_ms), runMs: Number(row.run_ms) };
    };

    progress(NAME, 'warming up (one of each)');
    await crossdockSample();
    await bareDockerRun();
    progress(NAME, `${SAMPLES} samples of each, alternating`);
    const crossdock: Awaited<ReturnType<typeof crossdockSample>>[] = [];
    const bare: number[] = [];
    for (let i = 0; i < SAMPLES; i += 1) {
      if (i % 2 === 0) {
        crossdock.push(await crossdockSample());
        bare.push(await bareDockerRun());
      } else {
        bare.push(await bareDockerRun());
        crossdock.push(await crossdockSample());
      }
    }
    const objects = await bucket.keys();
    if (objects.filter((key) => key.endsWith('/hello.txt')).length !== SAMPLES + 1)
      throw new Error(`expected ${SAMPLES + 1} uploaded files, found ${objects.length} objects`);

    const oursMs = round(median(crossdock.map((sample) => sample.wallMs)));
    const theirsMs = round(median(bare));
    const ratio = round(oursMs / theirsMs);
    const addedMs = round(oursMs - theirsMs);
    await writeResult(
      NAME,
      {
        description:
          'Trivial job end to end (createBuild → claim → container → log → upload of one file → succeeded) vs bare `docker run --rm`; milliseconds, medians',
        parameters: {
          samples: SAMPLES,
          script: SCRIPT,
          image: BUILDER_IMAGE,
          crossdock:
            'worker/main.ts as a process, slots 1, heartbeat 5 s, poll 2 s; done = build NOTIFY with state succeeded',
          baseline:
            'docker run --rm --init --network none --security-opt no-new-privileges --pids-limit 4096 --cap-drop ALL --cap-add (BUILD_CAPABILITIES) IMAGE bash --noprofile --norc -eo pipefail -c SCRIPT',
        },
        crossdock: {
          medianMs: oursMs,
          wallMs: summarize(crossdock.map((sample) => sample.wallMs)),
          enqueueToClaimMs: summarize(crossdock.map((sample) => sample.claimMs)),
          claimToRecordedMs: summarize(crossdock.map((sample) => sample.runMs)),
        },
        baseline: { medianMs: theirsMs, wallMs: summarize(bare) },
        ratio,
        addedMs,
        verdicts: [
          {
            target: `Crossdock ${oursMs} ms ≤ ${TARGET_RATIO} × bare docker run ${theirsMs} ms (ratio ${ratio}) or ≤ ${TARGET_ADDED_MS} ms added (${addedMs} ms)`,
            pass: ratio <= TARGET_RATIO || addedMs <= TARGET_ADDED_MS,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    if (worker) {
      await stopProcess(worker);
      removeContainersOf([worker.workerId]);
    }
    await listener.end();
    await db.$client.end();
    await database.drop();
    await bucket.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
