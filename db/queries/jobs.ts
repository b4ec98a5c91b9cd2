import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { CHANNELS } from '../notify';
import { builds, jobs, repos, type JobState } from '../schema';
import type { Build, Job } from './builds';
import type { Repo } from './repos';
import { fromRowJson, type RowJson } from './rows';

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
  /** OCI platforms it runs by emulation; only jobs allowing `emulated` are matched on these. */
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
 * oldest, in the order of the index jobs_claimable so that no sort of the queue is needed), for
 * `leaseSeconds`: state → running, attempt + 1; their builds become running. Each is claimed in
 * the first toolchain mode of the routing policy that it allows and the claimer can run (native,
 * cross, emulated: crossdock_toolchain_for), and left alone while a free live worker could run it
 * in an earlier mode; the claim records the mode, its run platform and image (spec.images). One statement;
 * concurrent claimers never get the same job (FOR UPDATE SKIP LOCKED;
 * docs/decisions/0001-postgres-queue.md). Returns the claimed jobs in claim order (maybe none).
 * It sends no NOTIFY: the caller tells the builds' watchers with notifyBuildsChanged once the jobs
 * are on their way (in the claim's own transaction it delayed each job's start by about 0.15 ms).
 */
export async function claimJobs(
  db: Database,
  claimer: Claimer,
  limit: number,
): Promise<ClaimedJob[]> {
  // A named prepared statement (postgres.js; drizzle's execute sends unnamed ones, parsed and
  // planned at every call). A plain statement, not a PL/pgSQL function: measured, it starts a job
  // about 0.1 ms sooner (docs/decisions/0004-queue-functions-in-sql.md).
  const rows = await db.$client<{ job: RowJson; build: RowJson; repo: RowJson }[]>`
    with candidate as (
      select jobs.id, matched.mode
      from jobs, lateral (
        select crossdock_toolchain_for(toolchains, platform, ${claimer.platforms}::text[],
                                       ${claimer.emulatedPlatforms ?? []}::text[]) as mode
      ) matched
      where state = 'queued' and reuse_of_job_id is null and matched.mode is not null
        and labels <@ ${claimer.labels ?? []}::text[]
        -- The best mode the job allows needs no look at other workers; a later one does.
        and (matched.mode = crossdock_toolchain_for(toolchains, platform,
                                                    array[platform, 'linux/amd64'], array[platform])
             or not crossdock_better_worker_free(toolchains, platform, labels, matched.mode,
                                                 ${claimer.workerId}))
      order by priority desc nulls last, id
      limit ${limit}
      for no key update of jobs skip locked
    ), claimed as (
      update jobs set
        state = 'running', attempt = jobs.attempt + 1, worker_id = ${claimer.workerId},
        toolchain = candidate.mode,
        run_platform = case when candidate.mode = 'cross' then 'linux/amd64' else jobs.platform end,
        image = coalesce(jobs.spec -> 'images' ->> candidate.mode, jobs.image),
        lease_expires_at = now() + make_interval(secs => ${claimer.leaseSeconds}),
        started_at = now(), finished_at = null, exit_code = null, error = null
      from candidate where jobs.id = candidate.id
      returning jobs.*
    ), build_started as (
      update builds set state = 'running', started_at = coalesce(builds.started_at, now())
      where id in (select build_id from claimed) and state = 'queued'
      returning *
    )
    select to_jsonb(claimed) as job,
           case when started.id is null then to_jsonb(b) else to_jsonb(started) end as build,
           to_jsonb(r) as repo
    from claimed
    join builds b on b.id = claimed.build_id
    left join build_started started on started.id = claimed.build_id
    join repos r on r.id = b.repo_id
    order by claimed.priority desc, claimed.id`;
  return rows.map((row) => ({
    job: fromRowJson(jobs, row.job),
    build: fromRowJson(builds, row.build),
    repo: fromRowJson(repos, row.repo),
  }));
}

/**
 * Tells whoever watches builds `buildIds` (the bot, `crossdock build --wait`) that they or their
 * jobs changed state: a NOTIFY on CHANNELS.builds for each, in one statement.
 */
export async function notifyBuildsChanged(db: Database, buildIds: number[]): Promise<void> {
  if (buildIds.length === 0) return;
  await db.$client`
    select pg_notify(${CHANNELS.builds}, id::text) from unnest(${buildIds}::bigint[]) as id`;
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

/**
 * When the first lease of a running job runs out, or undefined when none is running. Jobs held
 * by worker `except` are left out (a worker asks about the others').
 */
export async function nextLeaseExpiry(db: Database, except?: string): Promise<Date | undefined> {
  const [row] = await db
    .select({ at: sql<string | null>`min(${jobs.leaseExpiresAt})` })
    .from(jobs)
    .where(
      and(eq(jobs.state, 'running'), sql`${jobs.workerId} is distinct from ${except ?? null}`),
    );
  return row?.at ? new Date(row.at) : undefined;
}

/** What became of a job whose attempt ended without an outcome of its own. */
export type RetryResult = 'queued' | 'failed' | 'canceled';

/** How an attempt ended, as crossdock_end_attempt returns it. */
interface EndedAttempt {
  result: RetryResult;
  job: RowJson;
}

/**
 * Ends every running attempt whose lease has expired (its worker is gone): each job is queued
 * again, or fails once it has lost `max_infra_failures` attempts, or is canceled if that was
 * asked. Attempts of worker `except` are left alone (the caller is that worker, alive). One
 * statement. Returns the jobs with what became of them.
 */
export async function requeueExpiredJobs(
  db: Database,
  except?: string,
): Promise<{ job: Job; result: RetryResult }[]> {
  const rows = await db.execute<{ ended: EndedAttempt | null }>(sql`
    select crossdock_end_attempt(id, attempt,
             'worker ' || coalesce(worker_id, '?') || ' stopped heartbeating (lease expired)', true) as ended
    from (select id, attempt, worker_id from ${jobs}
          where state = 'running' and lease_expires_at < now()
            and worker_id is distinct from ${except ?? null}
          order by id for no key update skip locked) as expired`);
  return rows.flatMap(({ ended }) =>
    ended ? [{ job: fromRowJson(jobs, ended.job), result: ended.result }] : [],
  );
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
  const [row] = await db.execute<{ ended: EndedAttempt | null }>(sql`
    select crossdock_end_attempt(${fence.jobId}, ${fence.attempt}, ${options.reason},
                                 ${options.infrastructure}) as ended`);
  return row?.ended?.result;
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

/** The end of one attempt, as completeJobs records it. */
export type Completion = Fence & JobOutcome;

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
  const [recorded] = await completeJobs(db, [{ ...fence, ...outcome }]);
  return recorded!;
}

/**
 * Finishes several attempts as completeJob does, in one statement and one transaction
 * (crossdock_complete_jobs): a worker running many short jobs records them together. Returns,
 * in the order of `completions`, whether each was recorded. If the statement fails, none is.
 */
export async function completeJobs(db: Database, completions: Completion[]): Promise<boolean[]> {
  if (completions.length === 0) return [];
  // A named prepared statement, as in claimJobs.
  const [row] = await db.$client<{ recorded: boolean[] }[]>`
    select crossdock_complete_jobs(${JSON.stringify(completions)}::jsonb) as recorded`;
  return row!.recorded;
}

/**
 * Cancels every unfinished job of a build on behalf of `by` (e.g. `slack:U123`): queued ones at
 * once, running ones by asking their workers (NOTIFY on the cancel channel, and the next
 * heartbeat), which stop the container (SIGTERM, then SIGKILL after the grace period) and record
 * `canceled`. Jobs already finished are left as they are. Returns how many were canceled and how
 * many are stopping, or undefined for no such build.
 */
export async function cancelBuild(
  db: Database,
  buildId: number,
  by: string,
): Promise<{ canceled: number; stopping: number } | undefined> {
  const [row] = await db.execute<{ result: { canceled: number; stopping: number } | null }>(sql`
    select crossdock_cancel_jobs(
             array(select id from ${jobs} where build_id = ${buildId} and state in ('queued', 'running')),
             ${by}) as result
    where exists (select 1 from ${builds} where id = ${buildId})`);
  return row?.result ?? undefined;
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
