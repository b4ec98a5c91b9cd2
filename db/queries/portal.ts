import { and, asc, count, desc, eq, isNotNull, max } from 'drizzle-orm';
import type { Database } from '../client';
import { builds, repos } from '../schema';
import type { Build } from './builds';
import type { Repo } from './repos';

/**
 * Read queries of the portal's pages. Each returns plain rows; the portal decides how to show
 * them. Times are `Date`s, sizes are bytes.
 */

/** A repository with how many builds it has and when the newest was requested. */
export interface RepoSummary {
  repo: Repo;
  buildCount: number;
  /** Request time of the newest build, or null when it has none. */
  lastBuildAt: Date | null;
}

/** Every repository, ordered by owner then name, with its build count and newest build time. */
export async function listRepos(db: Database): Promise<RepoSummary[]> {
  const rows = await db
    .select({ repo: repos, buildCount: count(builds.id), lastBuildAt: max(builds.createdAt) })
    .from(repos)
    .leftJoin(builds, eq(builds.repoId, repos.id))
    .groupBy(repos.id)
    .orderBy(asc(repos.owner), asc(repos.name));
  return rows.map((row) => ({
    repo: row.repo,
    buildCount: row.buildCount,
    lastBuildAt: row.lastBuildAt === null ? null : new Date(row.lastBuildAt),
  }));
}

/** One commit of a repository as the portal lists it: its newest build and how many it has. */
export interface CommitSummary {
  sha: string;
  /** The newest build of the commit (its ref, pull number, branch, tag, state and times). */
  latest: Build;
  buildCount: number;
}

/**
 * The commits of a repository that were built, newest build first, at most `limit` (default 50).
 * Returns [] for a repository without builds.
 */
export async function listCommitsOfRepo(
  db: Database,
  repoId: number,
  limit = 50,
): Promise<CommitSummary[]> {
  const commits = db
    .select({
      sha: builds.sha,
      latestId: max(builds.id).as('latest_id'),
      buildCount: count(builds.id).as('build_count'),
    })
    .from(builds)
    .where(eq(builds.repoId, repoId))
    .groupBy(builds.sha)
    .orderBy(desc(max(builds.id)))
    .limit(limit)
    .as('commits');
  const rows = await db
    .select({ latest: builds, buildCount: commits.buildCount })
    .from(commits)
    .innerJoin(builds, eq(builds.id, commits.latestId))
    .orderBy(desc(builds.id));
  return rows.map((row) => ({
    sha: row.latest.sha,
    latest: row.latest,
    buildCount: Number(row.buildCount),
  }));
}

/** A tag of a repository that was built, with its newest build. */
export interface TagSummary {
  tag: string;
  /** The newest build of the tag (its sha, state and times). */
  latest: Build;
}

/**
 * The tags of a repository that have builds, the most recently built first, at most `limit`
 * (default 50).
 */
export async function listTagsOfRepo(
  db: Database,
  repoId: number,
  limit = 50,
): Promise<TagSummary[]> {
  const tags = db
    .select({ latestId: max(builds.id).as('latest_id') })
    .from(builds)
    .where(and(eq(builds.repoId, repoId), isNotNull(builds.tag)))
    .groupBy(builds.tag)
    .orderBy(desc(max(builds.id)))
    .limit(limit)
    .as('tags');
  const rows = await db
    .select({ latest: builds })
    .from(tags)
    .innerJoin(builds, eq(builds.id, tags.latestId))
    .orderBy(desc(builds.id));
  return rows.map((row) => ({ tag: row.latest.tag!, latest: row.latest }));
}
