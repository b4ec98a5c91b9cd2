// The Slack follow-up thread (started by bot/slack/follow-up.ts): runs the work after each
// acknowledgement, and the notifier, away from the thread that acknowledges.
import { setPriority } from 'node:os';
import { WebClient } from '@slack/web-api';
import pLimit from 'p-limit';
import { createLogger, type Logger } from '../../core/logger';
import { threadData } from '../../core/threads';
import { connect } from '../../db/client';
import { startNotifier } from '../notifier';
import { createSourceDirectory } from '../sources/directory';
import {
  createQuietGate,
  errorReply,
  responseMessage,
  type Delivery,
  type FollowUpInit,
  type FollowUpTask,
  type FromFollowUp,
  type ToFollowUp,
} from './follow-up';
import { createSlackPermissions } from './permissions';
import { createSlackService, type SlackReply } from './service';

/** How long a POST to a response_url may take, in ms. */
const RESPONSE_TIMEOUT_MS = 10_000;
/** This thread's nice value: 10 gives it about a tenth of the acknowledging thread's CPU share. */
const FOLLOW_UP_NICE = 10;

const { data: init, port } = threadData<FollowUpInit>();
// Acknowledgements come first: on Linux a nice value is a thread's own (setpriority(2)), so this
// lowers only this thread's share of a busy CPU, not the acknowledging thread's.
setPriority(FOLLOW_UP_NICE);
const send = (message: FromFollowUp) => port.postMessage(message);
const log = createLogger(init.log).child({ frontEnd: 'slack' });
const db = connect(init.databaseUrl);
const sources = createSourceDirectory({
  db,
  github: init.github,
  gitCacheDir: init.gitCacheDir,
});
// A few quick retries: a pass that fails is tried again by the next one, so a call must not
// wait out the default half hour of retries (rate limits included).
const client = new WebClient(init.slack.botToken, {
  ...(init.slack.apiUrl ? { slackApiUrl: init.slack.apiUrl } : {}),
  retryConfig: { retries: 2 },
});
const permissions = createSlackPermissions(init.slack.permissions, async (usergroup) => {
  const answer = await client.usergroups.users.list({ usergroup });
  return answer.users ?? [];
});
const notifier = startNotifier({
  db,
  slack: client,
  portalUrl: init.portalUrl,
  log: log.child({ part: 'notifier' }),
  pollMs: init.notifierPollMs,
});
const service = createSlackService({
  db,
  sources,
  client,
  permissions,
  portalUrl: init.portalUrl,
  channelRepos: init.slack.channelRepos,
  defaultRepo: init.slack.defaultRepo,
  log,
  onBuildPosted: (view) => notifier.posted(view),
});
// A few requests at a time: each holds database connections and calls Slack and the source
// host; the rest wait their turn, already acknowledged.
const limit = pLimit(init.slack.maxConcurrentRequests ?? 4);
// New work starts once acknowledgements pause (or after a second at most).
const gate = createQuietGate(init.requests);

/** Runs one task; resolves to its answer (undefined: nothing to answer). */
async function perform(task: FollowUpTask): Promise<SlackReply | undefined> {
  switch (task.kind) {
    case 'command':
      return service.command(task.who, task.command, task.text);
    case 'button':
      return service[task.work](task.who, task.id);
    case 'direct-messages':
      await service.setDirectMessages(task.userId, task.on);
      return undefined;
    case 'home':
      await service.publishHome(task.userId);
      return undefined;
  }
}

/** Who and where a task's log lines are about. */
function logOf(task: FollowUpTask): Logger {
  if (task.kind === 'command')
    return log.child({ channel: task.who.channelId, user: task.who.userId });
  if (task.kind === 'button')
    return log.child({ channel: task.who.channelId, user: task.who.userId, button: task.work });
  return log.child({ user: task.userId, task: task.kind });
}

/**
 * Posts `reply` to a request's response_url as an ephemeral (or in-channel) message that does not
 * replace the message clicked (api.slack.com/interactivity/handling#message_responses).
 */
async function respond(responseUrl: string, reply: SlackReply): Promise<void> {
  const response = await fetch(responseUrl, {
    method: 'POST',
    signal: AbortSignal.timeout(RESPONSE_TIMEOUT_MS),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...responseMessage(reply), replace_original: false }),
  });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`response_url answered HTTP ${response.status}`);
}

/**
 * Runs a task and delivers its answer. Always tells the acknowledging thread it is done, so that
 * nothing waits on it forever.
 */
async function handle(
  id: number,
  task: FollowUpTask,
  delivery: Delivery,
  arrivedAt: number,
): Promise<void> {
  let reply: SlackReply | undefined;
  try {
    await gate.wait(arrivedAt);
    const taskLog = logOf(task);
    reply = await perform(task).catch((error: unknown) => errorReply(error, taskLog));
    if (delivery.to === 'response_url' && reply && delivery.responseUrl)
      await respond(delivery.responseUrl, reply).catch((error) =>
        taskLog.warn({ err: error }, 'answering through response_url failed'),
      );
  } finally {
    send({ type: 'done', id, reply: delivery.to === 'caller' ? reply : undefined });
  }
}

let stopping: Promise<void> | undefined;
/** Lets the tasks in hand finish, stops the notifier and closes the pool. */
async function stop(): Promise<void> {
  while (limit.activeCount + limit.pendingCount > 0)
    await new Promise((resolve) => setTimeout(resolve, 50));
  gate.stop();
  await notifier.stop();
  await db.$client.end({ timeout: 5 });
  send({ type: 'stopped' });
  port.close();
}

port.on('message', (message: ToFollowUp) => {
  if (message.type === 'stop') stopping ??= stop();
  else if (message.type === 'task') {
    const arrivedAt = performance.now();
    void limit(() => handle(message.id, message.task, message.delivery, arrivedAt)).catch((error) =>
      log.error({ err: error }, 'a Slack follow-up task failed'),
    );
  }
});
send({ type: 'ready' });
