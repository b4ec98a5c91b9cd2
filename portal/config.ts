import { z } from 'zod';
import { databaseEnv, logLevelEnv, parseEnv, storageEnv } from '../core/config';
import type { StorageOptions } from '../core/storage';

const schema = z.object({
  ...databaseEnv,
  ...storageEnv,
  PORTAL_HOST: z.string().min(1).default('127.0.0.1'),
  PORTAL_PORT: z.coerce.number().int().min(1).max(65_535).default(8080),
  /** The portal's public base URL, as links in pages, Slack and GitHub show it. */
  PORTAL_URL: z
    .string()
    .url()
    .refine((value) => /^https?:$/.test(new URL(value).protocol), 'must be an http(s) URL')
    .default('http://127.0.0.1:8080'),
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
    storage: {
      endpoint: c.S3_ENDPOINT,
      accessKey: c.S3_ACCESS_KEY,
      secretKey: c.S3_SECRET_KEY,
      bucket: c.S3_BUCKET,
    },
    host: c.PORTAL_HOST,
    port: c.PORTAL_PORT,
    portalUrl: c.PORTAL_URL.replace(/\/+$/, ''),
    logLevel: c.LOG_LEVEL,
  };
}
