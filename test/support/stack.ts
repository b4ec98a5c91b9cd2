import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../core/logger';
import type { SlackSettings } from '../../bot/config';
import { startBotServer } from '../../bot/server';
import { createPortalApp } from '../../portal/app';
import { startFakeGitHub } from '../fakes/github-api';
import { startFakeSlackApi } from '../fakes/slack-api';
import { createTestBucket, createTestDatabase } from './services';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);
export const SIGNING_SECRET = 'test-signing-secret-1f2e3d';
export const GITHUB_TOKEN = 'ghs_testtoken';
export const CHANNEL = 'C0BUILDS';
/** A private channel the bot was not invited to: the fake Slack refuses posts there. */
export const PRIVATE_CHANNEL = 'C0PRIVATE';

/**
 * Makes bare repository `<root>/<owner>/<name>.git` from Debian's GNU hello source with
 * deploy/examples/hello/make-repo.sh, using `recipe` as its .crossdock.yml (the example's by
 * default). Returns the head shas of the main branch, of pull request 123 (its branch `greeting`
 * is in the repository) and of pull request 124 (a fork's: on no branch).
 */
export function makeHelloRepo(root: string, owner: string, name: string, recipe?: string) {
  mkdirSync(join(root, owner), { recursive: true });
  const args = [join(ROOT, 'deploy/examples/hello/make-repo.sh'), join(root, owner, `${name}.git`)];
  if (recipe) args.push(recipe);
  const out = execFileSync('bash', args, { encoding: 'utf8' });
  const [, main, pr123, pr124] =
    /main=([0-9a-f]{40}) pr123=([0-9a-f]{40}) pr124=([0-9a-f]{40})/.exec(out)!;
  return { main: main!, pr123: pr123!, pr124: pr124! };
}

import { spawnWorker, stopProcess, storageEnvOf } from './processes';

/**
 * The whole stack for end-to-end tests: a fresh database and bucket, fakes of GitHub (over real
 * git repositories) and of Slack's Web API, the portal and the bot in this process, and one
 * worker process (with `workerSlots` slots, 1 by default). `close()` stops everything and removes what it made.
 */
export async function startStack(
  options: {
    workerSlots?: number;
    /** Slack settings over the defaults (permissions, ackWaitMs, Socket Mode). */
    slack?: Partial<SlackSettings>;
    /** The fake Slack's user groups: group id → member user ids. */
    slackUserGroups?: Record<string, string[]>;
  } = {},
) {
  const database = await createTestDatabase();
  const bucket = await createTestBucket();
  const workDir = mkdtempSync(join(tmpdir(), 'crossdock-e2e-'));
  const gitRoot = join(workDir, 'github');
  const github = await startFakeGitHub({ root: gitRoot, token: GITHUB_TOKEN });
  const slack = await startFakeSlackApi({
    userGroups: options.slackUserGroups,
    refusedChannels: [PRIVATE_CHANNEL],
  });
  const log = createLogger({ name: 'e2e', level: 'warn' });

  // The portal's links need its URL, known once it listens: route to the app made after that.
  let portalFetch: (request: Request) => Response | Promise<Response> = () =>
    new Response('starting', { status: 503 });
  const portal = serve({
    fetch: (request) => portalFetch(request),
    hostname: '127.0.0.1',
    port: 0,
  });
  await new Promise((resolve) => portal.once('listening', resolve));
  const portalUrl = `http://127.0.0.1:${(portal.address() as AddressInfo).port}`;
  const portalApp = createPortalApp({
    db: database.db,
    storage: bucket.client,
    bucket: bucket.storage.bucket,
    portalUrl,
    log,
  });
  portalFetch = (request) => portalApp.fetch(request);

  const bot = await startBotServer(
    {
      slack: {
        signingSecret: SIGNING_SECRET,
        botToken: 'xoxb-test-token',
        botId: 'B0CROSSDOCK',
        botUserId: 'U0CROSSDOCK',
        apiUrl: slack.apiUrl,
        channelRepos: { [CHANNEL]: 'acme/hello' },
        ...options.slack,
      },
      github: { apiUrl: github.url, token: GITHUB_TOKEN, cloneBaseUrl: github.cloneBaseUrl },
      gitCacheDir: join(workDir, 'bot-git'),
      portalUrl,
      host: '127.0.0.1',
      port: 0,
      databaseUrl: database.url,
      logLevel: 'warn',
    },
    { db: database.db, log },
  );
  const worker = spawnWorker({
    DATABASE_URL: database.url,
    ...storageEnvOf(bucket.storage),
    WORKER_PLATFORMS: 'linux/amd64',
    WORKER_HEARTBEAT_SECONDS: '2',
    WORKER_POLL_SECONDS: '1',
    WORKER_WORK_DIR: join(workDir, 'worker'),
    WORKER_SLOTS: String(options.workerSlots ?? 1),
  });

  return {
    db: database.db,
    databaseUrl: database.url,
    bucket,
    github,
    slack,
    gitRoot,
    portalUrl,
    slackUrl: `${bot.url}/slack/events`,
    botUrl: bot.url,
    worker,
    /**
     * Runs the `crossdock` CLI (bot/cli/main.ts) against this stack as user `user`; resolves to
     * its output, rejects if it exits non-zero.
     */
    cli(args: string[], user = 'bob') {
      return run(process.execPath, ['--import', 'tsx', join(ROOT, 'bot/cli/main.ts'), ...args], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          DATABASE_URL: database.url,
          PORTAL_URL: portalUrl,
          GIT_CACHE_DIR: join(workDir, 'cli-git'),
          USER: user,
        },
        maxBuffer: 16 * 1024 * 1024,
      });
    },
    async close() {
      await stopProcess(worker);
      await bot.close();
      await new Promise((resolve) => portal.close(resolve));
      await github.close();
      await slack.close();
      await bucket.remove();
      await database.drop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
