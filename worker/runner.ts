import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, symlink } from 'node:fs/promises';
import { dirname, normalize, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import Docker from 'dockerode';
import { CrossdockError } from '../core/errors';
import type { CacheMount } from './caches';

/** What a build container runs. */
export interface RunSpec {
  image: string;
  /** Shell script run by `bash --noprofile --norc -eo pipefail -c` in /src. */
  script: string;
  env: Record<string, string>;
  network: boolean;
  /** Labels put on the container, e.g. io.crossdock.job. */
  labels: Record<string, string>;
  /**
   * Absolute paths of existing directories on the Docker host, bound read-write at /src (the
   * sources, the working directory) and /out (empty; the script's results, read there after the
   * run). The caller owns them: it fills `src` before `run` and removes both after `destroy`.
   */
  mounts: { src: string; out: string };
  /** Named volumes kept between builds, created on first use, or scratch ones (worker/caches.ts). */
  caches: CacheMount[];
  /** Limits: CPUs (fractions allowed) and memory in bytes (no swap beyond it); none when unset. */
  resources: { cpus?: number; memoryBytes?: number };
}

export interface RunResult {
  exitCode: number;
  /** The run was stopped through its abort signal (SIGTERM, then SIGKILL after the grace). */
  stopped: boolean;
}

/** A build container as listed by the backend, with its labels. */
export interface ListedContainer {
  id: string;
  labels: Record<string, string>;
}

/**
 * A backend that runs build containers. Lifecycle: `create` (container made with the spec's host
 * directories bound at /src and /out, nothing running) → `run` (starts it, streams its output to
 * `onOutput` until it exits, or until `signal` aborts and it has been stopped; when `run` returns,
 * no process of the container is left, so /out can be read on the host) → `destroy`. `destroy`
 * is safe after a failed `create` or `run` and safe to call twice.
 */
export interface Runner {
  imageDigest(image: string): Promise<string>;
  /** The builder images present: every `name:tag` → its image id (sha256:…). */
  images(): Promise<Record<string, string>>;
  create(spec: RunSpec): Promise<RunHandle>;
  run(
    handle: RunHandle,
    onOutput: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<RunResult>;
  destroy(handle: RunHandle): Promise<void>;
  /** Crossdock's containers on this backend (label `io.crossdock`), running or not. */
  listContainers(): Promise<ListedContainer[]>;
  /**
   * Builds a Dockerfile, streaming the build's output to `onOutput`, then copies the final
   * stage's /out into `spec.outDir` and removes the image. A failed step gives a non-zero
   * `exitCode` (the build's error is in the output); `signal` stops the build.
   */
  buildDockerfile(
    spec: DockerfileSpec,
    onOutput: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<RunResult>;
}

export interface RunHandle {
  id: string;
}

/** A Dockerfile build (recipe `dockerfile:`): what `buildDockerfile` builds and exports. */
export interface DockerfileSpec {
  /** Host directory sent as the build context. */
  contextDir: string;
  /** The Dockerfile's path relative to the context. */
  dockerfile: string;
  /** The stage to build; the last one when unset. */
  target?: string;
  /** OCI platform to build for; FROM images must be present locally for it. */
  platform: string;
  network: boolean;
  /** Build arguments (ARG), e.g. the CROSSDOCK_* variables. */
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  resources: { cpus?: number; memoryBytes?: number };
  /** Host directory that receives the final stage's /out (regular files, directories, symlinks). */
  outDir: string;
}

/**
 * The capabilities a build keeps (capabilities(7)); Docker's default set loses MKNOD, NET_RAW,
 * NET_BIND_SERVICE, SYS_CHROOT, SETPCAP, SETFCAP and AUDIT_WRITE. What is left lets a script
 * running as root own, chmod and write its files (`make install`, tar), switch users and signal
 * its own processes.
 */
export const BUILD_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
] as const;

/**
 * The Docker Engine runner, over the Engine API (v1.41 on Debian 12's docker.io) via dockerode.
 * The daemon must run on the same host as the worker: /src and /out are bind mounts of the
 * worker's directories (docs/decisions/0003-run-directories-by-bind-mount.md).
 */
export class DockerRunner implements Runner {
  /**
   * @param stopGraceSeconds seconds between SIGTERM and SIGKILL when a container is stopped.
   */
  constructor(
    private readonly docker: Docker,
    private readonly stopGraceSeconds = 10,
  ) {}

  async images(): Promise<Record<string, string>> {
    const images: Record<string, string> = {};
    for (const image of await this.docker.listImages())
      for (const tag of image.RepoTags ?? []) if (tag !== '<none>:<none>') images[tag] = image.Id;
    return images;
  }

  async listContainers(): Promise<ListedContainer[]> {
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: ['io.crossdock'] },
    });
    return containers.map((container) => ({ id: container.Id, labels: container.Labels }));
  }

  /** The image id (sha256:…) of a local image; throws `infrastructure` if it is missing or the daemon fails. */
  async imageDigest(image: string): Promise<string> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return info.Id;
    } catch (error) {
      const missing = (error as { statusCode?: number }).statusCode === 404;
      throw new CrossdockError(
        'infrastructure',
        missing
          ? `builder image ${image} is not on this worker; build it with deploy/builders/build.sh`
          : `the Docker daemon failed to inspect ${image}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }

  async create(spec: RunSpec): Promise<RunHandle> {
    const container = await this.docker.createContainer({
      Image: spec.image,
      Cmd: ['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c', spec.script],
      WorkingDir: '/src',
      Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
      Labels: { 'io.crossdock': 'true', ...spec.labels },
      Tty: false,
      AttachStdout: true,
      AttachStderr: true,
      StopTimeout: this.stopGraceSeconds,
      HostConfig: {
        // docker-init (tini) as PID 1 passes SIGTERM on to the script; bash as PID 1 ignores it.
        Init: true,
        NetworkMode: spec.network ? 'bridge' : 'none',
        SecurityOpt: ['no-new-privileges'],
        CapDrop: ['ALL'],
        CapAdd: [...BUILD_CAPABILITIES],
        PidsLimit: 4096,
        Privileged: false,
        // Mounts, not Binds: a missing source is an error here, never created by the daemon.
        Mounts: [
          { Type: 'bind', Source: spec.mounts.src, Target: '/src' },
          { Type: 'bind', Source: spec.mounts.out, Target: '/out' },
          ...spec.caches.map((cache) => ({
            Type: 'volume' as const,
            // An empty source is an anonymous volume, removed with the container (remove with v).
            Source: cache.volume ?? '',
            Target: cache.path,
            VolumeOptions: {
              NoCopy: false,
              Labels: { 'io.crossdock': 'true', ...cache.labels },
              DriverConfig: { Name: 'local', Options: {} },
            },
          })),
        ],
        ...(spec.resources.cpus ? { NanoCpus: Math.round(spec.resources.cpus * 1e9) } : {}),
        ...(spec.resources.memoryBytes
          ? { Memory: spec.resources.memoryBytes, MemorySwap: spec.resources.memoryBytes }
          : {}),
      },
    });
    return { id: container.id };
  }

  async run(
    handle: RunHandle,
    onOutput: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<RunResult> {
    const container = this.docker.getContainer(handle.id);
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const output = new PassThrough();
    output.on('data', onOutput);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    this.docker.modem.demuxStream(stream, output, output);
    await container.start();
    let stopped = false;
    const stop = () => {
      stopped = true;
      container.stop({ t: this.stopGraceSeconds }).catch(() => {});
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    try {
      const result = (await container.wait()) as { StatusCode: number };
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000))]);
      return { exitCode: result.StatusCode, stopped };
    } finally {
      signal.removeEventListener('abort', stop);
      output.end();
    }
  }

  /**
   * Dockerfile builds use the Engine's classic builder (POST /build; Debian 12's docker.io has no
   * buildx): RUN steps get Docker's default capabilities rather than BUILD_CAPABILITIES, so the
   * recipe refuses secrets and caches for them (core/recipe.ts).
   */
  async buildDockerfile(
    spec: DockerfileSpec,
    onOutput: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<RunResult> {
    const tag = `crossdock-build/${randomBytes(8).toString('hex')}:latest`;
    const tar = spawn('tar', ['-C', spec.contextDir, '-c', '.'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const stream = await this.docker.buildImage(tar.stdout, {
      t: tag,
      dockerfile: spec.dockerfile,
      ...(spec.target ? { target: spec.target } : {}),
      platform: spec.platform,
      networkmode: spec.network ? 'bridge' : 'none',
      buildargs: spec.buildArgs,
      labels: { 'io.crossdock': 'true', ...spec.labels },
      pull: false,
      // No layer cache: a step's cached result could come from another (untrusted) build.
      nocache: true,
      rm: true,
      forcerm: true,
      ...(spec.resources.memoryBytes
        ? { memory: spec.resources.memoryBytes, memswap: spec.resources.memoryBytes }
        : {}),
      ...(spec.resources.cpus
        ? { cpuperiod: 100_000, cpuquota: Math.round(spec.resources.cpus * 100_000) }
        : {}),
    });
    let stopped = false;
    // Closing the connection makes the daemon cancel the build.
    const stop = () => {
      stopped = true;
      (stream as unknown as { destroy(): void }).destroy();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    let failed: string | undefined;
    try {
      await new Promise<void>((resolve) => {
        this.docker.modem.followProgress(
          stream,
          (error) => {
            if (error && !stopped) failed = error.message;
            resolve();
          },
          (event: { stream?: string; error?: string }) => {
            if (event.stream) onOutput(Buffer.from(event.stream));
            if (event.error) failed = event.error;
          },
        );
      });
    } finally {
      signal.removeEventListener('abort', stop);
      tar.kill();
    }
    if (stopped) return { exitCode: 137, stopped: true };
    if (failed) {
      onOutput(Buffer.from(`${failed}\n`));
      await this.removeImage(tag);
      return { exitCode: 1, stopped: false };
    }
    try {
      await this.exportOut(tag, spec);
    } finally {
      await this.removeImage(tag);
    }
    return { exitCode: 0, stopped: false };
  }

  /** Copies /out of image `tag` into `spec.outDir` through a created (never started) container. */
  private async exportOut(tag: string, spec: DockerfileSpec): Promise<void> {
    const container = await this.docker.createContainer({
      Image: tag,
      Cmd: ['true'],
      Labels: { 'io.crossdock': 'true', ...spec.labels },
      HostConfig: { NetworkMode: 'none' },
    });
    try {
      let archive: NodeJS.ReadableStream;
      try {
        archive = await container.getArchive({ path: '/out/.' });
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) return; // no /out: nothing built
        throw error;
      }
      await extractOut(archive, spec.outDir);
    } finally {
      await container.remove({ force: true, v: true }).catch(() => {});
    }
  }

  private async removeImage(tag: string): Promise<void> {
    await this.docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => {});
  }

  async destroy(handle: RunHandle): Promise<void> {
    try {
      await this.docker.getContainer(handle.id).remove({ force: true, v: true });
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 409) throw error;
    }
  }
}

/**
 * Writes the regular files, directories and symbolic links of a tar stream (the Engine's archive
 * of /out, rooted at `./`) under `outDir`; stageArtifacts then refuses links that artifacts
 * match, as for script builds. Entries whose path leaves `outDir` are refused; other types
 * (devices, fifos) are skipped.
 */
async function extractOut(archive: NodeJS.ReadableStream, outDir: string): Promise<void> {
  const extract = tarStream.extract();
  const done = pipeline(archive as NodeJS.ReadableStream & Readable, extract);
  for await (const entry of extract) {
    const name = normalize(entry.header.name).replace(/^(\.\/)+/, '');
    const path = resolve(outDir, name);
    if (name === '.' || name === '') {
      entry.resume();
      continue;
    }
    if (!path.startsWith(`${outDir}/`))
      throw new CrossdockError(
        'artifact-invalid',
        `the image's /out has an entry ${entry.header.name} outside /out`,
      );
    if (entry.header.type === 'directory') await mkdir(path, { recursive: true });
    else if (entry.header.type === 'file') {
      await mkdir(dirname(path), { recursive: true });
      await pipeline(entry, createWriteStream(path, { mode: 0o644 }));
      continue;
    } else if (entry.header.type === 'symlink') {
      await mkdir(dirname(path), { recursive: true });
      await symlink(entry.header.linkname ?? '', path);
    }
    entry.resume();
  }
  await done;
}
