import { and, asc, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { CHANNELS } from '../notify';
import { builds, jobs, repos, type BuildNotify, type JobSpec, type Trigger } from '../schema';
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
}

export interface BuildWithJobs {
  build: Build;
  repo: Repo;
  jobs: Job[];
}

/**
 * Stores a build and one queued job per target in one transaction, then notifies workers.
 * With a `requestKey` already used, stores nothing and returns that build (`created: false`).
 * Throws if `jobs` is empty.
 */
export async function createBuild(
  db: Database,
  input: NewBuild,
): Promise<BuildWithJobs & { created: boolean }> {
  if (input.jobs.length === 0) throw new Error('createBuild: a build needs at least one job');
  return db.transaction(async (tx) => {
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
    const created = await tx
      .insert(jobs)
      .values(input.jobs.map((job) => ({ ...job, buildId: build.id })))
      .returning();
    for (const platform of new Set(created.map((job) => job.runPlatform))) {
      await tx.execute(sql`select pg_notify(${CHANNELS.jobs}, ${platform})`);
    }
    await tx.execute(sql`select pg_notify(${CHANNELS.builds}, ${String(build.id)})`);
    return { build, repo, jobs: created, created: true };
  });
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
