import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve as resolvePath } from 'node:path';
import type { Client } from 'minio';
import pRetry from 'p-retry';
import type { Logger } from '../core/logger';
import { CrossdockError } from '../core/errors';
import type { DockerfileBuild } from '../core/recipe';
import { artifactKey } from '../core/storage';
import type { Database } from '../db/client';
import {
  completeJobs,
  findStaleAttempts,
  retryJob,
  setJobImageDigest,
  type ClaimedJob,
  type Fence,
  type JobOutcome,
} from '../db/queries/jobs';
import { appendLogChunk } from '../db/queries/logs';
import type { WorkerRegistration } from '../db/queries/workers';
import {
  removeObjects,
  stageArtifacts,
  uploadArtifacts,
  type RetryPolicy,
  type StagedArtifact,
  type UploadedArtifact,
} from './artifacts';
import { cacheMounts } from './caches';
import { CompletionBatcher } from './completions';
import { Dispatcher, type StopReason } from './dispatcher';
import { LogWriter } from './log-writer';
import {
  createRunDirectory,
  listRunDirectories,
  removeRunDirectory,
  type RunDirectory,
} from './run-directory';
import {
  CHECKSUMS_FILE,
  PROVENANCE_FILE,
  RESERVED_ARTIFACT_NAMES,
  checksumsFile,
  provenanceStatement,
  type RunFacts,
} from './provenance';
import type { RunHandle, RunResult, Runner } from './runner';
import type { CloneCredentialSource } from './github-token';
import { SourceCache } from './source';

export const WORKER_VERSION = '0.2.0';

export interface WorkerOptions {
  /** id, host, platforms (native and emulated), labels, slots, heartbeat interval. */
  worker: Omit<WorkerRegistration, 'images' | 'version'>;
  pollSeconds: number;
  workDir: string;
  bucket: string;
  /** How artifact uploads are retried before the attempt counts as an infrastructure failure. */
  uploadRetry: RetryPolicy;
  /**
   * Mints a token to clone a repository of a GitHub App installation (repos.github_installation_id);
   * without it such repositories are cloned anonymously (enough for public ones).
   */
  cloneCredentials?: CloneCredentialSource;
  /** Secret values by name: given to trusted jobs that ask for them, masked in every job's log. */
  secrets: Record<string, string>;
  /**
   * Container limits: `default` for jobs whose recipe sets none, `max` (the host's CPUs and
   * memory) caps what a recipe asks for. CPUs may be fractions; memory is in bytes.
   */
  limits: {
    default: { cpus?: number; memoryBytes?: number };
    max: { cpus: number; memoryBytes: number };
  };
}

export interface WorkerDeps {
  db: Database;
  storage: Client;
  runner: Runner;
  log: Logger;
}

/** How an attempt ended that the worker did not see through (see `runJob`). */
type Interruption = StopReason | 'timeout';

/**
 * One worker process: a Dispatcher (registration, heartbeats, leases, claiming) whose jobs run
 * in build containers through a Runner. At each heartbeat it also removes containers of attempts
 * that no longer hold their job (a worker that was killed, an attempt that lost its lease).
 */
export class Worker {
  private readonly dispatcher: Dispatcher;
  private readonly sources: SourceCache;
  private readonly completions: CompletionBatcher;

  constructor(
    private readonly options: WorkerOptions,
    private readonly deps: WorkerDeps,
  ) {
    this.sources = new SourceCache(join(options.workDir, 'git'));
    this.completions = new CompletionBatcher((batch) => completeJobs(deps.db, batch));
    this.dispatcher = new Dispatcher(
      {
        worker: { ...options.worker, version: WORKER_VERSION },
        pollSeconds: options.pollSeconds,
        images: () => deps.runner.images(),
        onHeartbeat: () => this.removeStaleAttempts(),
      },
      {
        db: deps.db,
        log: deps.log,
        handler: (claimed, signal, releaseSlot) => this.runJob(claimed, signal, releaseSlot),
      },
    );
  }

  /** Registers and runs jobs until `stop()`; resolves when the running jobs are done. */
  async run(): Promise<void> {
    await mkdir(this.options.workDir, { recursive: true });
    await this.removeStaleAttempts().catch((error) =>
      this.deps.log.warn({ err: error }, 'removing what stale attempts left failed'),
    );
    await this.dispatcher.run();
  }

  /** Claims no more jobs; `run()` resolves once the running ones have finished. */
  stop(): void {
    this.dispatcher.stop();
  }

  /** Claims no more jobs and stops the running ones, handing them back to the queue. */
  stopNow(): void {
    this.dispatcher.stopNow();
  }

  /**
   * Removes Crossdock containers, then run directories in the work directory, whose attempt no
   * longer holds its job (findStaleAttempts): what a worker that died or lost its lease left.
   */
  private async removeStaleAttempts(): Promise<void> {
    const containers = (await this.deps.runner.listContainers()).flatMap((container) => {
      const jobId = Number(container.labels['io.crossdock.job']);
      const attempt = Number(container.labels['io.crossdock.attempt']);
      const workerId = container.labels['io.crossdock.worker'];
      return workerId && jobId && attempt ? [{ id: container.id, jobId, attempt, workerId }] : [];
    });
    for (const stale of await findStaleAttempts(this.deps.db, containers)) {
      this.deps.log.info(
        { jobId: stale.jobId, attempt: stale.attempt, lostWorker: stale.workerId },
        'removing the container of an attempt that no longer holds its job',
      );
      await this.deps.runner.destroy({ id: stale.id });
    }
    const directories = await listRunDirectories(this.options.workDir);
    for (const stale of await findStaleAttempts(this.deps.db, directories)) {
      this.deps.log.info(
        { jobId: stale.jobId, attempt: stale.attempt, lostWorker: stale.workerId },
        'removing the run directory of an attempt that no longer holds its job',
      );
      await removeRunDirectory(stale.path).catch((error) =>
        this.deps.log.warn({ err: error, path: stale.path }, 'removing a run directory failed'),
      );
    }
  }

  /**
   * Runs one claimed attempt to its end and records it; never throws. The script's own failure
   * (non-zero exit, bad artifacts) fails the job; a timeout ends it `timed_out`; a cancel ends it
   * `canceled`; an infrastructure failure (source, Docker, object storage) hands it back to the
   * queue, which retries it up to the job's limit; a lost lease records nothing.
   */
  private async runJob(
    claimed: ClaimedJob,
    stopSignal: AbortSignal,
    releaseSlot: () => void,
  ): Promise<void> {
    const { db, runner, storage } = this.deps;
    const { job, build, repo } = claimed;
    const fence = { jobId: job.id, attempt: job.attempt };
    const log = this.deps.log.child({ buildId: build.id, jobId: job.id, attempt: job.attempt });
    const requested = job.spec.secrets ?? [];
    const output = new LogWriter(
      (seq, text) => whileDatabaseRecovers(() => appendLogChunk(db, { ...fence, seq, data: text })),
      {
        secrets: Object.values(this.options.secrets),
        onPersistError: (error) => log.warn({ err: error }, 'a log chunk could not be stored'),
      },
    );
    const controller = new AbortController();
    const onStop = () => controller.abort(stopSignal.reason);
    stopSignal.addEventListener('abort', onStop, { once: true });
    const timeoutMs = job.spec.timeoutMinutes * 60_000;
    const timer = setTimeout(() => controller.abort('timeout' satisfies Interruption), timeoutMs);
    const signal = controller.signal;
    const interrupted = () => (signal.aborted ? (signal.reason as Interruption) : undefined);
    let handle: RunHandle | undefined;
    let removal: Promise<void> | undefined;
    /** Removes the container, once however often it is called; never throws. */
    const removeContainer = (container: RunHandle) =>
      (removal ??= runner
        .destroy(container)
        .catch((error) => log.warn({ err: error }, 'removing the container failed')));
    let directory: RunDirectory | undefined;
    let checkout: Promise<void> | undefined;
    let uploaded: UploadedArtifact[] = [];
    let outcome: JobOutcome | undefined;
    let imageDigest: string | undefined;
    let startedOn: Date | undefined;
    let retry: { reason: string; infrastructure: boolean } | undefined;
    log.info({ target: job.target, image: job.image }, 'job started');
    try {
      output.note(
        `worker ${this.options.worker.id}: ${repo.owner}/${repo.name}@${build.sha}, target ${job.target} (${job.platform}, ${job.toolchain}), attempt ${job.attempt}`,
      );
      if (requested.length > 0 && !build.trusted)
        throw new CrossdockError(
          'secret-refused',
          `target ${job.target} asks for secret(s) ${requested.join(', ')}, but build ${build.id} is of untrusted code (${build.pullNumber !== null ? `pull request #${build.pullNumber} from a fork` : 'a commit no branch or tag of the repository contains'}); secrets go only into trusted builds. Build it from a branch of the repository, or drop the secrets from targets that pull requests build`,
        );
      const missing = requested.filter((name) => this.options.secrets[name] === undefined);
      if (missing.length > 0) {
        throw new CrossdockError(
          'secret-missing',
          `secret(s) ${missing.join(', ')} are not configured on worker ${this.options.worker.id}; add them to its WORKER_SECRETS_FILE or drop them from the target's secrets`,
        );
      }
      directory = await createRunDirectory(this.options.workDir, {
        ...fence,
        workerId: this.options.worker.id,
      });
      // Fetching and writing out the sources overlaps with the image lookup and the container's
      // creation; the container starts once they are there.
      const installationId = repo.githubInstallationId;
      const mint = this.options.cloneCredentials;
      checkout = this.sources.checkout(
        repo.cloneUrl,
        build.sha,
        directory.src,
        repo.source === 'github' && installationId !== null && mint
          ? () => mint(installationId, repo.name)
          : undefined,
      );
      checkout.catch(() => {}); // Awaited below, and before the directory is removed.
      const dockerfile = job.spec.dockerfile;
      // A Dockerfile build's "image" is the Dockerfile: its digest is the file's sha256.
      const digest = dockerfile
        ? await checkout.then(() => dockerfileDigest(directory!.src, dockerfile))
        : await runner.imageDigest(job.image);
      imageDigest = digest;
      await whileDatabaseRecovers(() => setJobImageDigest(db, fence, digest));
      output.note(`builder image ${job.image} (${imageDigest})`);
      const resources = this.resourcesOf(claimed, (message) => output.note(message));
      const caches = cacheMounts({
        repository: `${repo.owner}/${repo.name}`,
        target: job.target,
        trusted: build.trusted,
        caches: job.spec.caches ?? [],
      });
      for (const cache of caches)
        output.note(
          cache.volume
            ? `cache ${cache.path}: volume ${cache.volume}`
            : `cache ${cache.path}: an empty scratch volume (untrusted code keeps no cache)`,
        );
      // On the build container (or, for a Dockerfile, the one /out is exported from), so that
      // stale attempts' leftovers are found (removeStaleAttempts).
      const labels = {
        'io.crossdock.job': String(job.id),
        'io.crossdock.attempt': String(job.attempt),
        'io.crossdock.worker': this.options.worker.id,
      };
      if (!interrupted() && !dockerfile) {
        handle = await runner.create({
          image: job.image,
          script: job.spec.script,
          env: {
            ...job.spec.env,
            ...Object.assign({}, ...caches.map((cache) => cache.env)),
            ...Object.fromEntries(requested.map((name) => [name, this.options.secrets[name]!])),
            ...buildEnvironment(claimed),
          },
          caches,
          resources,
          network: job.spec.network,
          labels,
          mounts: directory,
        });
        await checkout;
      }
      startedOn = new Date();
      const onOutput = (chunk: Buffer) => output.write(chunk);
      let result: RunResult | undefined;
      if (handle) result = await runner.run(handle, onOutput, signal);
      else if (dockerfile && !interrupted()) {
        const contextDir = insideCheckout(directory.src, dockerfile.context);
        result = await runner.buildDockerfile(
          {
            contextDir,
            dockerfile: relative(contextDir, insideCheckout(directory.src, dockerfile.file)),
            ...(dockerfile.target ? { target: dockerfile.target } : {}),
            platform: job.platform,
            network: job.spec.network,
            buildArgs: { ...job.spec.env, ...buildEnvironment(claimed) },
            labels,
            resources,
            outDir: directory.out,
          },
          onOutput,
          signal,
        );
      }
      const finishedOn = new Date();
      // The container has exited: it is removed while /out is read and uploaded on the host.
      if (handle) void removeContainer(handle);
      // An interrupted run is settled below, once the container is gone.
      const finished = interrupted() ? undefined : result;
      if (finished && finished.exitCode !== 0) {
        output.note(`script exited with ${finished.exitCode}`);
        outcome = {
          state: 'failed',
          exitCode: finished.exitCode,
          error: `script exited with ${finished.exitCode}`,
        };
      } else if (finished) {
        const built = await stageArtifacts({ outDir: directory.out, globs: job.spec.artifacts });
        const staged = [
          ...built,
          ...(await this.attest(claimed, directory, built, {
            imageDigest: imageDigest!,
            worker: {
              id: this.options.worker.id,
              host: this.options.worker.host,
              version: WORKER_VERSION,
            },
            startedOn: startedOn!,
            finishedOn,
          })),
        ];
        output.note(
          `uploading ${staged.length} artifact(s), ${staged.reduce((sum, file) => sum + file.size, 0)} bytes`,
        );
        uploaded = await uploadArtifacts({
          staged,
          client: storage,
          bucket: this.options.bucket,
          retry: this.options.uploadRetry,
          onRetry: (message) => output.note(message),
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
      const message = error instanceof Error ? error.message : String(error);
      const code = error instanceof CrossdockError ? error.code : undefined;
      // An error caused by being stopped is settled below by the interruption.
      if (interrupted()) log.debug({ err: error }, 'interrupted job errored');
      else if (
        code === 'artifact-invalid' ||
        code === 'secret-missing' ||
        code === 'secret-refused' ||
        code === 'recipe-invalid'
      ) {
        output.note(`error: ${message}`);
        log.info({ err: error, code }, 'job failed');
        outcome = { state: 'failed', error: message };
      } else {
        output.note(`infrastructure failure: ${message}`);
        log.warn({ err: error, code }, 'job attempt hit an infrastructure failure');
        retry = { reason: message, infrastructure: true };
      }
    } finally {
      clearTimeout(timer);
      stopSignal.removeEventListener('abort', onStop);
      if (handle) await removeContainer(handle);
      await checkout?.catch(() => {});
      if (directory)
        await removeRunDirectory(directory.path).catch((error) =>
          log.warn({ err: error }, 'removing the run directory failed'),
        );
    }
    const stop = interrupted();
    if (stop === 'timeout') {
      output.note(`timed out after ${job.spec.timeoutMinutes} min; the container was stopped`);
      outcome = { state: 'timed_out', error: `timed out after ${job.spec.timeoutMinutes} min` };
    } else if (stop === 'cancel') {
      output.note('canceled; the container was stopped');
      outcome = { state: 'canceled' };
    } else if (stop === 'shutdown') {
      output.note(
        `worker ${this.options.worker.id} is shutting down; the job goes back to the queue`,
      );
      retry = { reason: `worker ${this.options.worker.id} shut down`, infrastructure: false };
    } else if (stop === 'lost') {
      output.note('this attempt lost its lease; another attempt runs the job');
      outcome = undefined;
    }
    if (stop) uploaded = await this.discard(uploaded, log);
    // The container and the run directory are gone: what is left is database writes.
    releaseSlot();
    await this.record(fence, output, log, { outcome, retry, uploaded });
  }

  /**
   * The container limits of a job: the recipe's `resources`, else the worker's defaults, capped
   * at the host's CPUs and memory (`note` says when a request was capped).
   */
  private resourcesOf(
    { job }: ClaimedJob,
    note: (message: string) => void,
  ): { cpus?: number; memoryBytes?: number } {
    const { default: defaults, max } = this.options.limits;
    const asked = { ...defaults, ...job.spec.resources };
    const cpus = asked.cpus === undefined ? undefined : Math.min(asked.cpus, max.cpus);
    const memoryBytes =
      asked.memoryBytes === undefined ? undefined : Math.min(asked.memoryBytes, max.memoryBytes);
    if (cpus !== asked.cpus || memoryBytes !== asked.memoryBytes)
      note(
        `resources capped at this worker's ${max.cpus} CPUs and ${Math.floor(max.memoryBytes / 2 ** 20)} MiB`,
      );
    return { cpus, memoryBytes };
  }

  /**
   * Writes the job's SHA256SUMS and provenance (worker/provenance.ts) next to the run's /out and
   * stages them; none for a job without artifacts. Throws `artifact-invalid` when the build's own
   * artifacts use those names.
   */
  private async attest(
    claimed: ClaimedJob,
    directory: RunDirectory,
    built: StagedArtifact[],
    facts: RunFacts,
  ): Promise<StagedArtifact[]> {
    const clash = built.find((artifact) => RESERVED_ARTIFACT_NAMES.includes(artifact.name));
    if (clash)
      throw new CrossdockError(
        'artifact-invalid',
        `artifact ${clash.name}: the name is Crossdock's (it adds ${RESERVED_ARTIFACT_NAMES.join(' and ')} to every job); rename yours or leave it out of the artifact globs`,
      );
    if (built.length === 0) return [];
    const dir = join(directory.path, 'attest');
    await mkdir(dir);
    await writeFile(join(dir, CHECKSUMS_FILE), checksumsFile(built));
    await writeFile(
      join(dir, PROVENANCE_FILE),
      `${JSON.stringify(provenanceStatement(claimed, built, facts), null, 2)}\n`,
    );
    return stageArtifacts({ outDir: dir, globs: [...RESERVED_ARTIFACT_NAMES] });
  }

  /** Persists the log and the attempt's end (outcome, or a retry); discards artifacts if fenced. */
  private async record(
    fence: Fence,
    output: LogWriter,
    log: Logger,
    end: {
      outcome?: JobOutcome;
      retry?: { reason: string; infrastructure: boolean };
      uploaded: UploadedArtifact[];
    },
  ): Promise<void> {
    const { db } = this.deps;
    try {
      await output.close();
      if (end.outcome) {
        const outcome = end.outcome;
        const recorded = await whileDatabaseRecovers(() =>
          this.completions.complete(fence, outcome),
        );
        if (!recorded) {
          log.warn('attempt superseded; its artifacts are discarded');
          await this.discard(end.uploaded, log);
        }
        log.info(
          { state: end.outcome.state, artifacts: end.uploaded.length, recorded },
          'job finished',
        );
      } else if (end.retry) {
        const retry = end.retry;
        const result = await whileDatabaseRecovers(() => retryJob(db, fence, retry));
        log.info({ result: result ?? 'superseded', reason: end.retry.reason }, 'attempt ended');
      }
    } catch (error) {
      log.error(
        { err: error },
        'recording the job outcome failed; its lease will expire and it runs again',
      );
      await this.discard(end.uploaded, log);
    }
  }

  private async discard(uploaded: UploadedArtifact[], log: Logger): Promise<[]> {
    await removeObjects(
      this.deps.storage,
      this.options.bucket,
      uploaded.map((artifact) => artifact.objectKey),
    ).catch((error) => log.warn({ err: error }, 'removing discarded artifacts failed'));
    return [];
  }
}

/**
 * Runs `write` again with backoff (about 30 s in all) while it fails, so that a restart of
 * PostgreSQL does not lose what an attempt records. The writes passed here are fenced and
 * idempotent, so repeating one that did commit is harmless.
 */
function whileDatabaseRecovers<T>(write: () => Promise<T>): Promise<T> {
  return pRetry(write, { retries: 6, minTimeout: 250, factor: 2, maxTimeout: 8000 });
}

/**
 * `path` (relative, from the recipe) inside the checkout `src`; throws `recipe-invalid` for one
 * that leaves it.
 */
function insideCheckout(src: string, path: string): string {
  const resolved = resolvePath(src, path);
  if (resolved !== src && !resolved.startsWith(`${src}/`))
    throw new CrossdockError(
      'recipe-invalid',
      `dockerfile path ${path} leaves the repository; give a path inside it`,
    );
  return resolved;
}

/** `sha256:<hex>` of the Dockerfile's bytes; throws `recipe-invalid` when it is missing. */
async function dockerfileDigest(src: string, dockerfile: DockerfileBuild): Promise<string> {
  const path = insideCheckout(src, dockerfile.file);
  const bytes = await readFile(path).catch(() => {
    throw new CrossdockError(
      'recipe-invalid',
      `the recipe's dockerfile ${dockerfile.file} is not in the repository at this commit`,
    );
  });
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** OCI platform → GNU triplet, as Debian's multiarch names them (wiki.debian.org/Multiarch/Tuples). */
const GNU_TRIPLETS: Record<string, string> = {
  'linux/amd64': 'x86_64-linux-gnu',
  'linux/arm64': 'aarch64-linux-gnu',
  'linux/arm64/v8': 'aarch64-linux-gnu',
  'linux/arm/v7': 'arm-linux-gnueabihf',
  'linux/riscv64': 'riscv64-linux-gnu',
  'linux/386': 'i686-linux-gnu',
  'linux/ppc64le': 'powerpc64le-linux-gnu',
  'linux/s390x': 's390x-linux-gnu',
};

/**
 * The variables every build script sees, as CI services provide them (GitHub Actions' GITHUB_*,
 * Buildkite's BUILDKITE_*): CI=true and CROSSDOCK_* naming the build, job, attempt and commit,
 * the toolchain mode the job runs in, and the GNU triplet of its platform when Debian has one
 * (for `./configure --host=$CROSSDOCK_TRIPLET`, right in every mode).
 */
export function buildEnvironment({ job, build, repo }: ClaimedJob): Record<string, string> {
  const optional = (name: string, value: string | number | null) =>
    value === null ? {} : { [name]: String(value) };
  return {
    CI: 'true',
    CROSSDOCK: 'true',
    CROSSDOCK_REPO: `${repo.owner}/${repo.name}`,
    CROSSDOCK_COMMIT: build.sha,
    CROSSDOCK_REF: build.ref,
    CROSSDOCK_BUILD_ID: String(build.id),
    CROSSDOCK_JOB_ID: String(job.id),
    CROSSDOCK_ATTEMPT: String(job.attempt),
    CROSSDOCK_TARGET: job.target,
    CROSSDOCK_PLATFORM: job.platform,
    CROSSDOCK_TOOLCHAIN: job.toolchain,
    ...optional('CROSSDOCK_TRIPLET', GNU_TRIPLETS[job.platform] ?? null),
    ...optional('CROSSDOCK_PULL_NUMBER', build.pullNumber),
    ...optional('CROSSDOCK_BRANCH', build.branch),
    ...optional('CROSSDOCK_TAG', build.tag),
  };
}
