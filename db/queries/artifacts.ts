import { asc, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../client';
import { artifacts, builds, jobs, repos } from '../schema';

export type Artifact = typeof artifacts.$inferSelect;

/** Artifacts of the given jobs, ordered by job then name. */
export async function listArtifactsForJobs(db: Database, jobIds: number[]): Promise<Artifact[]> {
  if (jobIds.length === 0) return [];
  return db
    .select()
    .from(artifacts)
    .where(inArray(artifacts.jobId, jobIds))
    .orderBy(asc(artifacts.jobId), asc(artifacts.name));
}

/** Artifacts of the given jobs by job id (each list ordered by name); jobs without any are absent. */
export async function listArtifactsByJob(
  db: Database,
  jobIds: number[],
): Promise<Map<number, Artifact[]>> {
  const byJob = new Map<number, Artifact[]>();
  for (const artifact of await listArtifactsForJobs(db, jobIds)) {
    const list = byJob.get(artifact.jobId);
    if (list) list.push(artifact);
    else byJob.set(artifact.jobId, [artifact]);
  }
  return byJob;
}

/** An artifact with its job, build and repository, or undefined. */
export async function getArtifact(db: Database, artifactId: number) {
  const [row] = await db
    .select({ artifact: artifacts, job: jobs, build: builds, repo: repos })
    .from(artifacts)
    .innerJoin(jobs, eq(jobs.id, artifacts.jobId))
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(eq(artifacts.id, artifactId));
  return row;
}

/**
 * The statement of `findArtifactToDownload`, built once per pool: drizzle builds no SQL and
 * postgres.js sends a named prepared statement (the download path runs it per request).
 */
const artifactToDownload = new WeakMap<Database, ReturnType<typeof prepareArtifactToDownload>>();
function prepareArtifactToDownload(db: Database) {
  return db
    .select({ artifact: artifacts, visibility: repos.visibility })
    .from(artifacts)
    .innerJoin(jobs, eq(jobs.id, artifacts.jobId))
    .innerJoin(builds, eq(builds.id, jobs.buildId))
    .innerJoin(repos, eq(repos.id, builds.repoId))
    .where(eq(artifacts.id, sql.placeholder('id')))
    .prepare('crossdock_artifact_to_download');
}

/**
 * An artifact and the visibility of its repository, or undefined: what a download by artifact
 * id needs, in one prepared statement (getArtifact loads the job, build and repository too).
 */
export async function findArtifactToDownload(
  db: Database,
  artifactId: number,
): Promise<
  { artifact: Artifact; visibility: (typeof repos.$inferSelect)['visibility'] } | undefined
> {
  let statement = artifactToDownload.get(db);
  if (!statement) {
    statement = prepareArtifactToDownload(db);
    artifactToDownload.set(db, statement);
  }
  const [row] = await statement.execute({ id: artifactId });
  return row;
}
