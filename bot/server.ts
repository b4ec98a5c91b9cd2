import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import type { BotConfig } from './config';
import { createStorageClient } from '../core/storage';
import { createGitHubApp } from './github/app';
import { startGitHubReporter, type GitHubClient, type GitHubReporter } from './github/reporter';
import { startNotifier } from './notifier';
import { createSlackApp } from './slack/app';
import { createSourceDirectory } from './sources/directory';

/**
 * Starts the bot: the Slack endpoint (POST /slack/events), with `config.githubApp` the GitHub
 * App's webhooks (POST /api/github/webhooks), and GET /healthz on one HTTP server at
 * `config.host:config.port` (port 0 picks a free one); the notifier that edits Slack messages and
 * the reporter that updates check runs, pull request comments and releases. Resolves with the
 * server's base URL and a `close()` that stops everything. Throws if the App is configured
 * without `config.github` (its API URL) or `config.storage`.
 */
export async function startBotServer(
  config: Omit<BotConfig, 'databaseUrl' | 'logLevel'>,
  deps: { db: Database; log: Logger },
): Promise<{ url: string; close: () => Promise<void> }> {
  const sources = createSourceDirectory({
    db: deps.db,
    github: config.github,
    gitCacheDir: config.gitCacheDir,
  });
  // eslint-disable-next-line prefer-const -- assigned after the Slack app that refers to it
  let notifier: ReturnType<typeof startNotifier> | undefined;
  const slack = createSlackApp(
    { ...config.slack, portalUrl: config.portalUrl },
    {
      db: deps.db,
      sources,
      log: deps.log.child({ frontEnd: 'slack' }),
      onBuildPosted: (view) => notifier?.posted(view),
    },
  );
  notifier = startNotifier({
    db: deps.db,
    slack: slack.app.client,
    portalUrl: config.portalUrl,
    log: deps.log.child({ part: 'notifier' }),
  });
  let reporter: GitHubReporter | undefined;
  let github: Awaited<ReturnType<typeof createGitHubApp>> | undefined;
  if (config.githubApp) {
    if (!config.github || !config.storage)
      throw new Error('the GitHub App needs GITHUB_API_URL and the S3_* settings');
    github = await createGitHubApp(config.githubApp, {
      db: deps.db,
      log: deps.log,
      apiUrl: config.github.apiUrl,
      cloneBaseUrl: config.github.cloneBaseUrl,
      portalUrl: config.portalUrl,
      reporter: () => reporter,
    });
    const probot = github.probot;
    reporter = startGitHubReporter({
      db: deps.db,
      appId: config.githubApp.appId,
      auth: async (installationId) =>
        (await probot.auth(installationId)) as unknown as GitHubClient,
      storage: { client: createStorageClient(config.storage), bucket: config.storage.bucket },
      portalUrl: config.portalUrl,
      log: deps.log.child({ part: 'github-reporter' }),
    });
  }
  const server = createServer(async (request, response) => {
    if (request.method === 'GET' && request.url === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
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
  await slack.start();
  return {
    url,
    async close() {
      await slack.stop();
      await notifier?.stop();
      await reporter?.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
