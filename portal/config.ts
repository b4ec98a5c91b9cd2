import { z } from 'zod';
import {
  databaseEnv,
  logLevelEnv,
  parseEnv,
  portalUrlEnv,
  storageEnv,
  storageOptions,
} from '../core/config';
import type { StorageOptions } from '../core/storage';

const schema = z.object({
  ...databaseEnv,
  ...storageEnv,
  PORTAL_HOST: z.string().min(1).default('127.0.0.1'),
  PORTAL_PORT: z.coerce.number().int().min(1).max(65_535).default(8080),
  ...portalUrlEnv,
  ...logLevelEnv,
});

export interface PortalConfig {
  databaseUrl: string;
  storage: StorageOptions;
  /** Address the HTTP server binds to. */
  host: string;
  port: number;
  /** Public base URL without a trailing slash, e.g. https://builds.example.com. */
  portalUrl: string;
  logLevel: string;
}

/** Reads and validates the portal's configuration from `env`; throws naming each bad variable. */
export function loadPortalConfig(env: NodeJS.ProcessEnv = process.env): PortalConfig {
  const c = parseEnv(schema, env, 'portal');
  return {
    databaseUrl: c.DATABASE_URL,
    storage: storageOptions(c),
    host: c.PORTAL_HOST,
    port: c.PORTAL_PORT,
    portalUrl: c.PORTAL_URL,
    logLevel: c.LOG_LEVEL,
  };
}
