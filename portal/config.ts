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
import type { OidcOptions } from './auth';

const schema = z.object({
  ...databaseEnv,
  ...storageEnv,
  PORTAL_HOST: z.string().min(1).default('127.0.0.1'),
  PORTAL_PORT: z.coerce.number().int().min(1).max(65_535).default(8080),
  ...portalUrlEnv,
  ...logLevelEnv,
  PORTAL_OIDC_ISSUER: z.string().url().optional(),
  PORTAL_OIDC_CLIENT_ID: z.string().min(1).optional(),
  PORTAL_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  PORTAL_OIDC_SCOPES: z
    .string()
    .regex(/(^| )openid( |$)/, 'must include the scope openid')
    .default('openid profile email'),
  PORTAL_SESSION_HOURS: z.coerce.number().positive().max(8760).default(168),
  PORTAL_DOWNLOADS: z.enum(['stream', 'redirect']).optional(),
  S3_PUBLIC_ENDPOINT: z.string().url().optional(),
  PORTAL_PRESIGN_SECONDS: z.coerce.number().int().min(1).max(604_800).default(300),
  PORTAL_PAGE_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
});

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface PortalConfig {
  databaseUrl: string;
  storage: StorageOptions;
  /** Address the HTTP server binds to. */
  host: string;
  port: number;
  /** Public base URL without a trailing slash, e.g. https://builds.example.com. */
  portalUrl: string;
  logLevel: string;
  /** Sign-in for private repositories; none: only API tokens made by an operator reach them. */
  oidc: OidcOptions | undefined;
  /** How long a browser session lasts, in hours. */
  sessionHours: number;
  /**
   * `stream`: downloads pass through the portal. `redirect`: the portal answers 302 to a
   * presigned URL of the object store, valid for `presignSeconds`, signed for `storagePublicUrl`.
   * Default: `redirect` when S3_PUBLIC_ENDPOINT is set (browsers can reach the store, as with
   * GitHub's release assets or GitLab's object storage), else `stream`.
   */
  downloads: 'stream' | 'redirect';
  /** The object store's URL as browsers reach it (redirect mode); default: the S3 endpoint. */
  storagePublicUrl: string;
  presignSeconds: number;
  /** How long rendered pages are served again, in ms (portal/page-cache.ts); 0: not at all. */
  pageCacheMs: number;
}

/** Reads and validates the portal's configuration from `env`; throws naming each bad variable. */
export function loadPortalConfig(env: NodeJS.ProcessEnv = process.env): PortalConfig {
  const c = parseEnv(schema, env, 'portal');
  if (Boolean(c.PORTAL_OIDC_ISSUER) !== Boolean(c.PORTAL_OIDC_CLIENT_ID))
    throw new Error(
      'portal configuration: set both PORTAL_OIDC_ISSUER and PORTAL_OIDC_CLIENT_ID to enable sign-in, or neither',
    );
  return {
    databaseUrl: c.DATABASE_URL,
    storage: storageOptions(c),
    host: c.PORTAL_HOST,
    port: c.PORTAL_PORT,
    portalUrl: c.PORTAL_URL,
    logLevel: c.LOG_LEVEL,
    oidc:
      c.PORTAL_OIDC_ISSUER && c.PORTAL_OIDC_CLIENT_ID
        ? {
            issuer: c.PORTAL_OIDC_ISSUER,
            clientId: c.PORTAL_OIDC_CLIENT_ID,
            clientSecret: c.PORTAL_OIDC_CLIENT_SECRET,
            scopes: c.PORTAL_OIDC_SCOPES,
            allowHttp: LOOPBACK.has(new URL(c.PORTAL_OIDC_ISSUER).hostname),
          }
        : undefined,
    sessionHours: c.PORTAL_SESSION_HOURS,
    downloads: c.PORTAL_DOWNLOADS ?? (c.S3_PUBLIC_ENDPOINT ? 'redirect' : 'stream'),
    storagePublicUrl: c.S3_PUBLIC_ENDPOINT ?? c.S3_ENDPOINT,
    presignSeconds: c.PORTAL_PRESIGN_SECONDS,
    pageCacheMs: c.PORTAL_PAGE_CACHE_MS,
  };
}
