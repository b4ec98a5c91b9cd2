import { portalUrls } from '../core/urls';
import type { PlatformQueue, WorkerStatus } from '../db/queries/workers';

/**
 * Where a worker stands: `live` (heartbeating), `stopped` (it shut down cleanly) or `lost` (it
 * stopped heartbeating without saying goodbye: killed, crashed, cut off). The same rule as the
 * CLI's `crossdock workers`.
 */
export type WorkerState = 'live' | 'stopped' | 'lost';

/** The WorkerState of a row of db/queries/workers.ts `listWorkers`. */
export function workerState(worker: Pick<WorkerStatus, 'live' | 'stoppedAt'>): WorkerState {
  return worker.live ? 'live' : worker.stoppedAt ? 'stopped' : 'lost';
}

/** The ids of the jobs `worker` runs, in ascending order (the query leaves the order open). */
export function runningJobIds(worker: Pick<WorkerStatus, 'runningJobIds'>): number[] {
  return [...worker.runningJobIds].sort((a, b) => a - b);
}

/**
 * The JSON form of a worker for /api/v1/workers: its id, state (WorkerState), host and process
 * id, version, platforms run natively and by emulation (OCI), labels, slots and how many are in
 * use, heartbeat period in seconds, times as ISO 8601 strings (`stoppedAt` null unless stopped),
 * builder images it has (image name → image id, sha256:…) and the jobs it runs now (by id) with
 * their log page URLs. Every field of the row is public operational data; none is a secret.
 */
export function workerToJson(worker: WorkerStatus, portalUrl: string) {
  return {
    id: worker.id,
    state: workerState(worker),
    host: worker.host,
    pid: worker.pid,
    version: worker.version,
    platforms: worker.platforms,
    emulatedPlatforms: worker.emulatedPlatforms,
    labels: worker.labels,
    slots: worker.slots,
    slotsUsed: worker.runningJobIds.length,
    heartbeatSeconds: worker.heartbeatSeconds,
    lastHeartbeatAt: worker.lastHeartbeatAt.toISOString(),
    startedAt: worker.startedAt.toISOString(),
    stoppedAt: worker.stoppedAt?.toISOString() ?? null,
    images: worker.images,
    runningJobs: runningJobIds(worker).map((id) => ({
      id,
      logUrl: portalUrls.jobLog(portalUrl, id),
    })),
  };
}

/**
 * The JSON form of a run platform's queue for /api/v1/queue: job counts (queued jobs attached to
 * an identical job are not counted: they never run), live workers serving the platform natively
 * or by emulation, and their free slots. `unserved` is true when jobs wait and no live worker
 * serves the platform at all.
 */
export function queueToJson(queue: PlatformQueue) {
  return {
    runPlatform: queue.runPlatform,
    queued: queue.queued,
    running: queue.running,
    workers: queue.workers,
    freeSlots: queue.freeSlots,
    unserved: queue.queued > 0 && queue.workers === 0,
  };
}
