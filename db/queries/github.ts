import { and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Database } from '../client';
import {
  artifacts,
  builds,
  githubApprovals,
  githubCheckRuns,
  githubHolds,
  githubPullComments,
  githubReleaseAssets,
  githubReleases,
  jobs,
  repos,
  type HeldRequest,
  type JobState,
} from '../schema';
import type { Artifact } from './artifacts';
import { listJobsOfBuilds, type Build, type Job } from './builds';
import { findRepo, upsertRepo, type NewRepo, type Repo } from './repos';

/**
 * The state Crossdock keeps of what it told GitHub: check runs per job, the one comment per pull
 * request, held requests of forks and their approvals, and release assets uploaded.
 */

export type Hold = typeof githubHolds.$inferSelect;
export type GitHubRelease = typeof githubReleases.$inferSelect;

/**
 * Upserts a repository and records the GitHub App installation that has it. A repository
 * registered as plain git keeps being plain git: returns undefined and changes nothing (a webhook
 * must not redirect its clones, nor send a GitHub token to its server).
 */
export async function upsertGitHubRepo(
  db: Database,
  repo: NewRepo,
  installationId: number,
): Promise<Repo | undefined> {
  const existing = await findRepo(db, repo.owner, repo.name);
  if (existing?.source === 'git') return undefined;
  const row = await upsertRepo(db, repo);
  if (row.githubInstallationId === installationId) return row;
  const [updated] = await db
    .update(repos)
    .set({ githubInstallationId: installationId })
    .where(eq(repos.id, row.id))
    .returning();
  return updated!;
}

/**
 * Ids of builds reported to GitHub (notify.github) created in the last `days` days with a job
 * whose state its check run does not show yet, oldest first, at most `limit`.
 */
export async function listUnreportedGitHubBuilds(
  db: Database,
  days = 30,
  limit = 50,
): Promise<number[]> {
  const rows = await db.execute<{ id: number }>(sql`
    select b.id from ${builds} b
    where b.notify ? 'github' and b.created_at > now() - make_interval(days => ${days})
      and exists (select 1 from ${jobs} j left join ${githubCheckRuns} c on c.job_id = j.id
                  where j.build_id = b.id and c.reported_state is distinct from j.state)
    order by b.id limit ${limit}`);
  return rows.map((row) => Number(row.id));
}

/** The check runs of the given jobs: job id → {checkRunId, reportedState}. */
export async function listCheckRuns(
  db: Database,
  jobIds: number[],
): Promise<Map<number, { checkRunId: number; reportedState: JobState }>> {
  if (jobIds.length === 0) return new Map();
  const rows = await db
    .select()
    .from(githubCheckRuns)
    .where(inArray(githubCheckRuns.jobId, jobIds));
  return new Map(rows.map((row) => [row.jobId, row]));
}

/** Records the check run of a job and the job state it now shows. */
export async function saveCheckRun(
  db: Database,
  jobId: number,
  checkRunId: number,
  reportedState: JobState,
): Promise<void> {
  await db
    .insert(githubCheckRuns)
    .values({ jobId, checkRunId, reportedState })
    .onConflictDoUpdate({ target: githubCheckRuns.jobId, set: { checkRunId, reportedState } });
}

/** The job (with its build) whose check run is `checkRunId`, or undefined. */
export async function findJobByCheckRun(
  db: Database,
  checkRunId: number,
): Promise<{ job: Job; build: Build } | undefined> {
  const [row] = await db
    .select({ job: jobs, build: builds })
    .from(githubCheckRuns)
    .innerJoin(jobs, eq(jobs.id, githubCheckRuns.jobId))
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .where(eq(githubCheckRuns.checkRunId, checkRunId));
  return row;
}

/** A pull request's builds, newest first, with their jobs (by target). */
export async function listPullBuilds(
  db: Database,
  repoId: number,
  pullNumber: number,
  limit = 20,
): Promise<{ build: Build; jobs: Job[] }[]> {
  const found = await db
    .select()
    .from(builds)
    .where(and(eq(builds.repoId, repoId), eq(builds.pullNumber, pullNumber)))
    .orderBy(desc(builds.id))
    .limit(limit);
  const buildJobs = await listJobsOfBuilds(
    db,
    found.map((build) => build.id),
  );
  return found.map((build) => ({
    build,
    jobs: buildJobs.filter((job) => job.buildId === build.id),
  }));
}

/** The row of a pull request's comment. */
const pullCommentOf = (repoId: number, pullNumber: number) =>
  and(eq(githubPullComments.repoId, repoId), eq(githubPullComments.pullNumber, pullNumber));

/**
 * Claims the right to post the pull request's comment, or finds the one posted. Returns
 * `{post: true}` to the one caller that must create it (then savePullComment, or
 * releasePullComment if posting failed), the comment's id when it exists, and `{post: false}`
 * without an id while someone else is posting it. comment_id 0 marks a comment being posted.
 */
export async function claimPullComment(
  db: Database,
  repoId: number,
  pullNumber: number,
): Promise<{ post: boolean; commentId?: number; bodyDigest?: string; notice?: string }> {
  const where = pullCommentOf(repoId, pullNumber);
  await db.insert(githubPullComments).values({ repoId, pullNumber }).onConflictDoNothing();
  const [claimed] = await db
    .update(githubPullComments)
    .set({ commentId: 0 })
    .where(and(where, isNull(githubPullComments.commentId)))
    .returning();
  if (claimed) return { post: true, notice: claimed.notice ?? undefined };
  const [row] = await db.select().from(githubPullComments).where(where);
  return {
    post: false,
    commentId: row?.commentId || undefined,
    bodyDigest: row?.bodyDigest ?? undefined,
    notice: row?.notice ?? undefined,
  };
}

/** Records the comment's id and the digest of the body it now has. */
export async function savePullComment(
  db: Database,
  repoId: number,
  pullNumber: number,
  commentId: number,
  bodyDigest: string,
): Promise<void> {
  await db
    .update(githubPullComments)
    .set({ commentId, bodyDigest })
    .where(pullCommentOf(repoId, pullNumber));
}

/** Gives up a claim whose comment could not be posted, so that the next pass tries again. */
export async function releasePullComment(
  db: Database,
  repoId: number,
  pullNumber: number,
): Promise<void> {
  await db
    .update(githubPullComments)
    .set({ commentId: null })
    .where(and(pullCommentOf(repoId, pullNumber), eq(githubPullComments.commentId, 0)));
}

/** Forgets the comment (deleted on GitHub), so that the next pass posts it again. */
export async function forgetPullComment(
  db: Database,
  repoId: number,
  pullNumber: number,
): Promise<void> {
  await db
    .update(githubPullComments)
    .set({ commentId: null, bodyDigest: null })
    .where(pullCommentOf(repoId, pullNumber));
}

/** The notice shown on top of the pull request's comment (the last refusal or approval). */
export async function setPullNotice(
  db: Database,
  repoId: number,
  pullNumber: number,
  notice: string,
): Promise<void> {
  await db
    .insert(githubPullComments)
    .values({ repoId, pullNumber, notice })
    .onConflictDoUpdate({
      target: [githubPullComments.repoId, githubPullComments.pullNumber],
      set: { notice },
    });
}

/** Whether a maintainer approved head `sha` of the pull request. */
export async function isApproved(
  db: Database,
  repoId: number,
  pullNumber: number,
  sha: string,
): Promise<boolean> {
  const [row] = await db
    .select({ sha: githubApprovals.sha })
    .from(githubApprovals)
    .where(
      and(
        eq(githubApprovals.repoId, repoId),
        eq(githubApprovals.pullNumber, pullNumber),
        eq(githubApprovals.sha, sha),
      ),
    );
  return row !== undefined;
}

/** Records a maintainer's approval of head `sha` (again: no change). */
export async function approve(
  db: Database,
  approval: { repoId: number; pullNumber: number; sha: string; approvedBy: string },
): Promise<void> {
  await db.insert(githubApprovals).values(approval).onConflictDoNothing();
}

/**
 * Holds a request until its head is approved. Returns the hold, and whether it is new (false when
 * the same request, by its request key, is already held and not released).
 */
export async function holdRequest(
  db: Database,
  hold: { repoId: number; pullNumber: number; sha: string; request: HeldRequest },
): Promise<{ hold: Hold; created: boolean }> {
  const [inserted] = await db.insert(githubHolds).values(hold).onConflictDoNothing().returning();
  if (inserted) return { hold: inserted, created: true };
  const [existing] = await db
    .select()
    .from(githubHolds)
    .where(
      and(
        sql`${githubHolds.request} ->> 'requestKey' = ${hold.request.requestKey}`,
        isNull(githubHolds.releasedAt),
      ),
    );
  return { hold: existing!, created: false };
}

/** Requests held for head `sha` of the pull request and not released yet, oldest first. */
export async function listHolds(
  db: Database,
  repoId: number,
  pullNumber: number,
  sha?: string,
): Promise<Hold[]> {
  return db
    .select()
    .from(githubHolds)
    .where(
      and(
        eq(githubHolds.repoId, repoId),
        eq(githubHolds.pullNumber, pullNumber),
        sha ? eq(githubHolds.sha, sha) : undefined,
        isNull(githubHolds.releasedAt),
      ),
    )
    .orderBy(asc(githubHolds.id));
}

/** Records the neutral check run that shows a hold. */
export async function setHoldCheckRun(db: Database, holdId: number, checkRunId: number) {
  await db.update(githubHolds).set({ checkRunId }).where(eq(githubHolds.id, holdId));
}

/**
 * Marks a hold released into `buildId` (undefined: dropped, e.g. its recipe no longer has the
 * target). Returns false if someone else released it first.
 */
export async function releaseHold(
  db: Database,
  holdId: number,
  buildId: number | undefined,
): Promise<boolean> {
  const released = await db
    .update(githubHolds)
    .set({ releasedAt: new Date(), buildId: buildId ?? null })
    .where(and(eq(githubHolds.id, holdId), isNull(githubHolds.releasedAt)))
    .returning({ id: githubHolds.id });
  return released.length > 0;
}

/** Releases published in the last `days` days, whose uploads each pass completes. */
export async function listRecentReleases(
  db: Database,
  days = 7,
): Promise<{ repoId: number; tag: string }[]> {
  return db
    .selectDistinct({ repoId: githubReleases.repoId, tag: githubReleases.tag })
    .from(githubReleases)
    .where(sql`${githubReleases.createdAt} > now() - make_interval(days => ${days})`);
}

/** Records a published release (again: no change). */
export async function saveRelease(
  db: Database,
  release: Omit<GitHubRelease, 'createdAt'>,
): Promise<void> {
  await db.insert(githubReleases).values(release).onConflictDoNothing();
}

/** The published releases of a tag. */
export async function listReleases(
  db: Database,
  repoId: number,
  tag: string,
): Promise<GitHubRelease[]> {
  return db
    .select()
    .from(githubReleases)
    .where(and(eq(githubReleases.repoId, repoId), eq(githubReleases.tag, tag)));
}

/**
 * Artifacts of `tag`'s succeeded jobs in trusted builds of the repository that are not attached
 * to release `releaseId` yet: of each target, its newest succeeded job's. With the target of each.
 */
export async function listReleaseArtifactsToUpload(
  db: Database,
  releaseId: number,
  repoId: number,
  tag: string,
): Promise<(Artifact & { target: string })[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    with newest as (
      select distinct on (j.target) j.id, j.target
      from ${jobs} j join ${builds} b on b.id = j.build_id
      where b.repo_id = ${repoId} and b.tag = ${tag} and b.trusted and j.state = 'succeeded'
      order by j.target, j.finished_at desc, j.id desc)
    select a.*, n.target from newest n join ${artifacts} a on a.job_id = n.id
    where not exists (select 1 from ${githubReleaseAssets} r
                      where r.release_id = ${releaseId} and r.artifact_id = a.id)
    order by n.target, a.name`);
  return rows.map((row) => ({
    id: Number(row.id),
    jobId: Number(row.job_id),
    name: String(row.name),
    objectKey: String(row.object_key),
    size: Number(row.size),
    sha256: String(row.sha256),
    createdAt: new Date(String(row.created_at)),
    target: String(row.target),
  }));
}

/** Records an artifact attached to a release (`assetId`), or refused by GitHub (`error`). */
export async function saveReleaseAsset(
  db: Database,
  asset: { releaseId: number; artifactId: number; name: string; assetId?: number; error?: string },
): Promise<void> {
  await db
    .insert(githubReleaseAssets)
    .values({ ...asset, assetId: asset.assetId ?? null, error: asset.error ?? null })
    .onConflictDoNothing();
}
