import { and, asc, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Database, Transaction } from '../client';
import { PendingNotifications } from '../notify';
import {
  JOB_PRIORITY,
  builds,
  jobs,
  repos,
  type BuildNotify,
  type JobSpec,
  type Trigger,
} from '../schema';
import { cancelJobs, copyArtifacts, updateBuildState } from './jobs';
import { upsertRepo, type NewRepo, type Repo } from './repos';

export type Build = typeof builds.$inferSelect;
export type Job = typeof jobs.$inferSelect;

export interface NewJob {
  target: string;
  platform: string;
  toolchain: 'cross' | 'emulated' | 'native';
  runPlatform: string;
  image: string;
  spec: JobSpec;
  /** Labels the worker must carry. */
  labels?: string[];
  /** Infrastructure failures after which the job fails instead of running again (default 3). */
  maxInfraFailures?: number;
}

export interface NewBuild {
  repo: NewRepo;
  sha: string;
  ref: string;
  pullNumber?: number;
  branch?: string;
  tag?: string;
  trigger: Trigger;
  requester: string;
  recipeDigest: string;
  requestKey?: string;
  notify?: BuildNotify;
  jobs: NewJob[];
  /**
   * Attach each job to an identical one (same repository, sha, recipe digest and target) that
   * is queued or running, or that succeeded in a builder image a live worker still has, instead
   * of building again. Default true; `--force` turns it off.
   */
  reuse?: boolean;
  /**
   * Cancel the unfinished jobs of the same targets in older builds of the same pull request (or
   * branch) at another commit. Default false; recipes turn it on with `cancel_superseded`.
   */
  cancelSuperseded?: boolean;
}

export interface BuildWithJobs {
  build: Build;
  repo: Repo;
  jobs: Job[];
}

/**
 * Stores a build and its jobs in one transaction, then notifies workers. Each job is queued,
 * or attached to an identical job (see `NewBuild.reuse`): one that succeeded gives its outcome
 * and artifacts at once, one queued or running gives them when it finishes. With
 * `cancelSuperseded`, older builds' jobs of the same targets on the same pull request or branch
 * are canceled (cancelJobs). With a `requestKey` already used, stores nothing and returns that
 * build (`created: false`). Throws if `jobs` is empty.
 */
export async function createBuild(
  db: Database,
  input: NewBuild,
): Promise<BuildWithJobs & { created: boolean }> {
  if (input.jobs.length === 0) throw new Error('createBuild: a build needs at least one job');
  const pending = new PendingNotifications();
  const result = await db.transaction(async (tx) => {
    const repo = await upsertRepo(tx, input.repo);
    const [build] = await tx
      .insert(builds)
      .values({
        repoId: repo.id,
        sha: input.sha,
        ref: input.ref,
        pullNumber: input.pullNumber,
        branch: input.branch,
        tag: input.tag,
        trigger: input.trigger,
        requester: input.requester,
        recipeDigest: input.recipeDigest,
        requestKey: input.requestKey,
        notify: input.notify ?? {},
      })
      .onConflictDoNothing({ target: builds.requestKey })
      .returning();
    if (!build) {
      const [existing] = await tx
        .select()
        .from(builds)
        .where(eq(builds.requestKey, input.requestKey!));
      const existingJobs = await tx.select().from(jobs).where(eq(jobs.buildId, existing!.id));
      return { build: existing!, repo, jobs: existingJobs, created: false };
    }
    const priority = input.tag
      ? JOB_PRIORITY.release
      : input.pullNumber !== undefined
        ? JOB_PRIORITY.pullRequest
        : JOB_PRIORITY.manual;
    // Two identical requests in the very same instant may both build: harmless, and cheaper
    // than serialising every request.
    const twins =
      input.reuse === false ? new Map<string, Twin>() : await findTwins(tx, repo.id, input);
    const created = await tx
      .insert(jobs)
      .values(
        input.jobs.map((job) => {
          const twin = twins.get(job.target);
          return {
            ...job,
            buildId: build.id,
            priority,
            reuseOfJobId: twin ? twin.id : null,
            ...(twin?.state === 'succeeded'
              ? {
                  state: 'succeeded' as const,
                  exitCode: 0,
                  imageDigest: twin.imageDigest,
                  startedAt: sql`now()`,
                  finishedAt: sql`now()`,
                }
              : {}),
          };
        }),
      )
      .returning();
    let changed = false;
    for (const job of created) {
      const twin = twins.get(job.target);
      if (twin?.state === 'succeeded') {
        await copyArtifacts(tx, twin.id, [job.id]);
        changed = true;
      }
    }
    // Waking workers in the transaction is one NOTIFY per build: not worth a round trip after.
    const wake = new PendingNotifications();
    for (const job of created) if (job.reuseOfJobId === null) wake.jobs(job.runPlatform);
    await wake.send(tx);
    if (input.cancelSuperseded && !input.tag && (input.pullNumber ?? input.branch) !== undefined) {
      const superseded = await tx.execute<{ id: string }>(sql`
        select j.id from ${jobs} j join ${builds} b on b.id = j.build_id
        where b.repo_id = ${repo.id} and b.id <> ${build.id} and b.sha <> ${input.sha}
          and b.tag is null
          and ${input.pullNumber !== undefined ? sql`b.pull_number = ${input.pullNumber}` : sql`b.pull_number is null and b.branch = ${input.branch!}`}
          and j.target = any(${sql.param(input.jobs.map((job) => job.target))}::text[])
          and j.state in ('queued', 'running')`);
      await cancelJobs(
        tx,
        superseded.map((row) => Number(row.id)),
        `build ${build.id} (a newer commit of ${input.ref})`,
        pending,
      );
    }
    if (!changed) return { build, repo, jobs: created, created: true };
    await updateBuildState(tx, build.id, pending);
    const [stored] = await tx.select().from(builds).where(eq(builds.id, build.id));
    return { build: stored!, repo, jobs: created, created: true };
  });
  await pending.send(db);
  return result;
}

/** A job an identical request can attach to. */
interface Twin {
  id: number;
  state: string;
  imageDigest: string | null;
}

/**
 * For each target of `input`, the job an identical request can attach to, as described at
 * `NewBuild.reuse`: a succeeded one first, else the newest queued or running one.
 */
async function findTwins(
  tx: Transaction,
  repoId: number,
  input: NewBuild,
): Promise<Map<string, Twin>> {
  const rows = await tx.execute<{
    target: string;
    id: string;
    state: string;
    image_digest: string | null;
  }>(sql`
    select distinct on (j.target) j.target, j.id, j.state, j.image_digest
    from ${jobs} j join ${builds} b on b.id = j.build_id
    where b.repo_id = ${repoId} and b.sha = ${input.sha} and b.recipe_digest = ${input.recipeDigest}
      and j.target = any(${sql.param(input.jobs.map((job) => job.target))}::text[])
      and j.reuse_of_job_id is null and j.cancel_requested_at is null
      and (j.state in ('queued', 'running')
           or (j.state = 'succeeded' and exists (
                 select 1 from workers w
                 where w.online
                   and w.last_heartbeat_at > now() - make_interval(secs => 2 * w.heartbeat_seconds)
                   and w.images ->> j.image = j.image_digest)))
    order by j.target, j.state = 'succeeded' desc, j.id desc`);
  return new Map(
    rows.map((row) => [
      row.target,
      { id: Number(row.id), state: row.state, imageDigest: row.image_digest },
    ]),
  );
}

/** A build with its repository and jobs (ordered by target), or undefined. */
export async function getBuild(db: Database, buildId: number): Promise<BuildWithJobs | undefined> {
  const [row] = await db
    .select({ build: builds, repo: repos })
    .from(builds)
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(eq(builds.id, buildId));
  if (!row) return undefined;
  const buildJobs = await db
    .select()
    .from(jobs)
    .where(eq(jobs.buildId, buildId))
    .orderBy(asc(jobs.target));
  return { ...row, jobs: buildJobs };
}

/** Records where progress of a build is reported (e.g. the Slack message's channel and ts). */
export async function setBuildNotify(
  db: Database,
  buildId: number,
  notify: BuildNotify,
): Promise<void> {
  await db.update(builds).set({ notify }).where(eq(builds.id, buildId));
}

/**
 * Builds whose state changed since it was last reported and that have somewhere to report
 * it (a Slack message), oldest first, at most `limit`.
 */
export async function listUnreportedBuilds(db: Database, limit = 50): Promise<Build[]> {
  return db
    .select()
    .from(builds)
    .where(
      and(
        sql`${builds.reportedState} is distinct from ${builds.state}`,
        isNotNull(sql`${builds.notify}->'slack'->'ts'`),
      ),
    )
    .orderBy(asc(builds.id))
    .limit(limit);
}

/** Marks `state` as reported for a build, unless the build has moved on since. */
export async function markBuildReported(
  db: Database,
  buildId: number,
  state: Build['state'],
): Promise<void> {
  await db
    .update(builds)
    .set({ reportedState: state })
    .where(and(eq(builds.id, buildId), eq(builds.state, state)));
}

/** Builds of one commit of a repository, newest first, with their jobs. */
export async function listBuildsForCommit(
  db: Database,
  repoId: number,
  sha: string,
): Promise<BuildWithJobs[]> {
  const rows = await db
    .select({ build: builds, repo: repos })
    .from(builds)
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(and(eq(builds.repoId, repoId), eq(builds.sha, sha)))
    .orderBy(desc(builds.id));
  if (rows.length === 0) return [];
  const buildJobs = await db
    .select()
    .from(jobs)
    .where(
      inArray(
        jobs.buildId,
        rows.map((row) => row.build.id),
      ),
    )
    .orderBy(asc(jobs.target));
  return rows.map((row) => ({
    ...row,
    jobs: buildJobs.filter((job) => job.buildId === row.build.id),
  }));
}
