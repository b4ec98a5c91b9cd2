import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { CHANNELS } from '../db/notify';
import {
  claimJobs,
  getJobWithBuild,
  nextLeaseExpiry,
  notifyBuildsChanged,
  renewLeases,
  requeueExpiredJobs,
  retryJob,
  type ClaimedJob,
  type HeldJob,
} from '../db/queries/jobs';
import {
  heartbeatWorker,
  markWorkerStopped,
  registerWorker,
  type WorkerRegistration,
} from '../db/queries/workers';

/** Why a running job was told to stop. */
export type StopReason =
  /** Someone canceled it: stop the container and record `canceled`. */
  | 'cancel'
  /** Its lease was lost (the job was queued again elsewhere): stop it and record nothing. */
  | 'lost'
  /** The worker is shutting down at once: stop it and hand the job back to the queue. */
  | 'shutdown';

/**
 * Runs one claimed job to its end and records its outcome (fenced by `claimed.job.attempt`).
 * `signal` aborts with a StopReason. Must not throw.
 *
 * `releaseSlot` says the job no longer needs its slot: its container is gone and its artifacts
 * are stored, and only its log and outcome remain to be written to the database. The Dispatcher
 * then claims another job for the slot while the outcome is recorded (a slot is a container's
 * share of the machine; a database write uses none of it), so that short jobs do not wait for
 * each other's round trips. The job still counts as running (its lease is renewed, and `run()`
 * waits for it) until the handler returns. Calling it more than once does nothing.
 */
export type JobHandler = (
  claimed: ClaimedJob,
  signal: AbortSignal,
  releaseSlot: () => void,
) => Promise<void>;

export interface DispatcherOptions {
  /** The worker as registered; `slots` jobs run at once; it heartbeats every `heartbeatSeconds`. */
  worker: Omit<WorkerRegistration, 'images'>;
  /** Longest wait between claim attempts when no NOTIFY arrives, in seconds. */
  pollSeconds: number;
  /** The builder images the worker has (name → image id), announced at each heartbeat. */
  images?: () => Promise<Record<string, string>>;
  /** Extra work at each heartbeat, e.g. removing containers of lost attempts. */
  onHeartbeat?: () => Promise<void>;
}

/**
 * Claims a worker runs at once. Two keep its slots busy while a claim is on its way: a claim
 * takes a round trip, and with one at a time, slots that free up meanwhile wait for it.
 */
const CLAIMS_IN_FLIGHT = 2;

/** Watchers of builds hear that jobs started at most this often, in ms (notifyClaimedBuilds). */
const STARTED_NOTIFY_MS = 100;

/** A lease lasts this many heartbeat intervals: one late heartbeat does not lose a job. */
export const LEASE_HEARTBEATS = 1.5;

interface RunningJob {
  attempt: number;
  controller: AbortController;
  /** Date.now() when it was claimed: heartbeats that began earlier cannot have seen it. */
  claimedAt: number;
  done: Promise<void>;
}

/**
 * The queue side of a worker: registers it, heartbeats (renewing its leases, learning of
 * cancellations and lost leases), and claims jobs its platforms and labels serve as slots free
 * up. It wakes on NOTIFY (new jobs; cancellations), polls as a fallback, and wakes when the next
 * lease of any worker runs out so that a lost worker's job is queued again at once. What a job
 * does is the handler's business; the Docker worker and the benchmarks pass their own.
 */
export class Dispatcher {
  private readonly running = new Map<number, RunningJob>();
  private stopping = false;
  /** Resolves the current idle wait; set while waiting. */
  private wakeWaiter: (() => void) | undefined;
  /** A wake-up arrived while not waiting (e.g. during a claim): the next wait returns at once. */
  private wakePending = false;
  /** The cached next lease expiry, and when it was read (Date.now()). */
  private expiry: Date | undefined;
  private expiryReadAt = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatRetry: NodeJS.Timeout | undefined;
  /** Date.now() of the last failed database call (0: none): see requeueExpired. */
  private databaseFailedAt = 0;
  private readonly unlisteners: (() => Promise<void>)[] = [];
  /** Claims begun so far, those in flight, and the slots they asked for: see `adopt`. */
  private claimsBegun = 0;
  private readonly claims = new Set<Promise<void>>();
  private reservedSlots = 0;
  /** Running jobs that released their slot (their outcome is being recorded): see JobHandler. */
  private releasedSlots = 0;
  /**
   * The last claim found fewer jobs than it asked for: claim no more until something changes
   * (a wake-up). `wakeups` counts wake-ups, so a claim that began before one does not set it.
   */
  private drained = false;
  private wakeups = 0;
  private stoppingNow = false;
  /** Builds whose jobs were claimed and whose watchers are not told yet; one NOTIFY at a time. */
  private readonly claimedBuilds = new Set<number>();
  private notifying: Promise<void> | undefined;
  private notifyTimer: NodeJS.Timeout | undefined;
  private notifiedAt = 0;

  constructor(
    private readonly options: DispatcherOptions,
    private readonly deps: { db: Database; log: Logger; handler: JobHandler },
  ) {}

  get leaseSeconds(): number {
    return this.options.worker.heartbeatSeconds * LEASE_HEARTBEATS;
  }

  /** Registers and claims until `stop()`; resolves when the running jobs have finished. */
  async run(): Promise<void> {
    const { db, log } = this.deps;
    const { worker } = this.options;
    await registerWorker(db, { ...worker, images: await this.images() });
    // Jobs still held under this id belong to an earlier process of it that died.
    for (const held of await renewLeases(db, worker.id, this.leaseSeconds)) {
      const result = await retryJob(db, held, {
        reason: `worker ${worker.id} restarted`,
        infrastructure: true,
      });
      log.warn(
        { jobId: held.jobId, attempt: held.attempt, result },
        'released a job of an earlier run',
      );
    }
    for (const [channel, onMessage] of [
      [CHANNELS.jobs, () => this.wake()],
      [CHANNELS.cancel, (payload: string) => this.abort(Number(payload), 'cancel')],
    ] as const) {
      const listener = await db.$client.listen(channel, onMessage);
      this.unlisteners.push(() => listener.unlisten());
    }
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), worker.heartbeatSeconds * 1000);
    log.info(
      {
        platforms: worker.platforms,
        emulatedPlatforms: worker.emulatedPlatforms,
        labels: worker.labels,
        slots: worker.slots,
      },
      'worker started',
    );
    while (!this.stopping) {
      const free = this.freeSlots();
      if (free > 0 && !this.drained && this.claims.size < CLAIMS_IN_FLIGHT) {
        this.claimSome(free);
        continue;
      }
      await this.waitForWork();
    }
    await Promise.allSettled(this.claims);
    await Promise.allSettled([...this.running.values()].map((job) => job.done));
    clearTimeout(this.notifyTimer);
    this.notifyTimer = undefined;
    while (this.notifying || this.claimedBuilds.size > 0) {
      this.notifyClaimedBuilds();
      await this.notifying;
    }
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.heartbeatRetry);
    for (const unlisten of this.unlisteners) await unlisten().catch(() => {});
    await markWorkerStopped(db, worker.id).catch(() => {});
    log.info('worker stopped');
  }

  /** Stops claiming; `run()` resolves once the running jobs have finished. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  /** Stops claiming and tells every running job to stop and go back to the queue. */
  stopNow(): void {
    this.stoppingNow = true;
    this.stop();
    for (const jobId of this.running.keys()) this.abort(jobId, 'shutdown');
  }

  /**
   * Slots no job holds and no claim asked for. Jobs that released their slot do not count, but
   * at most `slots` of them at once: if recording outcomes falls behind (a slow database), the
   * worker stops claiming rather than run ever more jobs whose outcomes wait.
   */
  private freeSlots(): number {
    const { slots } = this.options.worker;
    const holding = this.running.size - this.releasedSlots;
    return Math.min(slots - holding, 2 * slots - this.running.size) - this.reservedSlots;
  }

  /** Something changed (a job is queued or finished, or stop was asked): look for work again. */
  private wake(): void {
    this.wakeups += 1;
    this.drained = false;
    this.resume();
  }

  /** Ends the idle wait now, or makes the next one return at once. */
  private resume(): void {
    if (this.wakeWaiter) this.wakeWaiter();
    else this.wakePending = true;
  }

  private abort(jobId: number, reason: StopReason): void {
    const job = this.running.get(jobId);
    if (job && !job.controller.signal.aborted) {
      this.deps.log.info({ jobId, attempt: job.attempt, reason }, 'stopping job');
      job.controller.abort(reason);
    }
  }

  /**
   * Claims up to `count` jobs and starts them, in the background: up to CLAIMS_IN_FLIGHT claims
   * run at once, each for slots no other claim asked for. A claim that finds fewer jobs (or
   * fails) marks the queue drained until the next wake-up.
   */
  private claimSome(count: number): void {
    const { worker } = this.options;
    const wakeupsBefore = this.wakeups;
    this.claimsBegun += 1;
    this.reservedSlots += count;
    const claim = claimJobs(
      this.deps.db,
      {
        workerId: worker.id,
        platforms: worker.platforms,
        emulatedPlatforms: worker.emulatedPlatforms,
        labels: worker.labels,
        leaseSeconds: this.leaseSeconds,
      },
      count,
    )
      .catch((error: unknown) => {
        this.databaseFailedAt = Date.now();
        this.deps.log.warn({ err: error }, 'claiming jobs failed; trying again');
        return [];
      })
      .then((claimed) => {
        this.reservedSlots -= count;
        for (const job of claimed) this.start(job);
        if (claimed.length < count && this.wakeups === wakeupsBefore) this.drained = true;
        for (const { build } of claimed) this.claimedBuilds.add(build.id);
        this.notifyClaimedBuilds();
      })
      .finally(() => {
        this.claims.delete(claim);
        this.resume();
      });
    this.claims.add(claim);
  }

  /**
   * Tells the builds' watchers their jobs started, after the jobs have (see claimJobs): at most
   * one statement every STARTED_NOTIFY_MS, with the builds claimed meanwhile in the next (a
   * statement per claim cost a fifth of the throughput of short jobs). A failure is logged; the
   * watchers also poll.
   */
  private notifyClaimedBuilds(): void {
    if (this.notifying || this.notifyTimer || this.claimedBuilds.size === 0) return;
    const waitMs = this.notifiedAt + STARTED_NOTIFY_MS - Date.now();
    if (waitMs > 0 && !this.stopping) {
      this.notifyTimer = setTimeout(() => {
        this.notifyTimer = undefined;
        this.notifyClaimedBuilds();
      }, waitMs);
      return;
    }
    const buildIds = [...this.claimedBuilds];
    this.claimedBuilds.clear();
    this.notifiedAt = Date.now();
    this.notifying = notifyBuildsChanged(this.deps.db, buildIds)
      .catch((error) =>
        this.deps.log.warn({ err: error, buildIds }, 'notifying started builds failed'),
      )
      .finally(() => {
        this.notifying = undefined;
        this.notifyClaimedBuilds();
      });
  }

  private start(claimed: ClaimedJob): void {
    const jobId = claimed.job.id;
    const controller = new AbortController();
    let released = false;
    const releaseSlot = () => {
      if (released) return;
      released = true;
      this.releasedSlots += 1;
      this.resume();
    };
    const done = this.deps
      .handler(claimed, controller.signal, releaseSlot)
      .catch((error) => this.deps.log.error({ err: error, jobId }, 'job handler threw'))
      .finally(() => {
        this.running.delete(jobId);
        if (released) this.releasedSlots -= 1;
        // A free slot: claim again, unless the last claim found the queue empty and no NOTIFY
        // has come since (then there is nothing to claim, and a claim would only cost a round
        // trip before the next job's).
        this.resume();
      });
    this.running.set(jobId, {
      attempt: claimed.job.attempt,
      controller,
      claimedAt: Date.now(),
      done,
    });
    // Claimed just as the worker was told to stop at once: hand it back too.
    if (this.stoppingNow) this.abort(jobId, 'shutdown');
  }

  /**
   * Runs a job the database says this worker holds but that it does not run: a claim whose
   * reply was lost (the connection broke after the claim committed). Skipped while a claim is
   * in flight or began since `claimsBefore`, as its reply may still come.
   */
  private async adopt(held: HeldJob, claimsBefore: number): Promise<void> {
    if (this.claims.size > 0 || this.claimsBegun !== claimsBefore || this.stopping) return;
    const claimed = await getJobWithBuild(this.deps.db, held.jobId);
    const mine =
      claimed?.job.state === 'running' &&
      claimed.job.workerId === this.options.worker.id &&
      claimed.job.attempt === held.attempt;
    if (!mine || this.running.has(held.jobId)) return;
    if (this.claims.size > 0 || this.claimsBegun !== claimsBefore || this.stopping) return;
    this.deps.log.warn(
      { jobId: held.jobId, attempt: held.attempt },
      'running a job whose claim reply was lost',
    );
    this.start(claimed);
  }

  /**
   * Sleeps until a NOTIFY, the poll interval, or the next lease expiry of another worker's job
   * (then queues expired jobs again, so a lost worker's job is reclaimed without waiting for a
   * heartbeat).
   */
  private async waitForWork(): Promise<void> {
    let delayMs = this.options.pollSeconds * 1000;
    const expiry = await this.nextLeaseExpiry();
    if (expiry) {
      // Wake when it expires, or when requeueExpired stops deferring after a database failure.
      const deferredUntil = this.databaseFailedAt + this.options.worker.heartbeatSeconds * 1000;
      const wakeAt = Math.max(expiry.getTime(), deferredUntil);
      delayMs = Math.min(delayMs, Math.max(0, wakeAt - Date.now()) + 20);
    }
    if (this.stopping || this.wakePending) {
      this.wakePending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.drained = false; // Poll: look again even if nothing said so.
        resolve();
      }, delayMs);
      this.wakeWaiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeWaiter = undefined;
    this.wakePending = false;
    if (expiry && Date.now() >= expiry.getTime()) await this.requeueExpired();
  }

  /**
   * The next lease expiry of another worker's running job, read at most once per poll interval:
   * leases claimed since then expire later, so the cached one is never too late by more than a
   * poll.
   */
  private async nextLeaseExpiry(): Promise<Date | undefined> {
    const now = Date.now();
    if (now - this.expiryReadAt >= this.options.pollSeconds * 1000 || this.expiryDue(now)) {
      this.expiry = await nextLeaseExpiry(this.deps.db, this.options.worker.id).catch(() => {
        this.databaseFailedAt = Date.now();
        return undefined;
      });
      this.expiryReadAt = now;
    }
    return this.expiry;
  }

  private expiryDue(now: number): boolean {
    return this.expiry !== undefined && this.expiry.getTime() <= now;
  }

  /**
   * Queues again the jobs of other workers whose leases expired. Not within a heartbeat interval
   * of a failed database call: after an outage every lease may have run out, and the workers
   * still alive must first get the chance to renew theirs (they retry their heartbeat every
   * second). Never this worker's own: it is alive, and a heartbeat of its that came late (a busy
   * host) renews them.
   */
  private async requeueExpired(): Promise<void> {
    if (Date.now() - this.databaseFailedAt < this.options.worker.heartbeatSeconds * 1000) return;
    try {
      for (const { job, result } of await requeueExpiredJobs(this.deps.db, this.options.worker.id))
        this.deps.log.warn(
          { jobId: job.id, attempt: job.attempt, lostWorker: job.workerId, result },
          'lease expired',
        );
    } catch (error) {
      this.databaseFailedAt = Date.now();
      this.deps.log.warn({ err: error }, 'queueing expired jobs again failed');
    }
  }

  /** The builder images to announce; none (logged) when they cannot be listed. */
  private async images(): Promise<Record<string, string>> {
    try {
      return (await this.options.images?.()) ?? {};
    } catch (error) {
      this.deps.log.warn({ err: error }, 'listing builder images failed');
      return {};
    }
  }

  private async heartbeat(): Promise<void> {
    const { db, log } = this.deps;
    const { worker } = this.options;
    const startedAt = Date.now();
    const claimsBefore = this.claims.size > 0 ? -1 : this.claimsBegun;
    // The leases first: listing the images asks Docker, which a busy host can make slow.
    const images = this.images();
    try {
      const held = await renewLeases(db, worker.id, this.leaseSeconds);
      await heartbeatWorker(db, worker.id, await images);
      const byId = new Map(held.map((job) => [job.jobId, job]));
      for (const job of held)
        if (!this.running.has(job.jobId) && this.running.size < worker.slots)
          await this.adopt(job, claimsBefore);
      for (const [jobId, job] of this.running) {
        const current = byId.get(jobId);
        if (current?.attempt === job.attempt) {
          if (current.cancelRequested) this.abort(jobId, 'cancel');
        } else if (job.claimedAt < startedAt) {
          this.abort(jobId, 'lost');
        }
      }
    } catch (error) {
      // A lease outlives one missed heartbeat by half an interval only: try again soon, so that a
      // short database outage (a restart) does not cost the running jobs their leases.
      this.databaseFailedAt = Date.now();
      log.warn({ err: error }, 'heartbeat failed; trying again shortly');
      if (!this.stopping && !this.heartbeatRetry)
        this.heartbeatRetry = setTimeout(
          () => {
            this.heartbeatRetry = undefined;
            void this.heartbeat();
          },
          Math.min(1000, worker.heartbeatSeconds * 250),
        );
    }
    await this.requeueExpired();
    await this.options.onHeartbeat?.().catch((error) => {
      log.warn({ err: error }, 'heartbeat task failed');
    });
  }
}
