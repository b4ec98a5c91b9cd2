import { createHmac, randomUUID } from 'node:crypto';
import { waitFor } from '../fakes/http';
import type { startFakeSlackApi } from '../fakes/slack-api';

/** What a signed request to the bot returned: HTTP status, body, and time taken in milliseconds. */
export interface SlackRequestResult {
  status: number;
  body: string;
  elapsedMs: number;
}

/**
 * Options of a request Slack signs: `forge` signs with a wrong secret, `timestamp` (Unix seconds,
 * default now) is the one signed, `headers` are added (e.g. Slack's retry headers
 * `{'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout'}`).
 */
export interface SignedRequestOptions {
  forge?: boolean;
  timestamp?: number;
  headers?: Record<string, string>;
}

const TEAM_ID = 'T0TEAM';
const TEAM_DOMAIN = 'acme';
const APP_ID = 'A0CROSSDOCK';
const VERIFICATION_TOKEN = 'deprecated-verification-token';

/**
 * POSTs `body` to `url` as Slack does, signed with `signingSecret` by Slack's v0 scheme:
 * `x-slack-signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">` and
 * `x-slack-request-timestamp` (api.slack.com/authentication/verifying-requests-from-slack).
 */
export async function signedSlackRequest(
  url: string,
  signingSecret: string,
  body: string,
  contentType: string,
  options: SignedRequestOptions = {},
): Promise<SlackRequestResult> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const secret = options.forge ? `${signingSecret}-forged` : signingSecret;
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature,
      ...options.headers,
    },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text, elapsedMs: performance.now() - started };
}

/**
 * POSTs a slash command to `url` as Slack does: form-encoded fields (api.slack.com/interactivity/
 * slash-commands), defaults for the team and app overridden by `fields`, signed (signedSlackRequest).
 */
export async function postSlashCommand(
  url: string,
  signingSecret: string,
  fields: Record<string, string>,
  options: SignedRequestOptions = {},
): Promise<SlackRequestResult> {
  const body = new URLSearchParams({
    token: VERIFICATION_TOKEN,
    team_id: TEAM_ID,
    team_domain: TEAM_DOMAIN,
    channel_name: 'builds',
    user_name: 'alice',
    api_app_id: APP_ID,
    is_enterprise_install: 'false',
    ...fields,
  }).toString();
  return signedSlackRequest(url, signingSecret, body, 'application/x-www-form-urlencoded', options);
}

/**
 * POSTs an interactivity payload (e.g. from blockActionPayload) to `url` as Slack does: form-encoded
 * `payload=<JSON>` (api.slack.com/interactivity/handling#payloads), signed.
 */
export async function postBlockAction(
  url: string,
  signingSecret: string,
  payload: object,
  options: SignedRequestOptions = {},
): Promise<SlackRequestResult> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  return signedSlackRequest(url, signingSecret, body, 'application/x-www-form-urlencoded', options);
}

/**
 * POSTs an Events API envelope (e.g. from eventEnvelope) to `url` as Slack does: a JSON body
 * (api.slack.com/apis/events-api#receiving-events), signed.
 */
export async function postEvent(
  url: string,
  signingSecret: string,
  envelope: object,
  options: SignedRequestOptions = {},
): Promise<SlackRequestResult> {
  return signedSlackRequest(
    url,
    signingSecret,
    JSON.stringify(envelope),
    'application/json',
    options,
  );
}

/** Slack's timestamps: Unix seconds with six decimals, as a string ("1700000000.123456"). */
function slackTs(): string {
  return (Date.now() / 1000).toFixed(6);
}

/**
 * A `block_actions` payload as Slack sends when `userId` clicks button `actionId` on message
 * `messageTs` in `channelId` (api.slack.com/reference/interaction-payloads/block-actions).
 * `responseUrl` is where `respond()` posts (the fake's responseUrl(key)).
 */
export function blockActionPayload(options: {
  userId: string;
  channelId: string;
  messageTs: string;
  actionId: string;
  value?: string;
  url?: string;
  responseUrl: string;
  triggerId?: string;
}) {
  const { userId, channelId, messageTs, actionId } = options;
  const username = userId.toLowerCase().replace(/^u0/, '');
  return {
    type: 'block_actions',
    user: { id: userId, username, name: username, team_id: TEAM_ID },
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    container: {
      type: 'message',
      message_ts: messageTs,
      channel_id: channelId,
      is_ephemeral: false,
    },
    trigger_id: options.triggerId ?? `${Date.now()}.1234567890.${randomUUID().replace(/-/g, '')}`,
    team: { id: TEAM_ID, domain: TEAM_DOMAIN },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: channelId, name: 'builds' },
    message: { type: 'message', ts: messageTs, text: 'Build', blocks: [] },
    state: { values: {} },
    response_url: options.responseUrl,
    actions: [
      {
        action_id: actionId,
        block_id: 'crossdock',
        text: { type: 'plain_text', text: actionId, emoji: true },
        ...(options.value === undefined ? {} : { value: options.value }),
        ...(options.url === undefined ? {} : { url: options.url }),
        type: 'button',
        action_ts: slackTs(),
      },
    ],
  };
}

/**
 * An Events API `event_callback` envelope around `event`, as Slack POSTs it or sends it in a
 * Socket Mode `events_api` envelope (api.slack.com/apis/events-api#callback-field).
 */
export function eventEnvelope(
  event: object,
  eventId = `Ev${randomUUID().slice(0, 8).toUpperCase()}`,
) {
  return {
    token: VERIFICATION_TOKEN,
    team_id: TEAM_ID,
    api_app_id: APP_ID,
    event,
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [
      {
        enterprise_id: null,
        team_id: TEAM_ID,
        user_id: 'U0CROSSDOCK',
        is_bot: true,
        is_enterprise_install: false,
      },
    ],
    is_ext_shared_channel: false,
    event_context: `4-${Buffer.from(eventId).toString('base64url')}`,
  };
}

/**
 * The `app_home_opened` event Slack sends when `userId` opens the app's Home tab
 * (api.slack.com/events/app_home_opened); their DM channel is `D` + the rest of the user id.
 */
export function appHomeOpenedEvent(userId: string) {
  return {
    type: 'app_home_opened',
    user: userId,
    channel: `D${userId.slice(1)}`,
    tab: 'home',
    event_ts: slackTs(),
  };
}

/** The fake Slack Web API a session talks to (test/fakes/slack-api.ts). */
type FakeSlack = Pick<Awaited<ReturnType<typeof startFakeSlackApi>>, 'calls' | 'responseUrl'>;

/**
 * A Slack user's session with the bot at `url` (its /slack/events) in `channelId`: typing
 * `/build …` and clicking buttons as Slack sends them, signed, each with its own response_url
 * on `slack`, and reading the answers however they came (in the acknowledgement or through the
 * response_url). Every request must be answered 200 within Slack's 3 s.
 */
export function slackSession(options: {
  url: string;
  signingSecret: string;
  slack: FakeSlack;
  channelId: string;
  userId: string;
}) {
  const { url, signingSecret, slack, channelId } = options;
  const responsesTo = (key: string) =>
    slack.calls.filter((call) => call.method === 'response_url' && call.key === key);
  const checkAck = (reply: SlackRequestResult, what: string) => {
    if (reply.status !== 200 || reply.elapsedMs >= 3000)
      throw new Error(
        `${what} was answered ${reply.status} after ${Math.round(reply.elapsedMs)} ms (Slack wants 200 within 3000 ms)`,
      );
  };
  return {
    responsesTo,
    /** Sends `/build <text>`; resolves with the acknowledgement and its response_url key. */
    async command(
      text: string,
      user = options.userId,
      request: { triggerId?: string; headers?: Record<string, string> } = {},
    ) {
      const key = randomUUID();
      const reply = await postSlashCommand(
        url,
        signingSecret,
        {
          command: '/build',
          text,
          channel_id: channelId,
          user_id: user,
          trigger_id: request.triggerId ?? `${Date.now()}.${randomUUID()}`,
          response_url: slack.responseUrl(key),
        },
        { headers: request.headers },
      );
      checkAck(reply, `/build ${text}`);
      return { reply, key };
    },
    /** The answer to a command: in its acknowledgement, or else through its response_url. */
    async answerTo(sent: { reply: SlackRequestResult; key: string }) {
      if (sent.reply.body)
        return JSON.parse(sent.reply.body) as { text: string; response_type: string };
      const response = await waitFor(
        `an answer through response_url ${sent.key}`,
        () => responsesTo(sent.key)[0],
      );
      return response.args as { text: string; response_type: string };
    },
    /** Clicks button `actionId` (value `value`) on message `ts`; resolves with its response key. */
    async click(actionId: string, value: string, ts: string, user = options.userId) {
      const key = randomUUID();
      const reply = await postBlockAction(
        url,
        signingSecret,
        blockActionPayload({
          userId: user,
          channelId,
          messageTs: ts,
          actionId,
          value,
          responseUrl: slack.responseUrl(key),
        }),
      );
      checkAck(reply, `a click on ${actionId}`);
      return key;
    },
    /** The answer to a click (it always comes through its response_url). */
    async clickAnswer(key: string) {
      const response = await waitFor(`an answer to the click ${key}`, () => responsesTo(key)[0]);
      return response.args as { text: string; replace_original: boolean };
    },
  };
}
