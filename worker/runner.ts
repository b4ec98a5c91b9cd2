import { PassThrough } from 'node:stream';
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
  /** Named volumes kept between builds, created on first use (worker/caches.ts). */
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
}

export interface RunHandle {
  id: string;
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
            Source: cache.volume,
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

  async destroy(handle: RunHandle): Promise<void> {
    try {
      await this.docker.getContainer(handle.id).remove({ force: true, v: true });
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status !== 404 && status !== 409) throw error;
    }
  }
}
