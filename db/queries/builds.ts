import { and, asc, desc, eq, gt, inArray, or, sql } from 'drizzle-orm';
import { runPlatform, type ToolchainMode } from '../../core/recipe';
import type { Database } from '../client';
import {
  DEFAULT_MAX_INFRA_FAILURES,
  JOB_PRIORITY,
  UNREPORTED_BUILD,
  builds,
  jobs,
  repos,
  type BuildNotify,
  type JobSpec,
  type Trigger,
} from '../schema';
import { visibleTo, type Audience, type NewRepo, type Repo } from './repos';
import { fromRowJson, type RowJson } from './rows';

export type Build = typeof builds.$inferSelect;
export type Job = typeof jobs.$inferSelect;

export interface NewJob {
  target: string;
  /** The target's OCI platform. */
  platform: string;
  /** The toolchain modes allowed, in the routing policy's order (default [native]). */
  toolchains?: ToolchainMode[];
  /** The builder image of every mode; `spec.images` overrides it per mode. */
  image?: string;
  spec: Omit<JobSpec, 'images'> & { images?: JobSpec['images'] };
  /** Labels the worker must carry. */
  labels?: string[];
  /** Infrastructure failures after which the job fails instead of running again (default DEFAULT_MAX_INFRA_FAILURES). */
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
  /** Whether the code is trusted (default true); see builds.trusted. */
  trusted?: boolean;
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
 * Stores a build and its jobs and wakes the workers, in one statement (crossdock_create_build).
 * Each job is queued, or attached to an identical job (see `NewBuild.reuse`): one that succeeded
 * gives its outcome and artifacts at once, one queued or running gives them when it finishes.
 * With `cancelSuperseded`, older builds' jobs of the same targets on the same pull request or
 * branch are canceled (as cancelBuild does). With a `requestKey` already used, stores nothing and
 * returns that build (`created: false`). Throws if `jobs` is empty or a job names no image for
 * a mode it allows.
 */
export async function createBuild(
  db: Database,
  input: NewBuild,
): Promise<BuildWithJobs & { created: boolean }> {
  if (input.jobs.length === 0) throw new Error('createBuild: a build needs at least one job');
  const priority = input.tag
    ? JOB_PRIORITY.release
    : input.pullNumber !== undefined
      ? JOB_PRIORITY.pullRequest
      : JOB_PRIORITY.manual;
  const request = {
    ...input,
    priority,
    reuse: input.reuse ?? true,
    cancelSuperseded: input.cancelSuperseded ?? false,
    jobs: input.jobs.map((job) => {
      const toolchains = job.toolchains ?? ['native'];
      const images = Object.fromEntries(
        toolchains.map((mode) => [mode, job.spec.images?.[mode] ?? job.image]),
      );
      // While queued it shows the first mode it allows; the claim records the one it runs in.
      const toolchain = toolchains[0]!;
      const image = images[toolchain];
      if (!image || Object.values(images).includes(undefined))
        throw new Error(`createBuild: job ${job.target} names no image for a mode it allows`);
      return {
        ...job,
        toolchains,
        toolchain,
        runPlatform: runPlatform(job.platform, toolchain),
        image,
        spec: { ...job.spec, images: { ...job.spec.images, ...images } },
        labels: job.labels ?? [],
        maxInfraFailures: job.maxInfraFailures ?? DEFAULT_MAX_INFRA_FAILURES,
      };
    }),
  };
  // A named prepared statement (postgres.js, unlike drizzle's execute): parsed once per connection.
  const [row] = await db.$client<
    { stored: { created: boolean; build: RowJson; repo: RowJson; jobs: RowJson[] } }[]
  >`select crossdock_create_build(${JSON.stringify(request)}::jsonb) as stored`;
  const { created, build, repo, jobs: stored } = row!.stored;
  return {
    created,
    build: fromRowJson(builds, build),
    repo: fromRowJson(repos, repo),
    jobs: stored.map((job) => fromRowJson(jobs, job)),
  };
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
 * Builds with a Slack message whose final state is not reported yet: the queued and running ones
 * (their messages follow each job) and those that ended since, in one page: those whose state
 * changed since it was reported (at most `limit`, oldest first, so builds that wait long never
 * crowd them out), then the next `limit` by id after `afterId` (0: from the start). `nextAfterId`
 * is where the next page starts: 0 once the last was read, so that a caller paging once per pass
 * visits every open build in turn however many there are.
 */
export async function listBuildsWithOpenMessages(
  db: Database,
  options: { afterId?: number; limit?: number } = {},
): Promise<{ builds: Build[]; nextAfterId: number }> {
  const limit = options.limit ?? 100;
  const [changed, page] = await Promise.all([
    db
      .select()
      .from(builds)
      .where(and(UNREPORTED_BUILD, sql`${builds.reportedState} is distinct from ${builds.state}`))
      .orderBy(asc(builds.id))
      .limit(limit),
    db
      .select()
      .from(builds)
      .where(and(UNREPORTED_BUILD, gt(builds.id, options.afterId ?? 0)))
      .orderBy(asc(builds.id))
      .limit(limit),
  ]);
  const seen = new Set(changed.map((build) => build.id));
  return {
    builds: [...changed, ...page.filter((build) => !seen.has(build.id))],
    nextAfterId: page.length < limit ? 0 : page.at(-1)!.id,
  };
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
  return withJobs(db, rows);
}

/** Each build of `rows` with its jobs (ordered by target), in one query. */
async function withJobs(
  db: Database,
  rows: Omit<BuildWithJobs, 'jobs'>[],
): Promise<BuildWithJobs[]> {
  const buildJobs = await listJobsOfBuilds(
    db,
    rows.map((row) => row.build.id),
  );
  return rows.map((row) => ({
    ...row,
    jobs: buildJobs.filter((job) => job.buildId === row.build.id),
  }));
}

/** The jobs of the given builds, ordered by target (none for no builds). */
export async function listJobsOfBuilds(db: Database, buildIds: number[]): Promise<Job[]> {
  if (buildIds.length === 0) return [];
  return db.select().from(jobs).where(inArray(jobs.buildId, buildIds)).orderBy(asc(jobs.target));
}

/**
 * Recent builds, newest first, at most `limit`, with their repositories and jobs: those of
 * repository `repo` (owner/name) and/or by `requester`, and with `active` only queued or running
 * ones. With neither filter: all builds.
 */
export async function listRecentBuilds(
  db: Database,
  filter: {
    repo?: string;
    requester?: string;
    active?: boolean;
    limit?: number;
    /** Only builds of repositories `audience` may see (portal visitors); omitted: all. */
    audience?: Audience;
  },
): Promise<BuildWithJobs[]> {
  const conditions = [];
  if (filter.audience) conditions.push(visibleTo(filter.audience));
  if (filter.repo) {
    const [owner, name] = filter.repo.split('/');
    conditions.push(and(eq(repos.owner, owner!), eq(repos.name, name!)));
  }
  if (filter.requester) conditions.push(eq(builds.requester, filter.requester));
  if (filter.active) conditions.push(or(eq(builds.state, 'queued'), eq(builds.state, 'running')));
  const rows = await db
    .select({ build: builds, repo: repos })
    .from(builds)
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(and(...conditions))
    .orderBy(desc(builds.id))
    .limit(filter.limit ?? 10);
  return withJobs(db, rows);
}
