import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { StorageOptions } from '../../core/storage';

/**
 * Worker processes and their containers, for tests and benchmarks. Imports nothing of the bot
 * or the portal, so that benchmarks can use it.
 */

const ROOT = new URL('../../', import.meta.url).pathname;

/** The S3_* variables of the apps' configuration (core/config.ts) for `storage`. */
export function storageEnvOf(storage: StorageOptions): Record<string, string> {
  return {
    S3_ENDPOINT: storage.endpoint,
    S3_ACCESS_KEY: storage.accessKey,
    S3_SECRET_KEY: storage.secretKey,
    S3_BUCKET: storage.bucket,
  };
}

export type WorkerProcess = ChildProcess & { workerId: string; output: () => string };

/**
 * Starts `worker/main.ts` as its own process with `env` (DATABASE_URL, S3_*, WORKER_*), as
 * worker `<idPrefix>-<hex>`; its output is collected in `output()`.
 */
export function spawnWorker(
  env: Record<string, string>,
  options: { idPrefix?: string; logLevel?: string } = {},
): WorkerProcess {
  const workerId = `${options.idPrefix ?? 'test-worker'}-${randomBytes(4).toString('hex')}`;
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'worker/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      WORKER_ID: workerId,
      LOG_LEVEL: (options.logLevel ?? 'info') as NodeJS.ProcessEnv['LOG_LEVEL'],
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (data) => (output += data));
  child.stderr!.on('data', (data) => (output += data));
  return Object.assign(child, { workerId, output: () => output });
}

/** Sends SIGTERM and waits for the process to exit (SIGKILL after `graceMs`). */
export async function stopProcess(child: ChildProcess, graceMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Ids of the containers labelled with one of `workerIds`, running or not (`docker ps -a`). */
export function containersOf(workerIds: string[]): string[] {
  return workerIds.flatMap((id) =>
    execFileSync('docker', ['ps', '-aq', '--filter', `label=io.crossdock.worker=${id}`], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean),
  );
}

/** Removes every container (running or not) of `workerIds`. */
export function removeContainersOf(workerIds: string[]): void {
  const ids = containersOf(workerIds);
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
}
