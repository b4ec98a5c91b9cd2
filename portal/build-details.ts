import { plural } from '../core/format';
import type { RetentionInfo, RetentionPolicy } from '../core/retention';
import { portalUrls } from '../core/urls';
import type { Database } from '../db/client';
import { listArtifactsByJob, type Artifact } from '../db/queries/artifacts';
import type { Build, BuildWithJobs, Job } from '../db/queries/builds';
import type { Repo } from '../db/queries/repos';
import { expiriesOf } from '../db/queries/retention';
import { explainQueuedJobs } from '../db/queries/workers';

/** A job of a build with the artifacts it produced (ordered by name). */
export interface JobDetails {
  job: Job;
  artifacts: Artifact[];
  /**
   * Why the job still waits (db/queries/workers.ts `explainQueuedJobs`), e.g. "no worker serves
   * linux/riscv64"; undefined unless the job is queued.
   */
  waitingReason: string | undefined;
}

/** A build with its repository and its jobs (ordered by target), each with its artifacts. */
export interface BuildDetails {
  build: Build;
  repo: Repo;
  jobs: JobDetails[];
  /** How long its artifacts are kept (core/retention.ts), under the portal's policy. */
  retention: RetentionInfo;
}

/**
 * Adds to every job of `builds` its artifacts and, when queued, why it waits, and to every build
 * how long its artifacts are kept under `policy`: one artifact query and one retention query for
 * all of them, and explainQueuedJobs (one query per queued job). Keeps the order.
 */
export async function loadBuildDetails(
  db: Database,
  builds: BuildWithJobs[],
  policy: RetentionPolicy,
): Promise<BuildDetails[]> {
  const allJobs = builds.flatMap((entry) => entry.jobs);
  const [artifactsByJob, reasons, retention] = await Promise.all([
    listArtifactsByJob(
      db,
      allJobs.map((job) => job.id),
    ),
    explainQueuedJobs(db, allJobs),
    expiriesOf(
      db,
      builds.map((entry) => entry.build.id),
      policy,
    ),
  ]);
  return builds.map((entry) => ({
    build: entry.build,
    repo: entry.repo,
    retention: retention.get(entry.build.id)!,
    jobs: entry.jobs.map((job) => ({
      job,
      artifacts: artifactsByJob.get(job.id) ?? [],
      waitingReason: reasons.get(job.id),
    })),
  }));
}

/** A job's state is final: it will not run (again) on its own. */
export function isFinished(state: Job['state']): boolean {
  return state !== 'queued' && state !== 'running';
}

/**
 * Which attempt a job is at and how many attempts infrastructure failures cost it, in words for
 * people, or undefined when it never ran (attempt 0: still queued, or it reused another job's
 * outcome):
 * - running or finished: "attempt 2 (1 infrastructure retry)", or just "attempt 1";
 * - queued again after an attempt ended: "attempt 1 ended; queued for attempt 2 (1 infrastructure retry)";
 * - failed at the limit of infrastructure failures: "attempt 3; failed after 3 infrastructure
 *   failures (the limit)".
 * Attempts handed back by a worker shutting down are not infrastructure failures.
 */
export function attemptSummary(
  job: Pick<Job, 'state' | 'attempt' | 'infraFailures' | 'maxInfraFailures'>,
): string | undefined {
  const { attempt, infraFailures } = job;
  if (attempt === 0) return undefined;
  if (job.state === 'failed' && infraFailures > 0 && infraFailures >= job.maxInfraFailures) {
    return `attempt ${attempt}; failed after ${plural(infraFailures, 'infrastructure failure', 'infrastructure failures')} (the limit)`;
  }
  const retries =
    infraFailures > 0
      ? ` (${plural(infraFailures, 'infrastructure retry', 'infrastructure retries')})`
      : '';
  if (job.state === 'queued') {
    return `attempt ${attempt} ended; queued for attempt ${attempt + 1}${retries}`;
  }
  return `attempt ${attempt}${retries}`;
}

/** What a build was of, and its state, as the portal's API writes them in every answer. */
export function buildRefToJson(build: Build, repo: Repo) {
  return {
    repo: `${repo.owner}/${repo.name}`,
    sha: build.sha,
    ref: build.ref,
    pullNumber: build.pullNumber,
    branch: build.branch,
    tag: build.tag,
    state: build.state,
  };
}

/**
 * The JSON form of a build for the portal's API (/api/v1): state, ref and trigger fields,
 * times as ISO 8601 strings (null until reached), and per job its state, attempt (0 until first
 * claimed), infrastructure failures and their limit, why it waits (`waitingReason`, null unless
 * queued), cancel request (`cancelRequestedAt`, `canceledBy`: who canceled it or asked to),
 * the job whose outcome it reused (`reuseOfJobId` and that job's `reuseOfLogUrl`, else null),
 * worker, exit code, error, log URLs (the page, and `logApiUrl` to tail it) and artifacts (size
 * in bytes, sha256 hex, download URL). Leaves out what is internal: the job spec (its env),
 * lease, request key and notification targets.
 */
export function buildToJson(details: BuildDetails, portalUrl: string) {
  const { build, repo } = details;
  return {
    id: build.id,
    url: portalUrls.build(portalUrl, build.id),
    ...buildRefToJson(build, repo),
    trigger: build.trigger,
    requester: build.requester,
    createdAt: build.createdAt.toISOString(),
    startedAt: build.startedAt?.toISOString() ?? null,
    finishedAt: build.finishedAt?.toISOString() ?? null,
    pinned: build.pinned,
    retention: retentionToJson(details.retention),
    jobs: details.jobs.map(({ job, artifacts, waitingReason }) => ({
      id: job.id,
      target: job.target,
      platform: job.platform,
      toolchain: job.toolchain,
      image: job.image,
      imageDigest: job.imageDigest,
      state: job.state,
      attempt: job.attempt,
      infraFailures: job.infraFailures,
      maxInfraFailures: job.maxInfraFailures,
      waitingReason: waitingReason ?? null,
      cancelRequestedAt: job.cancelRequestedAt?.toISOString() ?? null,
      canceledBy: job.canceledBy,
      reuseOfJobId: job.reuseOfJobId,
      reuseOfLogUrl:
        job.reuseOfJobId === null ? null : portalUrls.jobLog(portalUrl, job.reuseOfJobId),
      workerId: job.workerId,
      exitCode: job.exitCode,
      error: job.error,
      startedAt: job.startedAt?.toISOString() ?? null,
      finishedAt: job.finishedAt?.toISOString() ?? null,
      logUrl: portalUrls.jobLog(portalUrl, job.id),
      logApiUrl: portalUrls.jobLogApi(portalUrl, job.id),
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

/**
 * The JSON form of a build's retention: `class` (pinned, tag, pull-request, branch, other),
 * `expiresAt` (ISO 8601; null while kept or unfinished), `deletedAt` (null while kept) and
 * `reason` in words ("expires 2026-12-05", "kept: tag v1.2.0", …).
 */
export function retentionToJson(retention: RetentionInfo) {
  return {
    class: retention.class,
    expiresAt: retention.expiresAt?.toISOString() ?? null,
    deletedAt: retention.deletedAt?.toISOString() ?? null,
    reason: retention.reason,
  };
}

/** A build in a list (JSON): id, page URL, what it built (buildRefToJson), times. */
export function buildSummaryToJson(build: Build, repo: Repo, portalUrl: string) {
  return {
    id: build.id,
    url: portalUrls.build(portalUrl, build.id),
    apiUrl: portalUrls.buildApi(portalUrl, build.id),
    ...buildRefToJson(build, repo),
    createdAt: build.createdAt.toISOString(),
    finishedAt: build.finishedAt?.toISOString() ?? null,
  };
}
