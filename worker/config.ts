import { hostname } from 'node:os';
import { z } from 'zod';
import { databaseEnv, logLevelEnv, parseEnv, storageEnv, storageOptions } from '../core/config';
import type { StorageOptions } from '../core/storage';

const schema = z.object({
  ...databaseEnv,
  ...storageEnv,
  WORKER_ID: z.string().min(1).optional(),
  /** Comma-separated OCI platforms this worker runs containers for. */
  WORKER_PLATFORMS: z.string().default('linux/amd64'),
  WORKER_SLOTS: z.coerce.number().int().min(1).max(64).default(1),
  WORKER_HEARTBEAT_SECONDS: z.coerce.number().positive().default(5),
  WORKER_POLL_SECONDS: z.coerce.number().positive().default(2),
  WORKER_WORK_DIR: z.string().default('/var/tmp/crossdock-worker'),
  DOCKER_SOCKET: z.string().default('/var/run/docker.sock'),
  ...logLevelEnv,
});

export interface WorkerConfig {
  databaseUrl: string;
  storage: StorageOptions;
  workerId: string;
  platforms: string[];
  slots: number;
  /** Seconds between heartbeats; a lease lasts two of them. */
  heartbeatSeconds: number;
  pollSeconds: number;
  workDir: string;
  dockerSocket: string;
  logLevel: string;
}

/** Reads and validates the worker's configuration from `env`; throws naming each bad variable. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const c = parseEnv(schema, env, 'worker');
  const platforms = c.WORKER_PLATFORMS.split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (platforms.length === 0)
    throw new Error('WORKER_PLATFORMS: name at least one platform, e.g. linux/amd64');
  return {
    databaseUrl: c.DATABASE_URL,
    storage: storageOptions(c),
    workerId: c.WORKER_ID ?? `${hostname()}-${process.pid}`,
    platforms,
    slots: c.WORKER_SLOTS,
    heartbeatSeconds: c.WORKER_HEARTBEAT_SECONDS,
    pollSeconds: c.WORKER_POLL_SECONDS,
    workDir: c.WORKER_WORK_DIR,
    dockerSocket: c.DOCKER_SOCKET,
    logLevel: c.LOG_LEVEL,
  };
}
