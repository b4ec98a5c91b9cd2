import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { CHANNELS } from '../notify';
import { artifacts, builds, jobs, repos, type JobState } from '../schema';
import type { Build, Job } from './builds';
import type { Repo } from './repos';

type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];

/** A job a worker has claimed, with what it needs to run it. `job.attempt` fences its writes. */
export interface ClaimedJob {
  job: Job;
  build: Build;
  repo: Repo;
}

/**
 * Claims the oldest queued job whose run platform is one of `platforms` (OCI form), for
 * `leaseSeconds`: state → running, attempt + 1. Concurrent claimers never get the same job
 * (FOR UPDATE SKIP LOCKED; docs/decisions/0001-postgres-queue.md). Returns undefined when
 * nothing is claimable.
 */
export async function claimJob(
  db: Database,
  worker: { workerId: string; platforms: string[]; leaseSeconds: number },
): Promise<ClaimedJob | undefined> {
  return db.transaction(async (tx) => {
    const [job] = await tx
      .update(jobs)
      .set({
        state: 'running',
        attempt: sql`${jobs.attempt} + 1`,
        workerId: worker.workerId,
        leaseExpiresAt: sql`now() + make_interval(secs => ${worker.leaseSeconds})`,
        startedAt: sql`now()`,
        exitCode: null,
        error: null,
      })
      .where(
        eq(
          jobs.id,
          sql`(select id from ${jobs}
               where state = 'queued' and run_platform in ${worker.platforms}
               order by id limit 1 for update skip locked)`,
        ),
      )
      .returning();
    if (!job) return undefined;
    await tx
      .update(builds)
      .set({ state: 'running', startedAt: sql`coalesce(${builds.startedAt}, now())` })
      .where(and(eq(builds.id, job.buildId), eq(builds.state, 'queued')));
    const [row] = await tx
      .select({ build: builds, repo: repos })
      .from(builds)
      .innerJoin(repos, eq(repos.id, builds.repoId))
      .where(eq(builds.id, job.buildId));
    await notifyBuild(tx, job.buildId);
    return { job, build: row!.build, repo: row!.repo };
  });
}

/** Extends the leases of every job `workerId` holds by `leaseSeconds`; returns how many. */
export async function renewLeases(
  db: Database,
  workerId: string,
  leaseSeconds: number,
): Promise<number> {
  const rows = await db
    .update(jobs)
    .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
    .where(and(eq(jobs.workerId, workerId), eq(jobs.state, 'running')))
    .returning({ id: jobs.id });
  return rows.length;
}

/** Queues again every running job whose lease has expired (its worker is gone); returns them. */
export async function requeueExpiredJobs(db: Database): Promise<Job[]> {
  return db.transaction(async (tx) => {
    const requeued = await tx
      .update(jobs)
      .set({ state: 'queued', workerId: null, leaseExpiresAt: null })
      .where(and(eq(jobs.state, 'running'), sql`${jobs.leaseExpiresAt} < now()`))
      .returning();
    for (const job of requeued) {
      await tx.execute(sql`select pg_notify(${CHANNELS.jobs}, ${job.runPlatform})`);
    }
    return requeued;
  });
}

/** Records the digest (image id, sha256:…) of the builder image a claimed attempt runs in. */
export async function setJobImageDigest(
  db: Database,
  fence: { jobId: number; attempt: number },
  imageDigest: string,
): Promise<void> {
  await db
    .update(jobs)
    .set({ imageDigest })
    .where(
      and(eq(jobs.id, fence.jobId), eq(jobs.attempt, fence.attempt), eq(jobs.state, 'running')),
    );
}

export interface NewArtifact {
  name: string;
  objectKey: string;
  size: number;
  sha256: string;
}

export interface JobOutcome {
  state: Exclude<JobState, 'queued' | 'running'>;
  exitCode?: number;
  error?: string;
  artifacts?: NewArtifact[];
}

/**
 * Finishes attempt `attempt` of a job: records its outcome and artifacts and updates the build's
 * state, in one transaction. Fenced: if the job is no longer running that attempt (its lease
 * expired and it was claimed again, or it was canceled), nothing is written and it returns false;
 * the caller must then delete the objects it uploaded.
 */
export async function completeJob(
  db: Database,
  fence: { jobId: number; attempt: number },
  outcome: JobOutcome,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [job] = await tx
      .update(jobs)
      .set({
        state: outcome.state,
        exitCode: outcome.exitCode,
        error: outcome.error,
        finishedAt: sql`now()`,
        leaseExpiresAt: null,
      })
      .where(
        and(eq(jobs.id, fence.jobId), eq(jobs.attempt, fence.attempt), eq(jobs.state, 'running')),
      )
      .returning();
    if (!job) return false;
    if (outcome.artifacts?.length) {
      await tx
        .insert(artifacts)
        .values(outcome.artifacts.map((artifact) => ({ ...artifact, jobId: job.id })));
    }
    await updateBuildState(tx, job.buildId);
    return true;
  });
}

/** Sets a build's state from its jobs: running while any is unfinished, else the worst outcome. */
async function updateBuildState(tx: Transaction, buildId: number): Promise<void> {
  await tx.execute(sql`
    update ${builds} set
      state = summary.state,
      finished_at = case when summary.state in ('queued', 'running') then null else now() end
    from (
      select case
        when bool_or(state = 'running') or (bool_or(state = 'queued') and bool_or(state <> 'queued')) then 'running'
        when bool_and(state = 'queued') then 'queued'
        when bool_or(state = 'canceled') then 'canceled'
        when bool_or(state in ('failed', 'timed_out')) then 'failed'
        else 'succeeded' end as state
      from ${jobs} where build_id = ${buildId}
    ) as summary
    where ${builds.id} = ${buildId}`);
  await notifyBuild(tx, buildId);
}

async function notifyBuild(tx: Transaction, buildId: number): Promise<void> {
  await tx.execute(sql`select pg_notify(${CHANNELS.builds}, ${String(buildId)})`);
}
