import { mkdir } from 'node:fs/promises';
import type { Client } from 'minio';
import type { Logger } from '../core/logger';
import { reportError } from '../core/errors';
import { artifactKey, logKey } from '../core/storage';
import type { Database } from '../db/client';
import { CHANNELS } from '../db/notify';
import {
  claimJob,
  completeJob,
  renewLeases,
  requeueExpiredJobs,
  setJobImageDigest,
  type ClaimedJob,
  type JobOutcome,
} from '../db/queries/jobs';
import { appendLogChunk } from '../db/queries/logs';
import { heartbeatWorker, markWorkerStopped, registerWorker } from '../db/queries/workers';
import { removeObjects, uploadArtifacts, type UploadedArtifact } from './artifacts';
import { LogWriter } from './log-writer';
import type { RunHandle, Runner } from './runner';
import { fetchSource } from './source';

export const WORKER_VERSION = '0.1.0';

export interface WorkerOptions {
  workerId: string;
  host: string;
  platforms: string[];
  slots: number;
  heartbeatSeconds: number;
  pollSeconds: number;
  workDir: string;
  bucket: string;
}

export interface WorkerDeps {
  db: Database;
  storage: Client;
  runner: Runner;
  log: Logger;
}

/**
 * One worker process: registers, heartbeats (renewing the leases of its jobs and queueing
 * again the jobs of workers whose leases expired), and claims jobs for its platforms as slots
 * free up, woken by NOTIFY on the jobs channel with a polling fallback.
 */
export class Worker {
  private readonly running = new Map<number, Promise<void>>();
  private stopping = false;
  private wake: (() => void) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly options: WorkerOptions,
    private readonly deps: WorkerDeps,
  ) {}

  private get leaseSeconds(): number {
    return this.options.heartbeatSeconds * 2;
  }

  /** Registers and runs the claim loop until `stop()`; resolves when running jobs finished. */
  async run(): Promise<void> {
    const { db, log } = this.deps;
    await mkdir(this.options.workDir, { recursive: true });
    await registerWorker(db, {
      id: this.options.workerId,
      host: this.options.host,
      pid: process.pid,
      version: WORKER_VERSION,
      platforms: this.options.platforms,
    });
    const listener = await db.$client.listen(CHANNELS.jobs, () => this.wake?.());
    this.unlisten = () => listener.unlisten();
    this.heartbeatTimer = setInterval(
      () => void this.heartbeat(),
      this.options.heartbeatSeconds * 1000,
    );
    log.info({ platforms: this.options.platforms, slots: this.options.slots }, 'worker started');
    while (!this.stopping) {
      if (this.running.size < this.options.slots) {
        let claimed: ClaimedJob | undefined;
        try {
          claimed = await claimJob(db, {
            workerId: this.options.workerId,
            platforms: this.options.platforms,
            leaseSeconds: this.leaseSeconds,
          });
        } catch (error) {
          log.warn({ err: error }, 'claiming a job failed; retrying after the poll interval');
        }
        if (claimed) {
          const jobId = claimed.job.id;
          this.running.set(
            jobId,
            this.runJob(claimed).finally(() => {
              this.running.delete(jobId);
              this.wake?.();
            }),
          );
          continue;
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.options.pollSeconds * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    await Promise.allSettled(this.running.values());
    clearInterval(this.heartbeatTimer);
    await this.unlisten?.().catch(() => {});
    await markWorkerStopped(db, this.options.workerId).catch(() => {});
    log.info('worker stopped');
  }

  /** Stops claiming; `run()` resolves once the running jobs have finished. */
  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  private async heartbeat(): Promise<void> {
    const { db, log } = this.deps;
    try {
      await heartbeatWorker(db, this.options.workerId);
      await renewLeases(db, this.options.workerId, this.leaseSeconds);
      const requeued = await requeueExpiredJobs(db);
      for (const job of requeued)
        log.warn({ jobId: job.id, attempt: job.attempt }, 'lease expired; job queued again');
    } catch (error) {
      log.warn({ err: error }, 'heartbeat failed');
    }
  }

  /** Runs one claimed job attempt to its end; never throws. */
  private async runJob(claimed: ClaimedJob): Promise<void> {
    const { db, runner, storage } = this.deps;
    const { job, build, repo } = claimed;
    const fence = { jobId: job.id, attempt: job.attempt };
    const log = this.deps.log.child({ buildId: build.id, jobId: job.id, attempt: job.attempt });
    const output = new LogWriter((seq, text) => appendLogChunk(db, { ...fence, seq, data: text }));
    let handle: RunHandle | undefined;
    let source: Awaited<ReturnType<typeof fetchSource>> | undefined;
    let uploaded: UploadedArtifact[] = [];
    let outcome: JobOutcome;
    log.info({ target: job.target, image: job.image }, 'job started');
    try {
      output.note(
        `worker ${this.options.workerId}: ${repo.owner}/${repo.name}@${build.sha}, target ${job.target} (${job.platform}, ${job.toolchain})`,
      );
      const imageDigest = await runner.imageDigest(job.image);
      await setJobImageDigest(db, fence, imageDigest);
      output.note(`builder image ${job.image} (${imageDigest})`);
      source = await fetchSource(repo.cloneUrl, build.sha, this.options.workDir);
      handle = await runner.create({
        image: job.image,
        script: job.spec.script,
        env: job.spec.env,
        network: job.spec.network,
        labels: {
          'io.crossdock.job': String(job.id),
          'io.crossdock.attempt': String(job.attempt),
          'io.crossdock.worker': this.options.workerId,
        },
        sources: source.archive(),
      });
      const result = await runner.run(
        handle,
        (chunk) => output.write(chunk),
        job.spec.timeoutMinutes * 60_000,
      );
      if (result.timedOut) {
        output.note(
          `timed out after ${job.spec.timeoutMinutes} minutes; the container was stopped`,
        );
        outcome = {
          state: 'timed_out',
          exitCode: result.exitCode,
          error: `timed out after ${job.spec.timeoutMinutes} min`,
        };
      } else if (result.exitCode !== 0) {
        output.note(`script exited with ${result.exitCode}`);
        outcome = {
          state: 'failed',
          exitCode: result.exitCode,
          error: `script exited with ${result.exitCode}`,
        };
      } else {
        uploaded = await uploadArtifacts({
          archive: await runner.outputs(handle),
          globs: job.spec.artifacts,
          client: storage,
          bucket: this.options.bucket,
          keyFor: (file) =>
            artifactKey({
              owner: repo.owner,
              repo: repo.name,
              sha: build.sha,
              target: job.target,
              jobId: job.id,
              attempt: job.attempt,
              file,
            }),
        });
        for (const artifact of uploaded)
          output.note(
            `artifact ${artifact.name}: ${artifact.size} bytes, sha256 ${artifact.sha256}`,
          );
        outcome = { state: 'succeeded', exitCode: 0, artifacts: uploaded };
      }
    } catch (error) {
      const report = reportError(error);
      const message = error instanceof Error ? error.message : String(error);
      output.note(`error: ${message}`);
      log[report.level]({ err: error, code: report.code }, 'job errored');
      outcome = { state: 'failed', error: message };
    } finally {
      if (handle)
        await runner
          .destroy(handle)
          .catch((error) => log.warn({ err: error }, 'removing the container failed'));
      await source?.dispose();
    }
    try {
      await output.close();
      const logBytes = Buffer.from(output.text());
      await storage.putObject(
        this.options.bucket,
        logKey({ buildId: build.id, ...fence }),
        logBytes,
        logBytes.length,
        {
          'Content-Type': 'text/plain; charset=utf-8',
        },
      );
      const recorded = await completeJob(db, fence, outcome);
      if (!recorded) {
        log.warn('attempt superseded; its artifacts are discarded');
        await removeObjects(
          storage,
          this.options.bucket,
          uploaded.map((artifact) => artifact.objectKey),
        );
      }
      log.info({ state: outcome.state, artifacts: uploaded.length }, 'job finished');
    } catch (error) {
      log.error(
        { err: error },
        'recording the job outcome failed; its lease will expire and it runs again',
      );
      await removeObjects(
        storage,
        this.options.bucket,
        uploaded.map((artifact) => artifact.objectKey),
      ).catch(() => {});
    }
  }
}
