import { and, asc, eq, gt, inArray, ne, sql, type SQL } from 'drizzle-orm';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { PostgresJsQueryResultHKT } from 'drizzle-orm/postgres-js';
import {
  retentionCutoff,
  retentionOf,
  type RetentionInfo,
  type RetentionPolicy,
} from '../../core/retention';
import type { Database } from '../client';
import * as schema from '../schema';
import { artifacts, builds, jobs, repos } from '../schema';
import type { Artifact } from './artifacts';
import type { Build } from './builds';

/**
 * Retention of artifacts (docs/retention.md): which builds' artifacts are due for deletion, the
 * expiry facts pages show, pinning, and the one transaction that deletes a build's artifacts. The
 * rules are core/retention.ts; `dueCondition` below is the same rules in SQL (a test checks that
 * they agree).
 */

/** The pool, or a transaction of it. */
type Executor = PgDatabase<PostgresJsQueryResultHKT, typeof schema>;

/**
 * SQL: the job `job` (an alias of jobs whose build is the outer `builds` row) makes its build the
 * latest of its branch for the job's target: the build is of a branch (not a pull request or
 * tag), of trusted code, the job succeeded, and no newer such build of the same repository and
 * branch has a succeeded job for that target. The build the branch download URL serves
 * (db/queries/portal.ts findDownloadBuild, selector `branch`). Uses builds_repo_branch and
 * jobs_build_target.
 */
const latestOfBranch = (job: string): SQL => {
  const j = sql.raw(job);
  return sql`(${builds.pullNumber} is null and ${builds.tag} is null and ${builds.branch} is not null
    and ${builds.trusted} and ${j}.state = 'succeeded'
    and not exists (
      select 1 from ${builds} newer join ${jobs} newer_job on newer_job.build_id = newer.id
      where newer.repo_id = ${builds.repoId} and newer.branch = ${builds.branch}
        and newer.pull_number is null and newer.tag is null and newer.trusted
        and newer.id > ${builds.id}
        and newer_job.target = ${j}.target and newer_job.state = 'succeeded'))`;
};

/**
 * SQL: the build's artifacts are due for deletion at `now` under `policy` (core/retention.ts):
 * not deleted yet, not a tag's, not pinned (the three make the partial index builds_retention),
 * finished at least the class's days before `now`, and not the latest of its branch for any
 * target.
 */
function dueCondition(now: Date, policy: RetentionPolicy): SQL {
  const pullCutoff = retentionCutoff(now, policy.pullRequestDays).toISOString();
  const otherCutoff = retentionCutoff(now, policy.branchDays).toISOString();
  return sql`(${builds.artifactsDeletedAt} is null and ${builds.tag} is null and not ${builds.pinned}
    and ${builds.finishedAt} is not null
    and ${builds.finishedAt} <= case when ${builds.pullNumber} is not null
                                     then ${pullCutoff}::timestamptz
                                     else ${otherCutoff}::timestamptz end
    and not exists (
      select 1 from ${jobs} retained_job
      where retained_job.build_id = ${builds.id} and ${latestOfBranch('retained_job')}))`;
}

/** A build whose artifacts are due for deletion, with its repository's owner and name. */
export interface DueBuild {
  build: Build;
  repo: { owner: string; name: string };
}

/**
 * The builds whose artifacts are due for deletion at `now` under `policy` (core/retention.ts),
 * oldest (lowest id) first, with ids above `afterId` (default 0), at most `limit` (default 100).
 * Skips builds that have not finished and builds whose artifacts were already deleted. Page with
 * `afterId` = the last id returned; a build listed but not deleted (say its objects could not be
 * removed) is then not listed again in the same pass.
 */
export async function dueBuilds(
  db: Database,
  options: { now: Date; policy: RetentionPolicy; limit?: number; afterId?: number },
): Promise<DueBuild[]> {
  return db
    .select({ build: builds, repo: { owner: repos.owner, name: repos.name } })
    .from(builds)
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(and(dueCondition(options.now, options.policy), gt(builds.id, options.afterId ?? 0)))
    .orderBy(asc(builds.id))
    .limit(options.limit ?? 100);
}

/**
 * What retention says of each of `buildIds` under `policy` (class, expiry, reason: see
 * core/retention.ts `RetentionInfo`), in one query. Builds that do not exist are absent from the
 * map. Pass the policy the cleanup runs with (portal/retention/config.ts), or pages promise
 * dates the cleanup does not keep.
 */
export async function expiriesOf(
  db: Database,
  buildIds: readonly number[],
  policy: RetentionPolicy,
): Promise<Map<number, RetentionInfo>> {
  const result = new Map<number, RetentionInfo>();
  if (buildIds.length === 0) return result;
  const rows = await db
    .select({
      id: builds.id,
      pinned: builds.pinned,
      tag: builds.tag,
      pullNumber: builds.pullNumber,
      branch: builds.branch,
      finishedAt: builds.finishedAt,
      artifactsDeletedAt: builds.artifactsDeletedAt,
      targets: sql<string[]>`coalesce(array_agg(${jobs.target} order by ${jobs.target})
        filter (where ${jobs.id} is not null), '{}')`,
      latestOfBranchFor: sql<string[]>`coalesce(array_agg(${jobs.target} order by ${jobs.target})
        filter (where ${latestOfBranch('"jobs"')}), '{}')`,
    })
    .from(builds)
    .leftJoin(jobs, eq(jobs.buildId, builds.id))
    .where(inArray(builds.id, [...buildIds]))
    .groupBy(builds.id);
  for (const row of rows) result.set(row.id, retentionOf(row, policy));
  return result;
}

/**
 * Pins (`pinned` true) or unpins a build: a pinned build's artifacts are kept whatever the rules
 * say. Pinning a build whose artifacts were already deleted brings nothing back (check
 * `artifactsDeletedAt` of the answer). Returns the updated build, or undefined if there is none.
 */
export async function setBuildPinned(
  db: Database,
  buildId: number,
  pinned: boolean,
): Promise<Build | undefined> {
  const [build] = await db.update(builds).set({ pinned }).where(eq(builds.id, buildId)).returning();
  return build;
}

/** A build's artifact rows, and which of their objects no other build shows. */
export interface BuildArtifacts {
  /** Every artifact row of the build's jobs, ordered by job then name. */
  artifacts: Artifact[];
  /**
   * Object keys to remove from the store: those of `artifacts` that no artifact row of another
   * build has (a job that reused another's outcome has copies of its rows, with the same keys).
   * Sorted, distinct.
   */
  objectKeys: string[];
  /** Total size in bytes of the objects of `objectKeys`. */
  bytes: number;
}

async function buildArtifacts(db: Executor, buildId: number): Promise<BuildArtifacts> {
  const rows = await db
    .select({ artifact: artifacts })
    .from(artifacts)
    .innerJoin(jobs, eq(jobs.id, artifacts.jobId))
    .where(eq(jobs.buildId, buildId))
    .orderBy(asc(artifacts.jobId), asc(artifacts.name));
  const found = rows.map((row) => row.artifact);
  const keys = [...new Set(found.map((artifact) => artifact.objectKey))].sort();
  // Uses artifacts_object_key.
  const shared =
    keys.length === 0
      ? []
      : await db
          .selectDistinct({ objectKey: artifacts.objectKey })
          .from(artifacts)
          .innerJoin(jobs, eq(jobs.id, artifacts.jobId))
          .where(and(inArray(artifacts.objectKey, keys), ne(jobs.buildId, buildId)));
  const kept = new Set(shared.map((row) => row.objectKey));
  const objectKeys = keys.filter((key) => !kept.has(key));
  const sizes = new Map(found.map((artifact) => [artifact.objectKey, artifact.size]));
  const bytes = objectKeys.reduce((sum, key) => sum + sizes.get(key)!, 0);
  return { artifacts: found, objectKeys, bytes };
}

/**
 * A build's artifact rows and the objects deleting them would remove (see BuildArtifacts), as
 * of now, without locking anything: for a dry run.
 */
export async function describeBuildArtifacts(
  db: Database,
  buildId: number,
): Promise<BuildArtifacts> {
  return buildArtifacts(db, buildId);
}

/**
 * Deletes the artifacts of build `buildId` if they are still due at `now` under `policy`, so that
 * no artifact row ever exists without its object. In one transaction:
 * 1. locks the build's row (FOR UPDATE SKIP LOCKED) and checks again that it is due (a build
 *    pinned since it was listed is left alone);
 * 2. reads its artifact rows and the objects no other build shows (BuildArtifacts);
 * 3. awaits `removeObjects(objectKeys)`, which must remove those objects from the store (an
 *    object already missing counts as removed) or throw;
 * 4. deletes the rows and sets `builds.artifacts_deleted_at` to now().
 * If `removeObjects` throws, nothing is written and the error is rethrown: the rows stay, and the
 * build is due again at the next run. While the build's row is locked, crossdock_create_build
 * waits before copying its rows for a reused job. Returns what was deleted, or undefined when
 * the build is no longer due or another cleanup holds it (nothing done). Throws database errors.
 */
export async function deleteBuildArtifacts(
  db: Database,
  buildId: number,
  options: { now: Date; policy: RetentionPolicy },
  removeObjects: (objectKeys: string[]) => Promise<void>,
): Promise<BuildArtifacts | undefined> {
  return db.transaction(async (tx) => {
    const [locked] = await tx
      .select({ id: builds.id })
      .from(builds)
      .where(and(eq(builds.id, buildId), dueCondition(options.now, options.policy)))
      .for('update', { of: builds, skipLocked: true });
    if (!locked) return undefined;
    const found = await buildArtifacts(tx, buildId);
    if (found.objectKeys.length > 0) await removeObjects(found.objectKeys);
    if (found.artifacts.length > 0)
      await tx.delete(artifacts).where(
        inArray(
          artifacts.id,
          found.artifacts.map((artifact) => artifact.id),
        ),
      );
    await tx
      .update(builds)
      .set({ artifactsDeletedAt: sql`now()` })
      .where(eq(builds.id, buildId));
    return found;
  });
}
