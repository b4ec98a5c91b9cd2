import { portalUrls } from '../core/urls';
import type { Database } from '../db/client';
import { listArtifactsByJob, type Artifact } from '../db/queries/artifacts';
import type { Build, BuildWithJobs, Job } from '../db/queries/builds';
import type { Repo } from '../db/queries/repos';

/** A job of a build with the artifacts it produced (ordered by name). */
export interface JobDetails {
  job: Job;
  artifacts: Artifact[];
}

/** A build with its repository and its jobs (ordered by target), each with its artifacts. */
export interface BuildDetails {
  build: Build;
  repo: Repo;
  jobs: JobDetails[];
}

/** Adds the artifacts of every job to `builds` (one query for all of them); keeps the order. */
export async function withArtifacts(
  db: Database,
  builds: BuildWithJobs[],
): Promise<BuildDetails[]> {
  const artifactsByJob = await listArtifactsByJob(
    db,
    builds.flatMap((entry) => entry.jobs.map((job) => job.id)),
  );
  return builds.map((entry) => ({
    build: entry.build,
    repo: entry.repo,
    jobs: entry.jobs.map((job) => ({
      job,
      artifacts: artifactsByJob.get(job.id) ?? [],
    })),
  }));
}

/**
 * The JSON form of a build for the portal's API (/api/v1): state, ref and trigger fields,
 * times as ISO 8601 strings (null until reached), and per job its state, worker, exit code,
 * error, log URL and artifacts (size in bytes, sha256 hex, download URL). Leaves out what is
 * internal: the job spec (its env), lease, request key and notification targets.
 */
export function buildToJson(details: BuildDetails, portalUrl: string) {
  const { build, repo } = details;
  return {
    id: build.id,
    url: portalUrls.build(portalUrl, build.id),
    repo: `${repo.owner}/${repo.name}`,
    sha: build.sha,
    ref: build.ref,
    pullNumber: build.pullNumber,
    branch: build.branch,
    tag: build.tag,
    trigger: build.trigger,
    requester: build.requester,
    state: build.state,
    createdAt: build.createdAt.toISOString(),
    startedAt: build.startedAt?.toISOString() ?? null,
    finishedAt: build.finishedAt?.toISOString() ?? null,
    jobs: details.jobs.map(({ job, artifacts }) => ({
      id: job.id,
      target: job.target,
      platform: job.platform,
      toolchain: job.toolchain,
      image: job.image,
      imageDigest: job.imageDigest,
      state: job.state,
      attempt: job.attempt,
      workerId: job.workerId,
      exitCode: job.exitCode,
      error: job.error,
      startedAt: job.startedAt?.toISOString() ?? null,
      finishedAt: job.finishedAt?.toISOString() ?? null,
      logUrl: portalUrls.jobLog(portalUrl, job.id),
      artifacts: artifacts.map((artifact) => ({
        id: artifact.id,
        name: artifact.name,
        size: artifact.size,
        sha256: artifact.sha256,
        downloadUrl: portalUrls.artifactDownload(portalUrl, artifact.id, artifact.name),
      })),
    })),
  };
}
