import {
  and,
  asc,
  count,
  desc,
  eq,
  exists,
  inArray,
  isNotNull,
  isNull,
  max,
  sql,
  type SQL,
} from 'drizzle-orm';
import type { Database } from '../client';
import { artifacts, builds, jobs, repos } from '../schema';
import { listArtifactsByJob, type Artifact } from './artifacts';
import type { Build } from './builds';
import { visibleTo, type Audience, type Repo } from './repos';

/**
 * Builds of a branch itself: not of a pull request (whose branch is its head branch) nor of a
 * tag (pushed on a branch's commit).
 */
const BRANCH_ITSELF = and(isNull(builds.pullNumber), isNull(builds.tag))!;

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

/**
 * Every repository `audience` may see, ordered by owner then name, with its build count and
 * newest build time.
 */
export async function listRepos(db: Database, audience: Audience): Promise<RepoSummary[]> {
  const rows = await db
    .select({ repo: repos, buildCount: count(builds.id), lastBuildAt: max(builds.createdAt) })
    .from(repos)
    .leftJoin(builds, eq(builds.repoId, repos.id))
    .where(visibleTo(audience))
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

/**
 * Which build a stable download URL means (docs/portal.md):
 * - `release`: the newest successful build of tag `tag`, of trusted code;
 * - `latest-release`: the newest successful build of any tag, of trusted code (by finish time);
 * - `commit`: the newest build of commit `sha` whose job for `target` succeeded;
 * - `branch`: the newest build of branch `branch` (not a pull request or tag), of trusted code,
 *   whose job for `target` succeeded.
 */
export type DownloadSelector =
  | { kind: 'release'; tag: string }
  | { kind: 'latest-release' }
  | { kind: 'commit'; sha: string; target: string }
  | { kind: 'branch'; branch: string; target: string };

/** An artifact a stable URL found, with its job's target and its build. */
export interface FoundDownload {
  artifact: Artifact;
  target: string;
  build: Build;
}

/**
 * The artifacts named `name` (their path under /out) of the build that `selector` means in
 * repository `repoId`, one per job that made one (several when targets make files of the same
 * name), ordered by target. Returns [] when there is no such build or file. Only succeeded jobs'
 * artifacts count.
 */
export async function findDownloads(
  db: Database,
  repoId: number,
  selector: DownloadSelector,
  name: string,
): Promise<FoundDownload[]> {
  const build = await findDownloadBuild(db, repoId, selector);
  if (!build) return [];
  const target = 'target' in selector ? selector.target : undefined;
  const rows = await db
    .select({ artifact: artifacts, target: jobs.target })
    .from(artifacts)
    .innerJoin(jobs, eq(jobs.id, artifacts.jobId))
    .where(
      and(
        eq(jobs.buildId, build.id),
        eq(jobs.state, 'succeeded'),
        eq(artifacts.name, name),
        target === undefined ? undefined : eq(jobs.target, target),
      ),
    )
    .orderBy(asc(jobs.target));
  return rows.map((row) => ({ ...row, build }));
}

/** The build a download selector means (see DownloadSelector), or undefined. */
export async function findDownloadBuild(
  db: Database,
  repoId: number,
  selector: DownloadSelector,
): Promise<Build | undefined> {
  const ofRepo = eq(builds.repoId, repoId);
  const release = and(ofRepo, eq(builds.trusted, true), eq(builds.state, 'succeeded'));
  const withSucceededTarget = (target: string) =>
    exists(
      db
        .select({ one: sql`1` })
        .from(jobs)
        .where(
          and(eq(jobs.buildId, builds.id), eq(jobs.target, target), eq(jobs.state, 'succeeded')),
        ),
    );
  let where: SQL | undefined;
  let order: SQL[] = [desc(builds.id)];
  switch (selector.kind) {
    case 'release':
      where = and(release, eq(builds.tag, selector.tag));
      break;
    case 'latest-release':
      where = and(release, isNotNull(builds.tag));
      order = [sql`${builds.finishedAt} desc nulls last`, desc(builds.id)];
      break;
    case 'commit':
      where = and(ofRepo, eq(builds.sha, selector.sha), withSucceededTarget(selector.target));
      break;
    case 'branch':
      where = and(
        ofRepo,
        eq(builds.trusted, true),
        eq(builds.branch, selector.branch),
        BRANCH_ITSELF,
        withSucceededTarget(selector.target),
      );
      break;
  }
  const [build] = await db
    .select()
    .from(builds)
    .where(where)
    .orderBy(...order)
    .limit(1);
  return build;
}

/**
 * The state of the newest finished build of branch `branch` (not a pull request or tag) in
 * repository `repoId`, or with `target` the state of that target's job in the newest build of the
 * branch where that job finished; undefined when there is none. For status badges.
 */
export async function branchStatus(
  db: Database,
  repoId: number,
  branch: string,
  target?: string,
): Promise<Build['state'] | undefined> {
  const ofBranch = and(eq(builds.repoId, repoId), eq(builds.branch, branch), BRANCH_ITSELF);
  if (target === undefined) {
    const [row] = await db
      .select({ state: builds.state })
      .from(builds)
      .where(and(ofBranch, inArray(builds.state, ['succeeded', 'failed', 'canceled'])))
      .orderBy(desc(builds.id))
      .limit(1);
    return row?.state;
  }
  const [row] = await db
    .select({ state: jobs.state })
    .from(jobs)
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .where(
      and(
        ofBranch,
        eq(jobs.target, target),
        inArray(jobs.state, ['succeeded', 'failed', 'canceled', 'timed_out']),
      ),
    )
    .orderBy(desc(builds.id))
    .limit(1);
  return row?.state === 'timed_out' ? 'failed' : row?.state;
}

/**
 * The releases of repository `repoId`: per tag, its newest successful build of trusted code,
 * newest finished first, at most `limit` (default 20).
 */
export async function listReleases(db: Database, repoId: number, limit = 20): Promise<Build[]> {
  const newest = sql`${builds.finishedAt} desc nulls last`;
  const perTag = db
    .selectDistinctOn([builds.tag])
    .from(builds)
    .where(
      and(
        eq(builds.repoId, repoId),
        eq(builds.trusted, true),
        eq(builds.state, 'succeeded'),
        isNotNull(builds.tag),
      ),
    )
    .orderBy(builds.tag, newest, desc(builds.id))
    .as('releases');
  return db
    .select()
    .from(perTag)
    .orderBy(sql`${perTag.finishedAt} desc nulls last`, desc(perTag.id))
    .limit(limit);
}

/** One search hit: a commit, pull request, tag or branch, with its newest build. */
export interface SearchHit {
  kind: 'commit' | 'pull' | 'tag' | 'branch';
  repo: Repo;
  /** The newest build of what matched. */
  build: Build;
}

/** `text` with LIKE's wildcards escaped, for a prefix match. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;

/**
 * Builds matching a search query, newest first, at most `limit` (default 20), one hit per
 * commit, pull request, tag or branch (its newest build):
 * - 4 to 40 hex digits: commits whose sha starts with them;
 * - `#123`, `pr-123` or `123`: pull request 123 of any repository;
 * - anything else: tags and branches that start with it (case-sensitive, as git refs are).
 * Only repositories `audience` may see. Returns [] for an empty query.
 */
export async function searchBuilds(
  db: Database,
  query: string,
  audience: Audience,
  limit = 20,
): Promise<SearchHit[]> {
  const text = query.trim();
  if (!text) return [];
  const pull = /^(?:#|pr-)?(\d{1,9})$/i.exec(text);
  const conditions: { kind: SearchHit['kind']; where: SQL; key: SQL }[] = [];
  if (/^[0-9a-f]{4,40}$/i.test(text))
    conditions.push({
      kind: 'commit',
      where: sql`${builds.sha} like ${likePrefix(text.toLowerCase())}`,
      key: sql`${builds.sha}`,
    });
  if (pull)
    conditions.push({
      kind: 'pull',
      where: eq(builds.pullNumber, Number(pull[1])),
      key: sql`${builds.pullNumber}::text`,
    });
  if (!pull) {
    conditions.push({
      kind: 'tag',
      where: sql`${builds.tag} like ${likePrefix(text)}`,
      key: sql`${builds.tag}`,
    });
    conditions.push({
      kind: 'branch',
      where: and(sql`${builds.branch} like ${likePrefix(text)}`, BRANCH_ITSELF)!,
      key: sql`${builds.branch}`,
    });
  }
  const found = conditions.map(async (condition) => {
    // The newest build per (repository, matched key).
    const newest = db
      .select({ id: max(builds.id).as('newest_id') })
      .from(builds)
      .where(condition.where)
      .groupBy(builds.repoId, condition.key)
      .as('newest');
    const rows = await db
      .select({ build: builds, repo: repos })
      .from(newest)
      .innerJoin(builds, eq(builds.id, newest.id))
      .innerJoin(repos, eq(repos.id, builds.repoId))
      .where(visibleTo(audience))
      .orderBy(desc(builds.id))
      .limit(limit);
    return rows.map((row): SearchHit => ({ kind: condition.kind, ...row }));
  });
  const hits = (await Promise.all(found)).flat();
  return hits.sort((a, b) => b.build.id - a.build.id).slice(0, limit);
}

/** A branch or pull request of a repository that was built, with its newest build. */
export interface RefSummary {
  /** The branch name, or the pull request's number as text. */
  name: string;
  latest: Build;
  buildCount: number;
}

/**
 * The branches (builds of a branch, not of a pull request or tag) or pull requests of a
 * repository that have builds, the most recently built first, at most `limit` (default 50), each
 * with its newest build.
 */
export async function listRefsOfRepo(
  db: Database,
  repoId: number,
  kind: 'branch' | 'pull',
  limit = 50,
): Promise<RefSummary[]> {
  const key = kind === 'branch' ? builds.branch : builds.pullNumber;
  const where =
    kind === 'branch'
      ? and(eq(builds.repoId, repoId), isNotNull(builds.branch), BRANCH_ITSELF)
      : and(eq(builds.repoId, repoId), isNotNull(builds.pullNumber));
  const refs = db
    .select({ latestId: max(builds.id).as('latest_id'), buildCount: count(builds.id).as('n') })
    .from(builds)
    .where(where)
    .groupBy(key)
    .orderBy(desc(max(builds.id)))
    .limit(limit)
    .as('refs');
  const rows = await db
    .select({ latest: builds, buildCount: refs.buildCount })
    .from(refs)
    .innerJoin(builds, eq(builds.id, refs.latestId))
    .orderBy(desc(builds.id));
  return rows.map((row) => ({
    name: kind === 'branch' ? row.latest.branch! : String(row.latest.pullNumber),
    latest: row.latest,
    buildCount: Number(row.buildCount),
  }));
}

/**
 * The builds of a branch (not of pull requests or tags) or of a pull request, newest first, at
 * most `limit` (default 20).
 */
export async function listBuildsOfRef(
  db: Database,
  repoId: number,
  ref: { branch: string } | { pullNumber: number },
  limit = 20,
): Promise<Build[]> {
  const where =
    'branch' in ref
      ? and(eq(builds.repoId, repoId), eq(builds.branch, ref.branch), BRANCH_ITSELF)
      : and(eq(builds.repoId, repoId), eq(builds.pullNumber, ref.pullNumber));
  return db.select().from(builds).where(where).orderBy(desc(builds.id)).limit(limit);
}

/** A target's newest successful job on a branch, with its build and artifacts. */
export interface LatestOfTarget {
  target: string;
  platform: string;
  build: Build;
  jobId: number;
  artifacts: Artifact[];
}

/**
 * Per target, the newest build of branch `branch` (not a pull request or tag), of trusted code,
 * whose job for that target succeeded (what the branch's stable download URLs serve), with that
 * job's artifacts; ordered by target.
 */
export async function latestOfBranchPerTarget(
  db: Database,
  repoId: number,
  branch: string,
): Promise<LatestOfTarget[]> {
  const rows = await db
    .selectDistinctOn([jobs.target], {
      target: jobs.target,
      platform: jobs.platform,
      jobId: jobs.id,
      build: builds,
    })
    .from(jobs)
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .where(
      and(
        eq(builds.repoId, repoId),
        eq(builds.branch, branch),
        BRANCH_ITSELF,
        eq(builds.trusted, true),
        eq(jobs.state, 'succeeded'),
      ),
    )
    .orderBy(asc(jobs.target), desc(builds.id));
  const byJob = await listArtifactsByJob(
    db,
    rows.map((row) => row.jobId),
  );
  return rows.map((row) => ({ ...row, artifacts: byJob.get(row.jobId) ?? [] }));
}
