import { App, HTTPReceiver, LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import { parseRepoName, type RepoName } from '../../core/command';
import { reportError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { Database } from '../../db/client';
import type { SlackSettings } from '../config';
import { markBuildReported, setBuildNotify } from '../../db/queries/builds';
import { loadBuildView } from '../build-view';
import { requestBuild } from '../request-build';
import type { SourceDirectory } from '../sources/directory';
import { renderBuildMessage } from './messages';

export interface SlackOptions extends SlackSettings {
  portalUrl: string;
}

export interface SlackDeps {
  db: Database;
  sources: SourceDirectory;
  log: Logger;
  /** Called after a build's message is posted, so its later states are reported promptly. */
  onBuildPosted?: (buildId: number) => void;
}

/** Adapts pino to Bolt's logger interface. */
function boltLogger(log: Logger): BoltLogger {
  return {
    debug: (...args) => log.debug(args.join(' ')),
    info: (...args) => log.info(args.join(' ')),
    warn: (...args) => log.warn(args.join(' ')),
    error: (...args) => log.error(args.join(' ')),
    setLevel: () => {},
    getLevel: () => LogLevel.INFO,
    setName: () => {},
  };
}

/**
 * The Slack front end: a Bolt app serving the `/build` slash command at POST /slack/events.
 * Bolt verifies Slack's v0 request signature and 5-minute timestamp window
 * (api.slack.com/authentication/verifying-requests-from-slack) and answers 401 otherwise.
 * The command is acknowledged only once the build and its jobs are stored; then one channel
 * message is posted, which the notifier edits as the build moves.
 * Serve `receiver.requestListener` from an http server bound to 127.0.0.1.
 */
export function createSlackApp(
  options: SlackOptions,
  deps: SlackDeps,
): { app: App; receiver: HTTPReceiver } {
  const logger = boltLogger(deps.log);
  const receiver = new HTTPReceiver({
    signingSecret: options.signingSecret,
    endpoints: '/slack/events',
    logger,
    unhandledRequestTimeoutMillis: 3000,
  });
  const app = new App({
    receiver,
    token: options.botToken,
    botId: options.botId,
    botUserId: options.botUserId,
    logger,
    clientOptions: options.apiUrl
      ? { slackApiUrl: options.apiUrl, retryConfig: { retries: 2 } }
      : undefined,
  });

  app.command('/build', async ({ command, ack, client }) => {
    const log = deps.log.child({ channel: command.channel_id, user: command.user_id });
    const defaultName = options.channelRepos[command.channel_id] ?? options.defaultRepo;
    let defaultRepo: RepoName | undefined;
    try {
      defaultRepo = defaultName ? parseRepoName(defaultName) : undefined;
      const result = await requestBuild(deps, {
        text: command.text,
        defaultRepo,
        trigger: 'slack',
        requester: `slack:${command.user_id}`,
        deliveryId: command.trigger_id,
      });
      const { build, repo } = result;
      log.info({ buildId: build.id, created: result.created }, 'build requested');
      await ack({
        response_type: 'ephemeral',
        text: result.created
          ? `Build #${build.id} queued: ${result.jobs.map((job) => job.target).join(', ')} of ${repo.owner}/${repo.name} at ${build.sha.slice(0, 12)}.`
          : `That request is already build #${build.id}.`,
      });
      if (!result.created) return;
      const view = await loadBuildView(deps.db, build.id);
      const message = renderBuildMessage(view!, options.portalUrl);
      const posted = await client.chat.postMessage({ channel: command.channel_id, ...message });
      await setBuildNotify(deps.db, build.id, {
        slack: {
          channel: posted.channel ?? command.channel_id,
          ts: posted.ts!,
          user: command.user_id,
        },
      });
      await markBuildReported(deps.db, build.id, view!.build.state);
      deps.onBuildPosted?.(build.id);
    } catch (error) {
      const report = reportError(error);
      log[report.level]({ err: error, code: report.code }, 'build request refused');
      await ack({ response_type: 'ephemeral', text: report.reply }).catch(() => {});
    }
  });

  return { app, receiver };
}
