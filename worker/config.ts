import { existsSync } from 'node:fs';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { z } from 'zod';
import {
  databaseEnv,
  githubAppCredentials,
  githubAppEnv,
  logLevelEnv,
  parseEnv,
  readEnvFile,
  storageEnv,
  storageOptions,
} from '../core/config';
import { memoryBytes, memorySize } from '../core/recipe';
import type { StorageOptions } from '../core/storage';
import type { RetryPolicy } from './artifacts';
import { emulatedPlatforms, hostPlatform } from './platforms';

/** A comma-separated list, blanks dropped. */
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
const platformList = list.pipe(
  z.array(
    z
      .string()
      .regex(
        /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/,
        'must list OCI platforms such as linux/arm64',
      ),
  ),
);

const schema = z.object({
  ...databaseEnv,
  ...storageEnv,
  WORKER_ID: z.string().min(1).optional(),
  /** OCI platforms this worker runs natively; default: the host's. */
  WORKER_PLATFORMS: platformList.optional(),
  /** OCI platforms it runs by QEMU emulation; default: detected from binfmt_misc. */
  WORKER_EMULATED_PLATFORMS: platformList.optional(),
  WORKER_LABELS: list.pipe(z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i))).default([]),
  WORKER_SLOTS: z.coerce.number().int().min(1).max(64).default(1),
  WORKER_HEARTBEAT_SECONDS: z.coerce.number().min(0.2).max(300).default(5),
  WORKER_POLL_SECONDS: z.coerce.number().positive().default(2),
  WORKER_WORK_DIR: z.string().default('/var/tmp/crossdock-worker'),
  WORKER_STOP_GRACE_SECONDS: z.coerce.number().int().min(0).max(600).default(10),
  WORKER_UPLOAD_RETRIES: z.coerce.number().int().min(0).max(20).default(4),
  WORKER_UPLOAD_RETRY_DELAY_MS: z.coerce.number().int().min(1).default(1000),
  /** KEY=value lines: secrets jobs may ask for by name (recipe `secrets:`); masked in logs. */
  WORKER_SECRETS_FILE: z.string().optional(),
  /** CPUs a job's container may use when its recipe sets none; default: all of the host's. */
  WORKER_JOB_CPUS: z.coerce.number().min(0.01).optional(),
  /** Memory a job's container may use when its recipe sets none (`4g`, `512m`); default: the host's memory over WORKER_SLOTS. */
  WORKER_JOB_MEMORY: memorySize.optional(),
  DOCKER_SOCKET: z.string().default('/var/run/docker.sock'),
  /** The GitHub App whose installation tokens clone private repositories (optional). */
  ...githubAppEnv,
  ...logLevelEnv,
});

export interface WorkerConfig {
  databaseUrl: string;
  storage: StorageOptions;
  workerId: string;
  platforms: string[];
  emulatedPlatforms: string[];
  labels: string[];
  slots: number;
  /** Seconds between heartbeats; a lease lasts 1.5 of them. */
  heartbeatSeconds: number;
  pollSeconds: number;
  workDir: string;
  /** Seconds between SIGTERM and SIGKILL when a build container is stopped. */
  stopGraceSeconds: number;
  uploadRetry: RetryPolicy;
  secrets: Record<string, string>;
  /** Container limits: defaults for jobs whose recipe sets none, and the host's capacity. */
  limits: {
    default: { cpus: number; memoryBytes: number };
    max: { cpus: number; memoryBytes: number };
  };
  dockerSocket: string;
  /** The GitHub App that mints clone tokens for repositories it is installed on. */
  githubApp?: { apiUrl: string; appId: number; privateKey: string };
  logLevel: string;
}

/**
 * Reads and validates the worker's configuration from `env`; throws naming each bad variable.
 * docs/configuration.md lists the variables.
 */
export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const c = parseEnv(schema, env, 'worker');
  const platforms = c.WORKER_PLATFORMS?.length ? c.WORKER_PLATFORMS : [hostPlatform()];
  if (c.WORKER_SECRETS_FILE && !existsSync(c.WORKER_SECRETS_FILE))
    throw new Error(
      `invalid worker configuration:\n  WORKER_SECRETS_FILE: ${c.WORKER_SECRETS_FILE} does not exist; create it (KEY=value lines) or unset the variable`,
    );
  return {
    databaseUrl: c.DATABASE_URL,
    storage: storageOptions(c),
    workerId: c.WORKER_ID ?? `${hostname()}-${process.pid}`,
    platforms,
    emulatedPlatforms: c.WORKER_EMULATED_PLATFORMS ?? emulatedPlatforms(platforms),
    labels: c.WORKER_LABELS,
    slots: c.WORKER_SLOTS,
    heartbeatSeconds: c.WORKER_HEARTBEAT_SECONDS,
    pollSeconds: c.WORKER_POLL_SECONDS,
    workDir: c.WORKER_WORK_DIR,
    stopGraceSeconds: c.WORKER_STOP_GRACE_SECONDS,
    uploadRetry: { retries: c.WORKER_UPLOAD_RETRIES, minDelayMs: c.WORKER_UPLOAD_RETRY_DELAY_MS },
    secrets: c.WORKER_SECRETS_FILE ? readEnvFile(c.WORKER_SECRETS_FILE) : {},
    limits: {
      default: {
        cpus: Math.min(c.WORKER_JOB_CPUS ?? availableParallelism(), availableParallelism()),
        memoryBytes: Math.min(
          c.WORKER_JOB_MEMORY
            ? memoryBytes(c.WORKER_JOB_MEMORY)
            : Math.floor(totalmem() / c.WORKER_SLOTS),
          totalmem(),
        ),
      },
      max: { cpus: availableParallelism(), memoryBytes: totalmem() },
    },
    dockerSocket: c.DOCKER_SOCKET,
    githubApp: githubAppCredentials(c),
    logLevel: c.LOG_LEVEL,
  };
}
