import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { StorageOptions } from './storage';

/** Variables every app shares: where PostgreSQL and the S3 object store are, and the log level. */
export const databaseEnv = { DATABASE_URL: z.string().url() };
export const storageEnv = {
  S3_ENDPOINT: z.string().url(),
  S3_ACCESS_KEY: z.string().min(1),
  S3_SECRET_KEY: z.string().min(1),
  S3_BUCKET: z.string().min(3).default('crossdock'),
};
/** The S3 store's options from variables parsed with `storageEnv`. */
export function storageOptions(c: {
  S3_ENDPOINT: string;
  S3_ACCESS_KEY: string;
  S3_SECRET_KEY: string;
  S3_BUCKET: string;
}): StorageOptions {
  return {
    endpoint: c.S3_ENDPOINT,
    accessKey: c.S3_ACCESS_KEY,
    secretKey: c.S3_SECRET_KEY,
    bucket: c.S3_BUCKET,
  };
}
/** The portal's public base URL, as links in pages, Slack and the CLI show it; no trailing slash. */
export const portalUrlEnv = {
  PORTAL_URL: z
    .string()
    .url()
    .refine((value) => /^https?:$/.test(new URL(value).protocol), 'must be an http(s) URL')
    .default('http://127.0.0.1:8080')
    .transform((value) => value.replace(/\/+$/, '')),
};
/**
 * A GitHub App's id and private key (PEM file), as both the bot (webhooks, reports) and the
 * workers (installation tokens to clone private repositories) use them; with GITHUB_API_URL.
 */
export const githubAppEnv = {
  GITHUB_API_URL: z.string().url().optional(),
  GITHUB_APP_ID: z.coerce.number().int().positive().optional(),
  /** Path of the App's private key (PEM), as GitHub offers it for download. */
  GITHUB_APP_PRIVATE_KEY_FILE: z.string().min(1).optional(),
};

/**
 * The App's id, private key and API URL from variables parsed with `githubAppEnv`; undefined
 * when none is set. Throws naming what is missing when only some are set.
 */
export function githubAppCredentials(c: {
  GITHUB_API_URL?: string;
  GITHUB_APP_ID?: number;
  GITHUB_APP_PRIVATE_KEY_FILE?: string;
}): { apiUrl: string; appId: number; privateKey: string } | undefined {
  if (c.GITHUB_APP_ID === undefined && c.GITHUB_APP_PRIVATE_KEY_FILE === undefined)
    return undefined;
  if (c.GITHUB_APP_ID === undefined || !c.GITHUB_APP_PRIVATE_KEY_FILE || !c.GITHUB_API_URL)
    throw new Error(
      'invalid GitHub App configuration: set GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_API_URL together (or none of them)',
    );
  return {
    apiUrl: c.GITHUB_API_URL,
    appId: c.GITHUB_APP_ID,
    privateKey: readFileSync(c.GITHUB_APP_PRIVATE_KEY_FILE, 'utf8'),
  };
}

export const logLevelEnv = {
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
};

/**
 * Validates `env` against `schema`. Throws an Error listing every bad variable, e.g.
 * "invalid worker configuration:\n  DATABASE_URL: Invalid URL".
 */
export function parseEnv<T extends z.ZodType>(
  schema: T,
  env: NodeJS.ProcessEnv,
  app: string,
): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new Error(`invalid ${app} configuration:\n  ${problems.join('\n  ')}`);
  }
  return parsed.data;
}

/** The `KEY=value` lines of an env file, such as the one deploy/setup.sh writes; {} if missing. */
export function readEnvFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  return Object.fromEntries(
    text
      .split('\n')
      .filter((line) => /^[A-Z0-9_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/**
 * What the command-line tools read (the crossdock CLI, `npm run cleanup`): `env` over the local
 * stack's env file, $CROSSDOCK_STATE_DIR/crossdock.env (default /var/lib/crossdock), which
 * deploy/setup.sh writes.
 */
export function localStackEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const file = `${env.CROSSDOCK_STATE_DIR ?? '/var/lib/crossdock'}/crossdock.env`;
  return { ...readEnvFile(file), ...env };
}
