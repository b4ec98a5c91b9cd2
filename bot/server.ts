import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import type { BotConfig } from './config';
import { createStorageClient } from '../core/storage';
import { createGitHubApp } from './github/app';
import { startGitHubReporter, type GitHubClient, type GitHubReporter } from './github/reporter';
import { createSlackApp } from './slack/app';
import { startSlackFollowUp, type SlackFollowUp } from './slack/follow-up';

/**
 * Starts the bot: the Slack endpoint (POST /slack/events), with `config.githubApp` the GitHub
 * App's webhooks (POST /api/github/webhooks), and GET /healthz on one HTTP server at
 * `config.host:config.port` (port 0 picks a free one); the Slack follow-up thread (the work after
 * each acknowledgement, and the notifier that edits Slack messages; it opens its own pool to
 * `config.databaseUrl` and logs as `logName` at `config.logLevel`); the reporter that updates
 * check runs, pull request comments and releases. Resolves with the server's base URL and a
 * `close()` that stops everything. Throws if the App is configured without `config.github` (its
 * API URL) or `config.storage`, or if the follow-up thread fails to start. GET /healthz answers
 * 503 while the follow-up thread is down.
 */
export async function startBotServer(
  config: BotConfig,
  deps: { db: Database; log: Logger; logName?: string },
): Promise<{ url: string; close: () => Promise<void> }> {
  if (config.githubApp && (!config.github || !config.storage))
    throw new Error('the GitHub App needs GITHUB_API_URL and the S3_* settings');
  const slackLog = deps.log.child({ frontEnd: 'slack' });
  // The thread needs neither the signing secret nor the app token: they stay on this one.
  const { signingSecret, appToken, ...slackSettings } = config.slack;
  const followUp = await startSlackFollowUp(
    {
      slack: slackSettings,
      portalUrl: config.portalUrl,
      databaseUrl: config.databaseUrl,
      github: config.github,
      gitCacheDir: config.gitCacheDir,
      log: { name: deps.logName ?? 'bot', level: config.logLevel },
    },
    slackLog,
  );
  try {
    return await serve(config, deps, followUp, slackLog);
  } catch (error) {
    await followUp.stop();
    throw error;
  }
}

/** The rest of startBotServer, once the Slack follow-up thread runs. */
async function serve(
  config: BotConfig,
  deps: { db: Database; log: Logger },
  followUp: SlackFollowUp,
  slackLog: Logger,
): Promise<{ url: string; close: () => Promise<void> }> {
  const slack = createSlackApp(config.slack, { followUp, log: slackLog });
  let reporter: GitHubReporter | undefined;
  let github: Awaited<ReturnType<typeof createGitHubApp>> | undefined;
  if (config.githubApp) {
    github = await createGitHubApp(config.githubApp, {
      db: deps.db,
      log: deps.log,
      apiUrl: config.github!.apiUrl,
      cloneBaseUrl: config.github!.cloneBaseUrl,
      portalUrl: config.portalUrl,
      reporter: () => reporter,
    });
    const probot = github.probot;
    reporter = startGitHubReporter({
      db: deps.db,
      appId: config.githubApp.appId,
      auth: async (installationId) =>
        (await probot.auth(installationId)) as unknown as GitHubClient,
      storage: { client: createStorageClient(config.storage!), bucket: config.storage!.bucket },
      portalUrl: config.portalUrl,
      log: deps.log.child({ part: 'github-reporter' }),
    });
  }
  const server = createServer(async (request, response) => {
    if (request.method === 'GET' && request.url === '/healthz') {
      if (followUp.healthy()) response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      else
        response
          .writeHead(503, { 'content-type': 'text/plain' })
          .end('the Slack follow-up thread is being started again');
      return;
    }
    if (github && (await github.middleware(request, response))) return;
    if (!slack.requestListener) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    try {
      slack.requestListener(request, response);
    } catch (error) {
      // Bolt throws for paths it does not serve (code slack_bolt_http_receiver_deferred_request_error).
      if ((error as { code?: string }).code !== 'slack_bolt_http_receiver_deferred_request_error')
        throw error;
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host}:${port}`;
  deps.log.info({ url }, 'bot listening');
  const close = async () => {
    // No new requests first, so that none is acknowledged and then dropped.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await slack.stop();
    await followUp.stop();
    await reporter?.stop();
    server.closeAllConnections();
    await closed;
  };
  try {
    await slack.start();
  } catch (error) {
    await close();
    throw error;
  }
  return { url, close };
}
