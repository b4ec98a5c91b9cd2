import type { Database } from '../db/client';
import { listArtifactsByJob, type Artifact } from '../db/queries/artifacts';
import { getBuild, type BuildWithJobs } from '../db/queries/builds';
import { readLog } from '../db/queries/logs';
import { explainQueuedJobs } from '../db/queries/workers';

/** Everything a front end shows of a build: the build, its jobs, their artifacts and log tails. */
export interface BuildView extends BuildWithJobs {
  artifactsByJob: Map<number, Artifact[]>;
  /** The last lines of the log of each failed or timed-out job. */
  logTails: Map<number, string>;
  /** Why each queued job waits (explainQueuedJobs), e.g. "no worker serves linux/riscv64". */
  queueReasons: Map<number, string>;
}

/** Loads a build's view, or undefined if there is no such build. */
export async function loadBuildView(
  db: Database,
  buildId: number,
  tailLines = 15,
): Promise<BuildView | undefined> {
  const found = await getBuild(db, buildId);
  if (!found) return undefined;
  const artifactsByJob = await listArtifactsByJob(
    db,
    found.jobs.map((job) => job.id),
  );
  const logTails = new Map<number, string>();
  for (const job of found.jobs) {
    if (job.state === 'failed' || job.state === 'timed_out') {
      const { text } = await readLog(db, job.id);
      logTails.set(job.id, text.trimEnd().split('\n').slice(-tailLines).join('\n'));
    }
  }
  const queueReasons = await explainQueuedJobs(db, found.jobs);
  return { ...found, artifactsByJob, logTails, queueReasons };
}
