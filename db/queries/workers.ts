import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { toolchainFor } from '../../core/routing';
import type { Database } from '../client';
import { jobs, workers } from '../schema';
import type { Job } from './builds';

export type Worker = typeof workers.$inferSelect;

/** What a worker process announces of itself when it starts. */
export type WorkerRegistration = Pick<
  Worker,
  | 'id'
  | 'host'
  | 'pid'
  | 'version'
  | 'platforms'
  | 'emulatedPlatforms'
  | 'labels'
  | 'slots'
  | 'heartbeatSeconds'
  | 'images'
>;

/** Registers (or re-registers) a worker process as online. */
export async function registerWorker(db: Database, worker: WorkerRegistration): Promise<void> {
  await db
    .insert(workers)
    .values({ ...worker, online: true })
    .onConflictDoUpdate({
      target: workers.id,
      set: {
        ...worker,
        online: true,
        startedAt: sql`now()`,
        lastHeartbeatAt: sql`now()`,
        stoppedAt: null,
      },
    });
}

/** Records a heartbeat of `workerId`, and the builder images it now has when given. */
export async function heartbeatWorker(
  db: Database,
  workerId: string,
  images?: Record<string, string>,
): Promise<void> {
  await db
    .update(workers)
    .set({ lastHeartbeatAt: sql`now()`, online: true, ...(images ? { images } : {}) })
    .where(eq(workers.id, workerId));
}

/** Marks a worker as stopped (clean shutdown). */
export async function markWorkerStopped(db: Database, workerId: string): Promise<void> {
  await db
    .update(workers)
    .set({ online: false, stoppedAt: sql`now()` })
    .where(eq(workers.id, workerId));
}

/** SQL: the worker row `w` has heartbeated within two of its intervals and has not stopped. */
const isLive = sql`(${workers.online} and ${workers.lastHeartbeatAt} > now() - make_interval(secs => 2 * ${workers.heartbeatSeconds}))`;

export interface WorkerStatus extends Worker {
  /** Online and heartbeating: it stopped heartbeating less than two intervals ago. */
  live: boolean;
  /** Ids of the jobs it runs now, ascending. */
  runningJobIds: number[];
}

/**
 * Every registered worker, live ones first, then by id, with the jobs each runs. Workers that
 * stopped or were lost are kept (with `live: false`) so an operator sees what left the fleet.
 */
export async function listWorkers(db: Database): Promise<WorkerStatus[]> {
  const rows = await db
    .select({
      worker: workers,
      live: sql<boolean>`${isLive}`,
      runningJobIds: sql<
        string[]
      >`coalesce(array_agg(${jobs.id} order by ${jobs.id}) filter (where ${jobs.id} is not null), '{}')`,
    })
    .from(workers)
    .leftJoin(jobs, and(eq(jobs.workerId, workers.id), eq(jobs.state, 'running')))
    .groupBy(workers.id)
    .orderBy(sql`${isLive} desc`, asc(workers.id));
  return rows.map((row) => ({
    ...row.worker,
    live: row.live,
    runningJobIds: row.runningJobIds.map(Number),
  }));
}

/**
 * Where a worker stands: `live` (heartbeating), `stopped` (it shut down cleanly) or `lost` (it
 * stopped heartbeating without saying goodbye: killed, crashed, cut off).
 */
export type WorkerState = 'live' | 'stopped' | 'lost';

/** The WorkerState of a row of `listWorkers`. */
export function workerState(worker: Pick<WorkerStatus, 'live' | 'stoppedAt'>): WorkerState {
  return worker.live ? 'live' : worker.stoppedAt ? 'stopped' : 'lost';
}

/** Queue depth of one run platform, with the live capacity that serves it. */
export interface PlatformQueue {
  runPlatform: string;
  queued: number;
  running: number;
  /**
   * Live workers that run this platform natively or by emulation (emulating ones take only its
   * `toolchain: emulated` jobs; explainQueuedJobs tells per job).
   */
  workers: number;
  /** Their slots not taken by running jobs. */
  freeSlots: number;
}

/**
 * Queued and running job counts per run platform, with the live workers serving each; of
 * `workers` when the caller lists them too (listWorkers; a promise of them is counted alongside),
 * else listed here.
 */
export async function queueDepth(
  db: Database,
  workers?: WorkerStatus[] | Promise<WorkerStatus[]>,
): Promise<PlatformQueue[]> {
  const counted = db
    .select({
      runPlatform: jobs.runPlatform,
      queued: sql<number>`(count(*) filter (where ${jobs.state} = 'queued' and ${jobs.reuseOfJobId} is null))::int`,
      running: sql<number>`(count(*) filter (where ${jobs.state} = 'running'))::int`,
    })
    .from(jobs)
    .where(inArray(jobs.state, ['queued', 'running']))
    .groupBy(jobs.runPlatform)
    .orderBy(asc(jobs.runPlatform));
  const [counts, all] = await Promise.all([counted, workers ?? listWorkers(db)]);
  const live = all.filter((worker) => worker.live);
  return counts.map((count) => {
    const serving = live.filter(
      (worker) =>
        worker.platforms.includes(count.runPlatform) ||
        worker.emulatedPlatforms.includes(count.runPlatform),
    );
    return {
      ...count,
      workers: serving.length,
      freeSlots: serving.reduce(
        (sum, worker) => sum + Math.max(0, worker.slots - worker.runningJobIds.length),
        0,
      ),
    };
  });
}

/**
 * Whether `worker` may run `job`: in some toolchain mode the job allows (core/routing.ts
 * toolchainFor, the claim's rule) and with every label it requires.
 */
export function workerServes(
  worker: Pick<Worker, 'platforms' | 'emulatedPlatforms' | 'labels'>,
  job: Pick<Job, 'platform' | 'toolchains' | 'labels'>,
): boolean {
  return (
    toolchainFor(job.toolchains, job.platform, worker) !== undefined &&
    job.labels.every((label) => worker.labels.includes(label))
  );
}

/**
 * Why each of `queuedJobs` still waits, in words for people: attached to an identical job, no
 * live worker serves its platform (and labels), or all such workers are busy and how many jobs
 * are ahead. Jobs that are not queued are left out of the map.
 */
export async function explainQueuedJobs(
  db: Database,
  queuedJobs: Job[],
): Promise<Map<number, string>> {
  const reasons = new Map<number, string>();
  const waiting = queuedJobs.filter((job) => job.state === 'queued');
  if (waiting.length === 0) return reasons;
  const live = (await listWorkers(db)).filter((worker) => worker.live);
  for (const job of waiting) {
    if (job.reuseOfJobId !== null) {
      reasons.set(
        job.id,
        `attached to job ${job.reuseOfJobId}, an identical build of the same commit; it takes that job's outcome`,
      );
      continue;
    }
    const labels = job.labels.length ? ` with labels ${job.labels.join(', ')}` : '';
    const serving = live.filter((worker) => workerServes(worker, job));
    if (serving.length === 0) {
      reasons.set(job.id, `no worker${labels} serves ${job.runPlatform}`);
      continue;
    }
    const [ahead] = await db
      .select({ count: sql<number>`count(*)::int` })
      .from(jobs)
      .where(
        and(
          eq(jobs.state, 'queued'),
          sql`${jobs.reuseOfJobId} is null`,
          eq(jobs.runPlatform, job.runPlatform),
          sql`(${jobs.priority} > ${job.priority} or (${jobs.priority} = ${job.priority} and ${jobs.id} < ${job.id}))`,
        ),
      );
    const slots = serving.reduce((sum, worker) => sum + worker.slots, 0);
    reasons.set(
      job.id,
      `waiting for a free slot: ${serving.length} worker(s)${labels} serve ${job.runPlatform} ` +
        `with ${slots} slot(s); ${ahead?.count ?? 0} job(s) ahead`,
    );
  }
  return reasons;
}
