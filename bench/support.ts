// What every benchmark shares: scratch databases, the graphile-worker baseline, statistics, the
// machine's description and the results file. Units are in every name: `Ms` is milliseconds
// (performance.now(), monotonic), `Seconds` seconds.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, hostname, loadavg, release, tmpdir, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { Logger as GraphileLogger } from 'graphile-worker';
import { jobsForTargets } from '../bot/request-build';
import { parseRecipe, type Recipe } from '../core/recipe';
import { createBuild, getBuild, type NewJob } from '../db/queries/builds';
import type { NewRepo } from '../db/queries/repos';
import type { WorkerRegistration } from '../db/queries/workers';
import { connect, migrateDatabase, type Database } from '../db/client';
import type { StorageOptions } from '../core/storage';
import {
  removeContainersOf,
  spawnWorker as spawnTestWorker,
  stopProcess,
  storageEnvOf,
  type WorkerProcess,
} from '../test/support/processes';
import { workerRegistration } from '../test/support/queue';
import { createTestBucket, databaseUrlFor, loadServiceEnv } from '../test/support/services';

export { sleep };

const ROOT = new URL('../', import.meta.url).pathname;
/** Where each benchmark writes `<name>.json`. */
export const RESULTS_DIR = `${ROOT}bench/results`;
/** The builder image deploy/setup.sh builds. */
export const BUILDER_IMAGE = 'crossdock/builder-debian:bookworm';
/** The version of the baseline, as installed (package.json pins ^0.16). */
export const GRAPHILE_WORKER_VERSION = (
  JSON.parse(readFileSync(`${ROOT}node_modules/graphile-worker/package.json`, 'utf8')) as {
    version: string;
  }
).version;

/** graphile-worker's logger, silenced: the benchmarks measure jobs, not log lines. */
export const silentGraphileLogger = new GraphileLogger(() => () => {});

export interface BenchDatabase {
  /** postgres://… of the scratch database. */
  url: string;
  /** Closes nothing the caller opened; drops the database (with force). */
  drop(): Promise<void>;
}

/**
 * A new database `crossdock_bench_<hex>` on the local PostgreSQL with Crossdock's migrations
 * applied (graphile-worker installs its own schema in it when asked). Migrated here rather than
 * copied from the tests' template, which vitest's global setup drops and recreates at any time.
 */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const env = loadServiceEnv();
  const name = `crossdock_bench_${process.pid}_${randomBytes(6).toString('hex')}`;
  const admin = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  // Databases of benchmark processes that were killed (their pid is gone): a run's seed and its
  // copies are large, and nothing else removes them.
  const benchDatabases = await admin<{ datname: string }[]>`
    select datname from pg_database where datname ~ '^crossdock_bench_'`;
  for (const { datname } of benchDatabases) {
    const pid = Number(/^crossdock_bench_(\d+)_/.exec(datname)?.[1]);
    if (!processAlive(pid)) await admin.unsafe(`drop database if exists ${datname} with (force)`);
  }
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = databaseUrlFor(env.databaseUrl, name);
  await migrateDatabase(url);
  return {
    url,
    async drop() {
      const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.end();
    },
  };
}

/** Whether process `pid` of this machine is running (false for NaN, as for a name without one). */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A pool of at most `max` connections to `url` (Crossdock's own `connect`). */
export function openDatabase(url: string, max: number): Database {
  return connect(url, { max });
}

/** The pool of a worker with `slots` slots, opened as worker/main.ts opens it. */
export function openWorkerDatabase(url: string, slots: number): Database {
  return connect(url, { max: slots + 3, genericPlans: true });
}

/** A repository row every benchmark build belongs to; jobs never fetch it unless a worker runs them. */
export const BENCH_REPO: NewRepo = {
  owner: 'bench',
  name: 'noop',
  cloneUrl: '/nonexistent/bench.git',
  source: 'git',
};

/** A 40-hex-digit commit id, different at each call (so no two builds are identical). */
export function randomSha(): string {
  return randomBytes(20).toString('hex');
}

/** One linux/amd64 job in the builder image running `script`. */
export function benchJob(
  script: string,
  options: { artifacts?: string[]; maxInfraFailures?: number } = {},
): NewJob {
  return {
    target: 'amd64',
    platform: 'linux/amd64',
    toolchains: ['native'],
    image: BUILDER_IMAGE,
    maxInfraFailures: options.maxInfraFailures,
    spec: {
      script,
      artifacts: options.artifacts ?? [],
      env: {},
      network: false,
      timeoutMinutes: 30,
    },
  };
}

/** A linux/amd64 worker of `slots` slots on this host for a benchmark's Dispatcher (heartbeat 5 s). */
export function benchWorker(id: string, slots: number): WorkerRegistration {
  return workerRegistration(id, { host: hostname(), version: 'bench', slots, heartbeatSeconds: 5 });
}

/**
 * Enqueues a Crossdock build of one no-op job, as the bot does (createBuild: one transaction,
 * NOTIFY crossdock_jobs). Returns the job's id.
 */
export async function enqueueNoopBuild(db: Database, repo = BENCH_REPO): Promise<number> {
  const { jobs } = await createBuild(db, {
    repo,
    sha: randomSha(),
    ref: 'main',
    branch: 'main',
    trigger: 'api',
    requester: 'bench',
    recipeDigest: 'bench',
    jobs: [benchJob('true')],
  });
  return jobs[0]!.id;
}

/** A promise with its resolve function outside, for "wait until the handler says so". */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/** Rejects with `what` after `timeoutMs` unless `promise` settles first. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string) {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
}

/** The `p`-th percentile (0–100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The median (the mean of the middle two for an even count); NaN when empty. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Count, min, p50, p90, p99, max and mean of `values` (percentiles by nearest rank, as
 * `percentile`), rounded to 0.01 of their unit. Sorted once, and never spread into a call, so
 * any number of values will do (a call takes only about 100,000 arguments).
 */
export function summarize(values: number[]) {
  const round = (value: number) => Math.round(value * 100) / 100;
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
  return {
    count: values.length,
    min: round(sorted[0]!),
    p50: round(at(50)),
    p90: round(at(90)),
    p99: round(at(99)),
    max: round(sorted[sorted.length - 1]!),
    mean: round(values.reduce((sum, value) => sum + value, 0) / values.length),
  };
}

/** Rounds to `digits` decimals, for results people read. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function commandOutput(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .split('\n')[0];
  } catch {
    return undefined;
  }
}

function uncommittedChanges(): string[] {
  try {
    return execFileSync(
      'git',
      ['-C', ROOT, 'status', '--porcelain', '--', 'core', 'db', 'worker'],
      {
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter(Boolean);
  } catch {
    return ['(git status failed)'];
  }
}

/** What the numbers were measured on: CPUs, memory, kernel, Node, PostgreSQL, Docker, commit. */
export async function machineInfo() {
  const env = loadServiceEnv();
  const sql = postgres(env.databaseUrl, { max: 1, onnotice: () => {} });
  const [row] = await sql<{ version: string }[]>`select version()`;
  await sql.end();
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    /** 1, 5 and 15 minute load averages when the result was written (the bench's own load too). */
    loadAverage: loadavg().map((value) => round(value)),
    kernel: release(),
    node: process.version,
    postgres: row?.version.split(' on ')[0] ?? 'unknown',
    docker: commandOutput('docker', ['version', '--format', '{{.Server.Version}}']),
    graphileWorker: GRAPHILE_WORKER_VERSION,
    commit: commandOutput('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    /** Files of the code under test that differ from `commit` (the benchmarks' own excluded). */
    uncommittedChanges: uncommittedChanges(),
  };
}

/**
 * How busy the CPUs were over the next `ms` milliseconds, in percent of all cores (from
 * /proc/stat): call it before a benchmark starts to record what else the machine was doing.
 */
export async function cpuBusyPercent(ms = 1000): Promise<number> {
  const before = cpuTicks();
  await sleep(ms);
  const after = cpuTicks();
  const total = after.total - before.total;
  return total > 0 ? round((100 * (after.busy - before.busy)) / total, 1) : 0;
}

/**
 * The machine's CPU time so far, all cores, in clock ticks (the first line of /proc/stat):
 * `busy` is all of it but idle and iowait.
 */
export function cpuTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
  const ticks = fields.map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  return { busy: total - ticks[3]! - (ticks[4] ?? 0), total };
}

/** A benchmark's target and whether the run met it. */
export interface Verdict {
  /** The target in words, as the issue states it. */
  target: string;
  pass: boolean;
}

/**
 * Writes `bench/results/<name>.json`: the machine, the parameters, the raw summaries, the
 * ratio against the baseline, the target and pass/fail. Prints a one-line verdict.
 */
export async function writeResult(
  name: string,
  result: { description: string; verdicts: Verdict[] } & Record<string, unknown>,
  options: { cpuBusyBeforePercent: number },
): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = `${RESULTS_DIR}/${name}.json`;
  const body = {
    name,
    ...result,
    pass: result.verdicts.every((verdict) => verdict.pass),
    machine: {
      ...(await machineInfo()),
      /** CPU use by everything else in the second before the benchmark started, in %. */
      cpuBusyBeforePercent: options.cpuBusyBeforePercent,
    },
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  for (const verdict of result.verdicts)
    console.log(`[bench ${name}] ${verdict.pass ? 'PASS' : 'MISS'}: ${verdict.target}`);
  console.log(`[bench ${name}] wrote ${file}`);
}

/** Prints a progress line prefixed with the benchmark's name. */
export function progress(name: string, message: string): void {
  console.log(`[bench ${name}] ${message}`);
}

/**
 * A worker process for benchmarks: worker/main.ts as `bench-worker-<hex>`, logging at warn, on
 * `databaseUrl` and the bucket `storage`, with its work directory `workDir`; by default native
 * linux/amd64 only, no emulation, poll 2 s. `env` adds or overrides WORKER_* settings.
 */
export function spawnWorker(
  target: { databaseUrl: string; storage: StorageOptions; workDir: string },
  env: Record<string, string> = {},
): WorkerProcess {
  return spawnTestWorker(
    {
      DATABASE_URL: target.databaseUrl,
      ...storageEnvOf(target.storage),
      WORKER_WORK_DIR: target.workDir,
      WORKER_PLATFORMS: 'linux/amd64',
      WORKER_EMULATED_PLATFORMS: '',
      WORKER_POLL_SECONDS: '2',
      ...env,
    },
    { idPrefix: 'bench-worker', logLevel: 'warn' },
  );
}

export { removeContainersOf, stopProcess, type WorkerProcess };

export { makeRepository } from '../test/support/repository';

/** One of deploy/examples' real projects, ready for a benchmark to build (withExampleProject). */
export interface ExampleProject {
  db: Database;
  repo: { owner: string; name: string; cloneUrl: string };
  sha: string;
  recipe: Recipe;
  /** The worker process that builds it. */
  worker: WorkerProcess;
}

/**
 * Runs `body` with Debian source package `pkg` ready to build: a scratch database and bucket,
 * the package as a git repository (deploy/examples/make-source-repo.sh) registered as `repo`,
 * its recipe deploy/examples/<pkg>/crossdock.yml, and a worker process (1 slot, heartbeat 5 s,
 * poll 1 s; `workerEnv` adds or overrides). Stops and removes all of it afterwards.
 */
export async function withExampleProject<T>(
  options: {
    pkg: string;
    repo: { owner: string; name: string };
    workerEnv?: Record<string, string>;
  },
  body: (project: ExampleProject) => Promise<T>,
): Promise<T> {
  const database = await createBenchDatabase();
  const bucket = await createTestBucket();
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-bench-'));
  const db = openDatabase(database.url, 2);
  let worker: WorkerProcess | undefined;
  try {
    const cloneUrl = join(dir, `${options.pkg}.git`);
    const made = execFileSync(
      'bash',
      [join(ROOT, 'deploy/examples/make-source-repo.sh'), options.pkg, cloneUrl],
      { encoding: 'utf8' },
    );
    const sha = /sha=([0-9a-f]{40})/.exec(made)![1]!;
    const recipe = parseRecipe(
      readFileSync(join(ROOT, `deploy/examples/${options.pkg}/crossdock.yml`), 'utf8'),
    );
    worker = spawnWorker(
      { databaseUrl: database.url, storage: bucket.storage, workDir: join(dir, 'work') },
      { WORKER_HEARTBEAT_SECONDS: '5', WORKER_POLL_SECONDS: '1', ...options.workerEnv },
    );
    return await body({ db, repo: { ...options.repo, cloneUrl }, sha, recipe, worker });
  } finally {
    if (worker) {
      await stopProcess(worker);
      removeContainersOf([worker.workerId]);
    }
    await db.$client.end();
    await database.drop();
    await bucket.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds target `target` of `project` once through whatever worker serves it (`reuse: false`,
 * so it is really built). Returns the job's id and run time in seconds (finished_at −
 * started_at: claim → fetch → container → script → upload → recorded); throws, with the
 * worker's output, if it does not succeed within `timeoutMs`.
 */
export async function buildExampleTarget(
  project: ExampleProject,
  target: string,
  timeoutMs: number,
): Promise<{ jobId: number; seconds: number }> {
  const { db, recipe } = project;
  const { build, jobs } = await createBuild(db, {
    repo: { ...project.repo, source: 'git' },
    sha: project.sha,
    ref: 'main',
    branch: 'main',
    trigger: 'api',
    requester: 'bench',
    recipeDigest: recipe.digest,
    reuse: false,
    jobs: jobsForTargets(recipe, [target]),
  });
  const done = await waitUntil(
    `build ${build.id} (${target})`,
    async () => {
      const state = (await getBuild(db, build.id))?.build.state;
      return state === 'queued' || state === 'running' ? undefined : state;
    },
    timeoutMs,
    500,
  );
  if (done !== 'succeeded') throw new Error(`${target} ended ${done}: ${project.worker.output()}`);
  const [row] = await db.$client<{ seconds: number }[]>`
    select extract(epoch from finished_at - started_at)::float8 as seconds
    from jobs where id = ${jobs[0]!.id}`;
  return { jobId: jobs[0]!.id, seconds: Number(row!.seconds) };
}
