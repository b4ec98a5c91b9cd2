import { asc, eq, inArray } from 'drizzle-orm';
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
