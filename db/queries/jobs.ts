import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Database, Transaction } from '../client';
import { PendingNotifications } from '../notify';
import { artifacts, builds, jobs, repos, type JobState } from '../schema';
import type { Build, Job } from './builds';
import type { Repo } from './repos';
import { fromRowJson, type RowJson } from './rows';

/** A database handle or an open transaction: the queries below run in either. */
export type Queryable = Database | Transaction;

/** A job a worker has claimed, with what it needs to run it. `job.attempt` fences its writes. */
export interface ClaimedJob {
  job: Job;
  build: Build;
  repo: Repo;
}

/** Which attempt of which job a worker's write belongs to. */
export interface Fence {
  jobId: number;
  attempt: number;
}

/** What a worker serves, as the queue matches it against jobs. */
export interface Claimer {
  workerId: string;
  /** OCI platforms it runs natively. */
  platforms: string[];
  /** OCI platforms it runs by emulation; only `toolchain: emulated` jobs are matched on these. */
  emulatedPlatforms?: string[];
  /** The worker's labels: a job is matched when it requires none that are missing. */
  labels?: string[];
  /** How long the claim holds without a heartbeat renewing it. */
  leaseSeconds: number;
}

/**
 * Claims the queued job that comes first (highest priority, then oldest) among those `claimer`
 * can run; see claimJobs. Returns undefined when nothing is claimable.
 */
export async function claimJob(db: Database, claimer: Claimer): Promise<ClaimedJob | undefined> {
  return (await claimJobs(db, claimer, 1))[0];
}

/**
 * Claims up to `limit` queued jobs `claimer` can run, first come first (highest priority, then
 * oldest), for `leaseSeconds`: state → running, attempt + 1; their builds become running. One
 * statement; concurrent claimers never get the same job (FOR UPDATE SKIP LOCKED;
 * docs/decisions/0001-postgres-queue.md). Returns the claimed jobs in claim order (maybe none).
 */
export async function claimJobs(
  db: Database,
  claimer: Claimer,
  limit: number,
): Promise<ClaimedJob[]> {
  const rows = await db.execute<{ job: RowJson; build: RowJson; repo: RowJson }>(sql`
    with candidate as (
      select id from ${jobs}
      where state = 'queued' and reuse_of_job_id is null
        and (run_platform = any(${sql.param(claimer.platforms)}::text[])
             or (toolchain = 'emulated'
                 and run_platform = any(${sql.param(claimer.emulatedPlatforms ?? [])}::text[])))
        and labels <@ ${sql.param(claimer.labels ?? [])}::text[]
      -- The order of the index jobs_claimable, so no sort of the queue is needed.
      order by priority desc nulls last, id
      limit ${limit}
      for update skip locked
    ), claimed as (
      update ${jobs} set
        state = 'running', attempt = ${jobs}.attempt + 1, worker_id = ${claimer.workerId},
        lease_expires_at = now() + make_interval(secs => ${claimer.leaseSeconds}),
        started_at = now(), finished_at = null, exit_code = null, error = null
      from candidate where ${jobs}.id = candidate.id
      returning ${jobs}.*
    ), build_started as (
      update ${builds} set state = 'running', started_at = coalesce(${builds}.started_at, now())
      where id in (select build_id from claimed) and state = 'queued'
      returning *
    )
    select to_jsonb(claimed) as job,
           case when started.id is null then to_jsonb(b) else to_jsonb(started) end as build,
           to_jsonb(r) as repo
    from claimed
    join ${builds} b on b.id = claimed.build_id
    left join build_started started on started.id = claimed.build_id
    join ${repos} r on r.id = b.repo_id
    order by claimed.priority desc, claimed.id`);
  if (rows.length === 0) return [];
  const claimed = rows.map((row) => ({
    job: fromRowJson(jobs, row.job),
    build: fromRowJson(builds, row.build),
    repo: fromRowJson(repos, row.repo),
  }));
  const pending = new PendingNotifications();
  for (const { build } of claimed) pending.build(build.id);
  await pending.send(db);
  return claimed;
}

/** A job with its build and repository (what a worker runs, what a log page shows); undefined for no such job. */
export async function getJobWithBuild(
  db: Database,
  jobId: number,
): Promise<ClaimedJob | undefined> {
  const [row] = await db
    .select({ job: jobs, build: builds, repo: repos })
    .from(jobs)
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(eq(jobs.id, jobId));
  return row;
}

/** A running job a worker holds, as its heartbeat sees it. */
export interface HeldJob {
  jobId: number;
  attempt: number;
  /** Someone asked to cancel it: the worker must stop it and record `canceled`. */
  cancelRequested: boolean;
}

/**
 * Extends by `leaseSeconds` the lease of every job `workerId` holds and returns them. A job the
 * worker runs that is missing from the result is no longer its own (its lease expired and it was
 * queued again, or it finished): the worker must stop it without recording anything.
 */
export async function renewLeases(
  db: Database,
  workerId: string,
  leaseSeconds: number,
): Promise<HeldJob[]> {
  const rows = await db
    .update(jobs)
    .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
    .where(and(eq(jobs.workerId, workerId), eq(jobs.state, 'running')))
    .returning({
      jobId: jobs.id,
      attempt: jobs.attempt,
      cancelRequestedAt: jobs.cancelRequestedAt,
    });
  return rows.map((row) => ({
    jobId: row.jobId,
    attempt: row.attempt,
    cancelRequested: row.cancelRequestedAt !== null,
  }));
}

/** When the first lease of a running job runs out, or undefined when none is running. */
export async function nextLeaseExpiry(db: Database): Promise<Date | undefined> {
  const [row] = await db
    .select({ at: sql<string | null>`min(${jobs.leaseExpiresAt})` })
    .from(jobs)
    .where(eq(jobs.state, 'running'));
  return row?.at ? new Date(row.at) : undefined;
}

/** What became of a job whose attempt ended without an outcome of its own. */
export type RetryResult = 'queued' | 'failed' | 'canceled';

/**
 * Ends every running attempt whose lease has expired (its worker is gone): each job is queued
 * again, or fails once it has lost `max_infra_failures` attempts, or is canceled if that was
 * asked. Returns the jobs with what became of them.
 */
export async function requeueExpiredJobs(
  db: Database,
): Promise<{ job: Job; result: RetryResult }[]> {
  const pending = new PendingNotifications();
  const results = await db.transaction(async (tx) => {
    const expired = await tx
      .select()
      .from(jobs)
      .where(and(eq(jobs.state, 'running'), sql`${jobs.leaseExpiresAt} < now()`))
      .for('update', { skipLocked: true });
    const results: { job: Job; result: RetryResult }[] = [];
    for (const job of expired) {
      const reason = `worker ${job.workerId ?? '?'} stopped heartbeating (lease expired)`;
      const settled = await endAttempt(tx, job, { reason, infrastructure: true }, pending);
      results.push({ job: settled.job, result: settled.result });
    }
    return results;
  });
  await pending.send(db);
  return results;
}

/**
 * Ends attempt `fence` without an outcome of the job's own: `infrastructure` (the worker, Docker
 * or object storage failed) counts toward the job's limit of infrastructure failures; otherwise
 * (the worker is shutting down) the job is simply handed back. The job is queued again, or fails
 * once the limit is reached, or is canceled if that was asked. Returns undefined when the
 * attempt no longer holds the job.
 */
export async function retryJob(
  db: Database,
  fence: Fence,
  options: { reason: string; infrastructure: boolean },
): Promise<RetryResult | undefined> {
  const pending = new PendingNotifications();
  const result = await db.transaction(async (tx) => {
    const [job] = await tx.select().from(jobs).where(fenced(fence)).for('update');
    if (!job) return undefined;
    return (await endAttempt(tx, job, options, pending)).result;
  });
  await pending.send(db);
  return result;
}

async function endAttempt(
  tx: Transaction,
  job: Job,
  options: { reason: string; infrastructure: boolean },
  pending: PendingNotifications,
): Promise<{ job: Job; result: RetryResult }> {
  const failures = job.infraFailures + (options.infrastructure ? 1 : 0);
  const result: RetryResult = job.cancelRequestedAt
    ? 'canceled'
    : failures >= job.maxInfraFailures
      ? 'failed'
      : 'queued';
  const error =
    result === 'failed'
      ? `infrastructure failure on ${failures} attempts; the last: ${options.reason}`
      : result === 'canceled'
        ? `canceled by ${job.canceledBy ?? 'an operator'}`
        : `attempt ${job.attempt} ended: ${options.reason}; queued again`;
  const [updated] = await tx
    .update(jobs)
    .set({
      state: result,
      infraFailures: failures,
      error,
      leaseExpiresAt: null,
      finishedAt: result === 'queued' ? null : sql`now()`,
    })
    .where(eq(jobs.id, job.id))
    .returning();
  if (result === 'queued') pending.jobs(job.runPlatform);
  else await settleFollowers(tx, updated!, pending);
  await updateBuildState(tx, job.buildId, pending);
  return { job: updated!, result };
}

/** Records the digest (image id, sha256:…) of the builder image a claimed attempt runs in. */
export async function setJobImageDigest(
  db: Database,
  fence: Fence,
  imageDigest: string,
): Promise<void> {
  await db.update(jobs).set({ imageDigest }).where(fenced(fence));
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
 * Finishes attempt `fence` of a job: records its outcome and artifacts, settles the jobs attached
 * to it (identical requests) and updates the builds' states, in one transaction. Fenced: if the
 * job is no longer running that attempt (its lease expired and it was claimed again, or it was
 * canceled while queued), nothing is written and it returns false; the caller must then delete
 * the objects it uploaded. Safe to call again after a lost connection: an outcome already
 * recorded for that attempt returns true.
 */
export async function completeJob(
  db: Database,
  fence: Fence,
  outcome: JobOutcome,
): Promise<boolean> {
  const pending = new PendingNotifications();
  const recorded = await db.transaction(async (tx) => {
    const [job] = await tx
      .update(jobs)
      .set({
        state: outcome.state,
        exitCode: outcome.exitCode,
        error:
          outcome.state === 'canceled'
            ? sql`'canceled by ' || coalesce(${jobs.canceledBy}, 'an operator')`
            : outcome.error,
        finishedAt: sql`now()`,
        leaseExpiresAt: null,
      })
      .where(fenced(fence))
      .returning();
    if (!job) {
      const [current] = await tx
        .select({ state: jobs.state, attempt: jobs.attempt })
        .from(jobs)
        .where(eq(jobs.id, fence.jobId));
      return current?.attempt === fence.attempt && current.state === outcome.state;
    }
    if (outcome.artifacts?.length) {
      await tx
        .insert(artifacts)
        .values(outcome.artifacts.map((artifact) => ({ ...artifact, jobId: job.id })));
    }
    // One round trip locks the build (see updateBuildState) and tells whether jobs follow this one.
    const [lock] = await tx.execute<{ followers: number }>(sql`
      select (select count(*)::int from ${jobs}
              where reuse_of_job_id = ${job.id} and state = 'queued') as followers
      from ${builds} where id = ${job.buildId} for update`);
    if (lock && lock.followers > 0) await settleFollowers(tx, job, pending);
    await updateBuildState(tx, job.buildId, pending, { locked: true });
    return true;
  });
  await pending.send(db);
  return recorded;
}

/**
 * Cancels jobs `jobIds` on behalf of `by` (e.g. `slack:U123`): queued ones at once, running ones
 * by asking their workers (NOTIFY on the cancel channel, and the next heartbeat), which stop the
 * container (SIGTERM, then SIGKILL after the grace period) and record `canceled`. Jobs already
 * finished are left as they are. Returns how many were canceled and how many are stopping.
 */
export async function cancelJobs(
  tx: Transaction,
  jobIds: number[],
  by: string,
  pending: PendingNotifications,
): Promise<{ canceled: number; stopping: number }> {
  if (jobIds.length === 0) return { canceled: 0, stopping: 0 };
  const canceled = await tx
    .update(jobs)
    .set({
      state: 'canceled',
      canceledBy: by,
      error: `canceled by ${by}`,
      finishedAt: sql`now()`,
    })
    .where(and(inArray(jobs.id, jobIds), eq(jobs.state, 'queued')))
    .returning();
  const stopping = await tx
    .update(jobs)
    .set({ cancelRequestedAt: sql`now()`, canceledBy: by })
    .where(and(inArray(jobs.id, jobIds), eq(jobs.state, 'running'), isNull(jobs.cancelRequestedAt)))
    .returning({ id: jobs.id, buildId: jobs.buildId });
  for (const job of stopping) pending.cancel(job.id);
  for (const job of canceled) await settleFollowers(tx, job, pending);
  for (const buildId of new Set(canceled.map((job) => job.buildId)))
    await updateBuildState(tx, buildId, pending);
  return { canceled: canceled.length, stopping: stopping.length };
}

/** Cancels every unfinished job of a build; see cancelJobs. Returns undefined for no such build. */
export async function cancelBuild(
  db: Database,
  buildId: number,
  by: string,
): Promise<{ canceled: number; stopping: number } | undefined> {
  const pending = new PendingNotifications();
  const result = await db.transaction(async (tx) => {
    const [build] = await tx
      .select({ id: builds.id })
      .from(builds)
      .where(eq(builds.id, buildId))
      .for('update');
    if (!build) return undefined;
    const open = await tx
      .select({ id: jobs.id })
      .from(jobs)
      .where(and(eq(jobs.buildId, buildId), inArray(jobs.state, ['queued', 'running'])));
    return cancelJobs(
      tx,
      open.map((job) => job.id),
      by,
      pending,
    );
  });
  await pending.send(db);
  return result;
}

/** The state of a job, e.g. to stop waiting on it. */
export async function getJob(db: Database, jobId: number): Promise<Job | undefined> {
  const [job] = await db.select().from(jobs).where(eq(jobs.id, jobId));
  return job;
}

/**
 * Of the containers' attempts `attempts` (read from their labels), those that no longer hold
 * their job, run by workers this fleet knows: their containers are leftovers of a lost worker or
 * a superseded attempt and may be removed. Attempts of workers unknown to this database (another
 * Crossdock on the same Docker host) are never returned.
 */
export async function findStaleAttempts<T extends Fence & { workerId: string }>(
  db: Database,
  attempts: T[],
): Promise<T[]> {
  if (attempts.length === 0) return [];
  const rows = await db.execute<{ index: number }>(sql`
    select a.index::int from jsonb_to_recordset(${JSON.stringify(
      attempts.map((attempt, index) => ({ index, ...attempt })),
    )}::jsonb) as a(index int, "jobId" bigint, attempt int, "workerId" text)
    where exists (select 1 from workers w where w.id = a."workerId")
      and not exists (
        select 1 from ${jobs} j where j.id = a."jobId" and j.attempt = a.attempt
          and j.state = 'running' and j.worker_id = a."workerId")`);
  return rows.map((row) => attempts[row.index]!);
}

function fenced(fence: Fence) {
  return and(eq(jobs.id, fence.jobId), eq(jobs.attempt, fence.attempt), eq(jobs.state, 'running'));
}

/**
 * After `job` reached a final state, settles the queued jobs attached to it: they take a
 * succeeded, failed or timed-out outcome with its artifacts; if it was canceled, they detach and
 * are queued to run on their own.
 */
async function settleFollowers(
  tx: Transaction,
  job: Job,
  pending: PendingNotifications,
): Promise<void> {
  if (job.state === 'canceled') {
    const detached = await tx
      .update(jobs)
      .set({ reuseOfJobId: null })
      .where(and(eq(jobs.reuseOfJobId, job.id), eq(jobs.state, 'queued')))
      .returning({ runPlatform: jobs.runPlatform });
    for (const row of detached) pending.jobs(row.runPlatform);
    return;
  }
  const followers = await tx
    .update(jobs)
    .set({
      state: job.state,
      exitCode: job.exitCode,
      imageDigest: job.imageDigest,
      error: job.error,
      startedAt: job.startedAt,
      finishedAt: sql`now()`,
    })
    .where(and(eq(jobs.reuseOfJobId, job.id), eq(jobs.state, 'queued')))
    .returning({ id: jobs.id, buildId: jobs.buildId });
  if (followers.length === 0) return;
  await copyArtifacts(
    tx,
    job.id,
    followers.map((follower) => follower.id),
  );
  for (const buildId of new Set(followers.map((follower) => follower.buildId)))
    await updateBuildState(tx, buildId, pending);
}

/** Gives jobs `toJobIds` artifact rows for the objects of job `fromJobId`'s artifacts. */
export async function copyArtifacts(
  tx: Transaction,
  fromJobId: number,
  toJobIds: number[],
): Promise<void> {
  if (toJobIds.length === 0) return;
  await tx.execute(sql`
    insert into ${artifacts} (job_id, name, object_key, size, sha256)
    select target.id, a.name, a.object_key, a.size, a.sha256
    from ${artifacts} a cross join unnest(${sql.param(toJobIds)}::bigint[]) as target(id)
    where a.job_id = ${fromJobId}`);
}

/**
 * Sets a build's state from its jobs: running while any is unfinished, else the worst outcome;
 * a change is added to `pending`. Call it in the transaction that changed the jobs: it first
 * locks the build's row (unless the caller did: `locked`), so that two transactions finishing
 * jobs of one build at once take turns, and the second (its next statement reading anew under
 * READ COMMITTED) sees the first's job.
 */
export async function updateBuildState(
  tx: Queryable,
  buildId: number,
  pending: PendingNotifications,
  options: { locked?: boolean } = {},
): Promise<void> {
  if (!options.locked)
    await tx.execute(sql`select id from ${builds} where id = ${buildId} for update`);
  const changed = await tx.execute<{ id: string }>(sql`
    with summary as (
      select case
        when bool_or(state = 'running') or (bool_or(state = 'queued') and bool_or(state <> 'queued')) then 'running'
        when bool_and(state = 'queued') then 'queued'
        when bool_or(state = 'canceled') then 'canceled'
        when bool_or(state in ('failed', 'timed_out')) then 'failed'
        else 'succeeded' end as state
      from ${jobs} where build_id = ${buildId}
    )
    update ${builds} set
      state = summary.state,
      finished_at = case when summary.state in ('queued', 'running') then null else now() end
    from summary
    where ${builds.id} = ${buildId} and ${builds.state} is distinct from summary.state
    returning ${builds.id}`);
  if (changed.length > 0) pending.build(buildId);
}
