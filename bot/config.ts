import { readFileSync } from 'node:fs';
import { z } from 'zod';
import {
  databaseEnv,
  githubAppCredentials,
  githubAppEnv,
  logLevelEnv,
  parseEnv,
  portalUrlEnv,
  storageEnv,
  storageOptions,
} from '../core/config';
import type { StorageOptions } from '../core/storage';
import { parsePermissions, type PermissionsFile } from './slack/permissions';

/** Reads and parses SLACK_PERMISSIONS_FILE; throws naming the file and what is wrong. */
function readPermissions(path: string): PermissionsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `invalid bot configuration: SLACK_PERMISSIONS_FILE ${path} cannot be read (${(error as NodeJS.ErrnoException).code})`,
    );
  }
  try {
    return parsePermissions(text, path);
  } catch (error) {
    throw new Error(
      `invalid bot configuration: SLACK_PERMISSIONS_FILE ${(error as Error).message}`,
    );
  }
}

const jsonRecord = z.string().transform((text, context) => {
  try {
    return z.record(z.string(), z.string()).parse(JSON.parse(text));
  } catch {
    context.addIssue({
      code: 'custom',
      message: 'must be a JSON object such as {"C0123":"acme/widget"}',
    });
    return z.NEVER;
  }
});

/** GitHub (or GitHub Enterprise): unset GITHUB_API_URL means plain git repositories only. */
export const githubEnv = {
  GITHUB_API_URL: z.string().url().optional(),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_CLONE_BASE_URL: z.string().url().default('https://github.com'),
};

export interface GitHubOptions {
  /** REST API base URL: https://api.github.com, or a GitHub Enterprise / test fake's. */
  apiUrl: string;
  /** Token for the API (and nothing else); omitted for public repositories. */
  token?: string;
  /** Clone URLs are `${cloneBaseUrl}/owner/name.git`, e.g. https://github.com. */
  cloneBaseUrl: string;
}

/** GitHub's options from variables parsed with `githubEnv`; undefined when GitHub is not set. */
export function githubOptions(c: {
  GITHUB_API_URL?: string;
  GITHUB_TOKEN?: string;
  GITHUB_CLONE_BASE_URL: string;
}): GitHubOptions | undefined {
  return c.GITHUB_API_URL
    ? { apiUrl: c.GITHUB_API_URL, token: c.GITHUB_TOKEN, cloneBaseUrl: c.GITHUB_CLONE_BASE_URL }
    : undefined;
}

/** The GitHub App's webhook secret (with core/config's githubAppEnv: id and private key). */
const githubWebhookEnv = {
  GITHUB_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
};

export interface GitHubAppOptions {
  appId: number;
  /** PEM text of the App's private key. */
  privateKey: string;
  webhookSecret: string;
  /** Where webhooks are received (default /api/github/webhooks, Probot's). */
  webhookPath?: string;
}

/** The App's options; undefined when it is not configured; throws if only partly configured. */
function githubAppOptions(
  c: Parameters<typeof githubAppCredentials>[0] & {
    GITHUB_WEBHOOK_SECRET?: string;
  },
): GitHubAppOptions | undefined {
  const credentials = githubAppCredentials(c);
  if (!credentials && !c.GITHUB_WEBHOOK_SECRET) return undefined;
  if (!credentials || !c.GITHUB_WEBHOOK_SECRET)
    throw new Error(
      'invalid bot configuration: the GitHub App needs GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE, GITHUB_API_URL and GITHUB_WEBHOOK_SECRET together',
    );
  return {
    appId: credentials.appId,
    privateKey: credentials.privateKey,
    webhookSecret: c.GITHUB_WEBHOOK_SECRET,
  };
}

/** The Slack app's settings. */
export interface SlackSettings {
  /** Verifies requests over HTTP; unused in Socket Mode. */
  signingSecret: string;
  botToken: string;
  botId: string;
  botUserId: string;
  /** Web API base URL, e.g. https://slack.com/api/ (a local fake in tests). */
  apiUrl?: string;
  /** The repository a channel builds when a command names none: channel id → owner/repo. */
  channelRepos: Record<string, string>;
  defaultRepo?: string;
  /** Receive Slack's requests over a WebSocket (Socket Mode) instead of HTTP; needs `appToken`. */
  socketMode?: boolean;
  /** The app-level token (xapp-…) with connections:write, for Socket Mode. */
  appToken?: string;
  /**
   * How long a command's acknowledgement may wait for its answer, in ms (0–2500, default 0:
   * acknowledge at once and answer through response_url). Slack's deadline is 3000 ms.
   */
  ackWaitMs?: number;
  /** Who may build, release and approve what; undefined lets everyone do everything. */
  permissions?: PermissionsFile;
  /**
   * Requests whose work after the acknowledgement runs at once in the follow-up thread (default
   * 4): each holds database connections and calls Slack and the source host; more wait their
   * turn, already acknowledged.
   */
  maxConcurrentRequests?: number;
}

const schema = z.object({
  ...databaseEnv,
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_SOCKET_MODE: z
    .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true' || value === '1'),
  SLACK_APP_TOKEN: z.string().startsWith('xapp-', 'must be an app-level token (xapp-…)').optional(),
  SLACK_ACK_WAIT_MS: z.coerce.number().int().min(0).max(2500).default(0),
  SLACK_PERMISSIONS_FILE: z.string().min(1).optional(),
  SLACK_BOT_TOKEN: z.string().min(1),
  SLACK_BOT_ID: z.string().min(1),
  SLACK_BOT_USER_ID: z.string().min(1),
  SLACK_API_URL: z.string().url().optional(),
  SLACK_CHANNEL_REPOS: jsonRecord.default({}),
  CROSSDOCK_DEFAULT_REPO: z
    .string()
    .regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/repo')
    .optional(),
  ...githubEnv,
  ...githubAppEnv,
  ...githubWebhookEnv,
  // The object store is needed only to attach artifacts to GitHub releases.
  ...z.object(storageEnv).partial().shape,
  GIT_CACHE_DIR: z.string().default('/var/tmp/crossdock-bot/git'),
  ...portalUrlEnv,
  BOT_HOST: z.string().default('127.0.0.1'),
  BOT_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  ...logLevelEnv,
});

/** The bot's options, as the bot's server and front ends take them. */
export interface BotConfig {
  databaseUrl: string;
  slack: SlackSettings;
  /** Set when GitHub (or a GitHub Enterprise server) is where repositories live. */
  github?: GitHubOptions;
  /** Set when the GitHub App receives webhooks (pull requests, comments, tags, releases). */
  githubApp?: GitHubAppOptions;
  /** Where artifacts are read from, to attach them to GitHub releases (needed with the App). */
  storage?: StorageOptions;
  gitCacheDir: string;
  portalUrl: string;
  host: string;
  port: number;
  logLevel: string;
}

/** Reads and validates the bot's configuration from `env`; throws naming each bad variable. */
export function loadBotConfig(env: NodeJS.ProcessEnv = process.env): BotConfig {
  const c = parseEnv(schema, env, 'bot');
  if (c.SLACK_SOCKET_MODE ? !c.SLACK_APP_TOKEN : !c.SLACK_SIGNING_SECRET)
    throw new Error(
      c.SLACK_SOCKET_MODE
        ? 'invalid bot configuration: SLACK_SOCKET_MODE needs SLACK_APP_TOKEN (an app-level token, xapp-…, with connections:write)'
        : 'invalid bot configuration: SLACK_SIGNING_SECRET is required (or set SLACK_SOCKET_MODE=true with SLACK_APP_TOKEN)',
    );
  const { S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY } = c;
  return {
    databaseUrl: c.DATABASE_URL,
    slack: {
      signingSecret: c.SLACK_SIGNING_SECRET ?? '',
      botToken: c.SLACK_BOT_TOKEN,
      botId: c.SLACK_BOT_ID,
      botUserId: c.SLACK_BOT_USER_ID,
      apiUrl: c.SLACK_API_URL,
      channelRepos: c.SLACK_CHANNEL_REPOS,
      defaultRepo: c.CROSSDOCK_DEFAULT_REPO,
      socketMode: c.SLACK_SOCKET_MODE,
      appToken: c.SLACK_APP_TOKEN,
      ackWaitMs: c.SLACK_ACK_WAIT_MS,
      permissions: c.SLACK_PERMISSIONS_FILE ? readPermissions(c.SLACK_PERMISSIONS_FILE) : undefined,
    },
    github: githubOptions(c),
    githubApp: githubAppOptions(c),
    storage:
      S3_ENDPOINT && S3_ACCESS_KEY && S3_SECRET_KEY
        ? storageOptions({
            S3_ENDPOINT,
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            S3_BUCKET: c.S3_BUCKET ?? 'crossdock',
          })
        : undefined,
    gitCacheDir: c.GIT_CACHE_DIR,
    portalUrl: c.PORTAL_URL,
    host: c.BOT_HOST,
    port: c.BOT_PORT,
    logLevel: c.LOG_LEVEL,
  };
}
