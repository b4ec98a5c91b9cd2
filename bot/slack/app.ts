import {
  App,
  HTTPReceiver,
  LogLevel,
  SocketModeReceiver,
  type AckFn,
  type BlockAction,
  type ButtonAction,
  type Logger as BoltLogger,
  type RespondArguments,
  type RespondFn,
} from '@slack/bolt';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { parseCommand, type Command } from '../../core/command';
import { reportError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { Database } from '../../db/client';
import type { SlackSettings } from '../config';
import type { BuildView } from '../build-view';
import type { SourceDirectory } from '../sources/directory';
import { ACTIONS, renderHelp, renderText } from './messages';
import { createSlackPermissions } from './permissions';
import { createSlackService, type SlackReply, type SlackRequester } from './service';

export interface SlackOptions extends SlackSettings {
  portalUrl: string;
}

export interface SlackDeps {
  db: Database;
  sources: SourceDirectory;
  log: Logger;
  /** Called after a build's message is posted showing `view`, so its changes are reported. */
  onBuildPosted?: (view: BuildView) => void;
}

/** The Slack front end, as the bot's server runs it. */
export interface SlackFrontEnd {
  app: App;
  /**
   * Serves POST /slack/events (HTTP mode); undefined in Socket Mode, where Slack's requests
   * come over the WebSocket that `start()` opens.
   */
  requestListener?: HTTPReceiver['requestListener'];
  /** Connects to Slack in Socket Mode (nothing to do in HTTP mode). */
  start(): Promise<void>;
  stop(): Promise<void>;
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

/** Undoes Slack's escaping of &, < and > in message and command text. */
export function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const asResponse = (reply: SlackReply): RespondArguments & { response_type: string } => ({
  response_type: reply.visibility ?? 'ephemeral',
  text: reply.text,
  blocks: reply.blocks,
});

/**
 * The Slack front end: a Bolt app with the `/build` slash command (the grammar of
 * core/command.ts), the buttons of build messages (Cancel, Retry, Approve, Dismiss, Open in
 * portal), and the App Home tab.
 *
 * Over HTTP (default), Bolt verifies Slack's v0 request signature and 5-minute timestamp window
 * (api.slack.com/authentication/verifying-requests-from-slack) and answers 401 otherwise; serve
 * `requestListener` from a server bound to 127.0.0.1 behind the team's proxy. With
 * `socketMode` the app connects out to Slack over a WebSocket (api.slack.com/apis/socket-mode)
 * with the app-level token, for bots with no public URL.
 *
 * A command is acknowledged within Slack's 3 seconds whatever the database or the source host
 * do: grammar mistakes and help are answered in the acknowledgement; anything else is
 * acknowledged once its answer is ready or `ackWaitMs` have passed, whichever is first, and the
 * answer then follows through the command's response_url. A started build's answer is its
 * channel message, which the notifier edits as the build moves.
 */
export function createSlackApp(options: SlackOptions, deps: SlackDeps): SlackFrontEnd {
  const logger = boltLogger(deps.log);
  // A few quick retries: a pass that fails is tried again by the next one, so a call must not
  // wait out the default half hour of retries (rate limits included).
  const clientOptions = {
    ...(options.apiUrl ? { slackApiUrl: options.apiUrl } : {}),
    retryConfig: { retries: 2 },
  };
  const httpReceiver = options.socketMode
    ? undefined
    : new HTTPReceiver({
        signingSecret: options.signingSecret,
        endpoints: '/slack/events',
        logger,
        unhandledRequestTimeoutMillis: 3000,
      });
  const receiver =
    httpReceiver ??
    new SocketModeReceiver({
      appToken: options.appToken!,
      logger,
      installerOptions: { clientOptions },
    });
  const app = new App({
    receiver,
    token: options.botToken,
    botId: options.botId,
    botUserId: options.botUserId,
    logger,
    clientOptions,
  });
  const permissions = createSlackPermissions(options.permissions, async (usergroup) => {
    const answer = await app.client.usergroups.users.list({ usergroup });
    return answer.users ?? [];
  });
  const service = createSlackService({
    db: deps.db,
    sources: deps.sources,
    client: app.client,
    permissions,
    portalUrl: options.portalUrl,
    channelRepos: options.channelRepos,
    defaultRepo: options.defaultRepo,
    log: deps.log,
    onBuildPosted: deps.onBuildPosted,
  });

  // The work after the acknowledgements (sources, database, Slack) runs a few requests at a
  // time: it shares the event loop with the acknowledgements, which must not wait behind the
  // follow-up work of every request in flight. The rest wait their turn, already acknowledged.
  const followUp = pLimit(options.maxConcurrentRequests ?? 4);

  /** A thrown error as the answer to its requester: a user's mistake says what to do instead. */
  const errorReply = (error: unknown, log: Logger): SlackReply => {
    const report = reportError(error);
    log[report.level]({ err: error, code: report.code }, 'slack request refused');
    return renderText(report.reply);
  };

  /** Acknowledges within `ackWaitMs` (with the answer if it is ready), else answers later. */
  const answer = async (
    ack: AckFn<string | RespondArguments>,
    respond: RespondFn,
    outcome: Promise<SlackReply | undefined>,
    log: Logger,
  ) => {
    const waitMs = options.ackWaitMs ?? 0;
    if (waitMs > 0) {
      const early = await Promise.race([
        outcome.then((reply) => ({ reply })),
        sleep(waitMs).then(() => undefined),
      ]);
      if (early) {
        await ack(early.reply ? asResponse(early.reply) : undefined);
        return;
      }
    }
    await ack();
    const reply = await outcome;
    if (reply)
      await respond(asResponse(reply)).catch((error) =>
        log.warn({ err: error }, 'answering through response_url failed'),
      );
  };

  app.command('/build', async ({ command, ack, respond }) => {
    const log = deps.log.child({ channel: command.channel_id, user: command.user_id });
    const who: SlackRequester = {
      userId: command.user_id,
      channelId: command.channel_id,
      requestId: command.trigger_id,
    };
    // Slack sends the text with &, < and > escaped (api.slack.com/reference/surfaces/formatting).
    const text = unescapeSlack(command.text);
    let parsed: Command;
    try {
      parsed = parseCommand(text);
    } catch (error) {
      await ack(asResponse(errorReply(error, log)));
      return;
    }
    if (parsed.kind === 'help') {
      await ack(asResponse(renderHelp()));
      return;
    }
    const outcome = followUp(() => service.command(who, parsed, text)).catch((error: unknown) =>
      errorReply(error, log),
    );
    await answer(ack, respond, outcome, log);
  });

  /** A button whose value is a build's or held request's id. */
  const onButton = (
    actionId: string,
    run: (who: SlackRequester, id: number) => Promise<SlackReply | undefined>,
  ) =>
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const who: SlackRequester = {
        userId: body.user.id,
        channelId: body.channel?.id ?? body.container.channel_id,
        requestId: body.trigger_id,
      };
      const log = deps.log.child({ channel: who.channelId, user: who.userId, action: actionId });
      const reply = await followUp(() => run(who, Number(action.value))).catch((error: unknown) =>
        errorReply(error, log),
      );
      if (reply)
        await respond({ ...asResponse(reply), replace_original: false }).catch((error) =>
          log.warn({ err: error }, 'answering a button through response_url failed'),
        );
    });
  onButton(ACTIONS.cancel, service.cancel);
  onButton(ACTIONS.retry, service.retry);
  onButton(ACTIONS.approve, service.approve);
  onButton(ACTIONS.dismiss, service.dismiss);
  // A link button: Slack opens the URL and still sends the click, which needs only an ack.
  app.action(ACTIONS.openPortal, async ({ ack }) => ack());
  app.action<BlockAction<ButtonAction>>(
    ACTIONS.directMessages,
    async ({ ack, body, action, respond }) => {
      await ack();
      const log = deps.log.child({ user: body.user.id, action: ACTIONS.directMessages });
      await service.setDirectMessages(body.user.id, action.value === 'on').catch(async (error) => {
        const reply = errorReply(error, log);
        await respond({ ...asResponse(reply), replace_original: false }).catch(() => {});
      });
    },
  );

  app.event('app_home_opened', async ({ event }) => {
    if (event.tab !== 'home') return;
    // Nobody to answer: a failure is logged by its kind, and the next opening tries again.
    await service
      .publishHome(event.user)
      .catch((error: unknown) => errorReply(error, deps.log.child({ user: event.user })));
  });

  if (!options.permissions)
    deps.log.warn(
      "no SLACK_PERMISSIONS_FILE: everyone in the workspace may build, start release builds and approve forks' code",
    );

  return {
    app,
    requestListener: httpReceiver?.requestListener,
    async start() {
      if (!httpReceiver) await app.start();
    },
    async stop() {
      if (!httpReceiver) await app.stop();
    },
  };
}
