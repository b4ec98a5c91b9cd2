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
import { parseCommand, type Command } from '../../core/command';
import type { Logger } from '../../core/logger';
import type { SlackSettings } from '../config';
import {
  errorReply,
  responseMessage,
  type ButtonWork,
  type Delivery,
  type FollowUpTask,
  type SlackFollowUp,
} from './follow-up';
import { ACTIONS, renderHelp } from './messages';
import type { SlackReply, SlackRequester } from './service';

export interface SlackDeps {
  /** Where the work after each acknowledgement runs (bot/slack/follow-up.ts). */
  followUp: SlackFollowUp;
  log: Logger;
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

/** The buttons whose click the follow-up thread handles, by action_id. */
const BUTTON_WORK: Record<string, ButtonWork> = {
  [ACTIONS.cancel]: 'cancel',
  [ACTIONS.retry]: 'retry',
  [ACTIONS.approve]: 'approve',
  [ACTIONS.dismiss]: 'dismiss',
};

/** Every button of Crossdock's messages and Home tab, by action_id. */
const BUTTONS = new RegExp(`^(${Object.values(ACTIONS).join('|')})$`);

const asResponse = (reply: SlackReply): RespondArguments => responseMessage(reply);

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
 * This thread only verifies, parses and acknowledges; the work that follows (database, source
 * host, Slack's Web API) runs in the follow-up thread (`deps.followUp`), so acknowledgements do
 * not queue behind it. A command is acknowledged within Slack's 3 seconds whatever the database
 * or the source host do: grammar mistakes and help are answered in the acknowledgement; anything
 * else is acknowledged at once (`ackWaitMs` 0, the default) or once its answer is ready or
 * `ackWaitMs` have passed, whichever is first, and the answer then follows through the
 * command's response_url. A started build's answer is its channel message, which the notifier
 * edits as the build moves.
 */
export function createSlackApp(options: SlackSettings, deps: SlackDeps): SlackFrontEnd {
  const logger = boltLogger(deps.log);
  // Bolt's own client opens Socket Mode connections (apps.connections.open); a few quick retries.
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
    // Conversation state is not used: skip Bolt's per-request store lookup.
    convoStore: false,
  });
  const { followUp } = deps;
  // Every request Slack sends is counted first, so that follow-up work waits for a pause.
  app.use(async ({ next }) => {
    followUp.received();
    await next();
  });

  /**
   * Hands `task` to the follow-up thread, which answers through `responseUrl`. Should the thread
   * end before it is done, the requester is told so here. Not awaited by the handlers: Bolt's
   * request is done once acknowledged, and keeps nothing alive while the follow-up runs.
   */
  const handOver = async (
    task: FollowUpTask,
    responseUrl: string | undefined,
    respond: RespondFn | undefined,
    log: () => Logger,
  ) => {
    const delivery: Delivery = { to: 'response_url', responseUrl };
    await followUp.run(task, delivery).catch(async (error: unknown) => {
      const reply = errorReply(error, log());
      if (respond && responseUrl)
        await respond({ ...asResponse(reply), replace_original: false }).catch(() => {});
    });
  };

  /**
   * Acknowledges a command within `ackWaitMs` with its answer if that is ready by then; else
   * acknowledges empty and answers through response_url once the follow-up thread is done.
   */
  const answerWithin = async (
    waitMs: number,
    ack: AckFn<string | RespondArguments>,
    respond: RespondFn,
    task: FollowUpTask,
    log: () => Logger,
  ) => {
    const outcome = followUp
      .run(task, { to: 'caller' })
      .catch((error: unknown) => errorReply(error, log()));
    const early = await Promise.race([
      outcome.then((reply) => ({ reply })),
      sleep(waitMs).then(() => undefined),
    ]);
    if (early) {
      await ack(early.reply ? asResponse(early.reply) : undefined);
      return;
    }
    await ack();
    const reply = await outcome;
    if (reply)
      await respond(asResponse(reply)).catch((error) =>
        log().warn({ err: error }, 'answering through response_url failed'),
      );
  };

  app.command('/build', async ({ command, ack, respond }) => {
    // A logger is made only when there is something to log: acknowledgements stay cheap.
    const log = () => deps.log.child({ channel: command.channel_id, user: command.user_id });
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
      await ack(asResponse(errorReply(error, log())));
      return;
    }
    if (parsed.kind === 'help') {
      await ack(asResponse(renderHelp()));
      return;
    }
    const task: FollowUpTask = { kind: 'command', who, command: parsed, text };
    const waitMs = options.ackWaitMs ?? 0;
    if (waitMs > 0) return answerWithin(waitMs, ack, respond, task, log);
    await ack();
    void handOver(task, command.response_url, respond, log);
  });

  // One listener for every button: Bolt runs each listener's middleware for every request.
  app.action<BlockAction<ButtonAction>>(BUTTONS, async ({ ack, body, action, respond }) => {
    await ack();
    // A link button: Slack opens the URL itself and sends the click only to be acknowledged.
    if (action.action_id === ACTIONS.openPortal) return;
    const channelId = body.channel?.id ?? body.container.channel_id;
    const log = () =>
      deps.log.child({ channel: channelId, user: body.user.id, action: action.action_id });
    if (action.action_id === ACTIONS.directMessages) {
      // The Home tab's switch: a view has no response_url, so a failure is only logged.
      const task: FollowUpTask = {
        kind: 'direct-messages',
        userId: body.user.id,
        on: action.value === 'on',
      };
      void handOver(task, undefined, undefined, log);
      return;
    }
    const who: SlackRequester = { userId: body.user.id, channelId, requestId: body.trigger_id };
    const work = BUTTON_WORK[action.action_id]!;
    const task: FollowUpTask = { kind: 'button', work, who, id: Number(action.value) };
    void handOver(task, body.response_url, respond, log);
  });

  app.event('app_home_opened', async ({ event }) => {
    if (event.tab !== 'home') return;
    // Nobody to answer: a failure is logged, and the next opening tries again.
    void handOver({ kind: 'home', userId: event.user }, undefined, undefined, () =>
      deps.log.child({ user: event.user }),
    );
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
