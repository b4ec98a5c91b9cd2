import { portalUrls } from '../core/urls';
import { workerState, type PlatformQueue, type WorkerStatus } from '../db/queries/workers';

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
    runningJobs: worker.runningJobIds.map((id) => ({
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
