import { PassThrough, type Readable } from 'node:stream';
import Docker from 'dockerode';
import { CrossdockError } from '../core/errors';

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
   * The sources: resolves to a tar stream whose entries are under `src/`, copied to /src. It is
   * called while the container is being created, so fetching them overlaps with that.
   */
  sources: () => Promise<Readable>;
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
 * A backend that runs build containers. Lifecycle: `create` (container made, sources copied in,
 * nothing running) → `run` (starts it, streams its output to `onOutput` until it exits, or until
 * `signal` aborts and it has been stopped) → `outputs` (a tar stream of /out, entries under
 * `out/`) → `destroy`. `destroy` is safe after a failed `create` or `run` and safe to call twice.
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
  outputs(handle: RunHandle): Promise<Readable>;
  destroy(handle: RunHandle): Promise<void>;
  /** Crossdock's containers on this backend (label `io.crossdock`), running or not. */
  listContainers(): Promise<ListedContainer[]>;
}

export interface RunHandle {
  id: string;
}

/** The Docker Engine runner, over the Engine API (v1.41 on Debian 12's docker.io) via dockerode. */
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
    const sources = spec.sources();
    sources.catch(() => {}); // Awaited below; a failure must not go unhandled meanwhile.
    const container = await this.docker.createContainer({
      Image: spec.image,
      Cmd: ['bash', '--noprofile', '--norc', '-eo', 'pipefail', '-c', spec.script],
      WorkingDir: '/src',
      Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
      Labels: { 'io.crossdock': 'true', ...spec.labels },
      // An anonymous volume: empty, readable by getArchive, removed with the container (v: true).
      Volumes: { '/out': {} },
      Tty: false,
      AttachStdout: true,
      AttachStderr: true,
      StopTimeout: this.stopGraceSeconds,
      HostConfig: {
        // docker-init (tini) as PID 1 passes SIGTERM on to the script; bash as PID 1 ignores it.
        Init: true,
        NetworkMode: spec.network ? 'bridge' : 'none',
        SecurityOpt: ['no-new-privileges'],
        PidsLimit: 4096,
        Privileged: false,
      },
    });
    const handle = { id: container.id };
    try {
      // /src is the working directory (Docker makes it); /out is an anonymous volume.
      await container.putArchive(await sources, { path: '/' });
    } catch (error) {
      await this.destroy(handle);
      throw error;
    }
    return handle;
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

  async outputs(handle: RunHandle): Promise<Readable> {
    return (await this.docker.getContainer(handle.id).getArchive({ path: '/out' })) as Readable;
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
