import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { checkBlockKit, checkMessageText } from './block-kit';
import { listen, readBody } from './http';

/**
 * One recorded call: a Web API method (e.g. chat.update) and its arguments, JSON fields parsed;
 * or a POST to a response_url (method `response_url`, `key` the one given to responseUrl()).
 */
export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  key?: string;
  /** The ts the fake gave a chat.postMessage. */
  ts?: string;
}

/** Payload problems found by checkBlockKit / checkMessageText in one call. */
export interface SlackViolation {
  method: string;
  problems: string[];
}

/** The envelope types Slack sends over Socket Mode (api.slack.com/apis/socket-mode). */
export type SocketEnvelopeType = 'slash_commands' | 'interactive' | 'events_api';

/** The app id the fake reports (hello message, payload builders in test/support/slack.ts). */
export const FAKE_APP_ID = 'A0CROSSDOCK';

const BOT_METHODS = new Set([
  'chat.postMessage',
  'chat.update',
  'chat.postEphemeral',
  'views.publish',
  'usergroups.users.list',
]);
const ACK_TIMEOUT_MS = 5000;

/** Parses a Web API request body: JSON, or form-encoded with JSON-encoded structured fields. */
function parseArgs(body: string, contentType: string): Record<string, unknown> {
  const args: Record<string, unknown> = contentType.includes('json')
    ? JSON.parse(body || '{}')
    : Object.fromEntries(new URLSearchParams(body));
  for (const field of ['blocks', 'attachments', 'view']) {
    if (typeof args[field] === 'string') args[field] = JSON.parse(args[field] as string);
  }
  return args;
}

/** Problems in a message payload (chat.* arguments, response_url bodies); [] when valid. */
function messageProblems(args: Record<string, unknown>): string[] {
  const problems: string[] = [];
  if (args.blocks !== undefined) {
    problems.push(
      ...(Array.isArray(args.blocks)
        ? checkBlockKit('message', args.blocks)
        : ['blocks: not an array']),
    );
  }
  // text is the notification fallback of blocks; a response_url body may only delete.
  if (args.text !== undefined || args.blocks !== undefined) {
    problems.push(...checkMessageText(args.text));
  }
  return problems;
}

/** Problems in views.publish's `view`: a Home tab (api.slack.com/methods/views.publish). */
function homeViewProblems(view: unknown): string[] {
  if (typeof view !== 'object' || view === null) return ['view: missing'];
  const { type, blocks } = view as { type?: unknown; blocks?: unknown };
  const problems = type === 'home' ? [] : [`view.type: ${JSON.stringify(type)}, not home`];
  if (!Array.isArray(blocks)) return [...problems, 'view.blocks: not an array'];
  return [...problems, ...checkBlockKit('home', blocks)];
}

/**
 * Starts a Socket Mode server (api.slack.com/apis/socket-mode) on 127.0.0.1 at a free port: says
 * hello to each client, sends envelopes and waits for their acknowledgements, whose message
 * payloads are checked like chat.postMessage's (method `socket_ack` in violations).
 * Acknowledgements of envelopes it did not send go to `unexpected` (method `socket_message`).
 */
async function startSocketServer(
  unexpected: SlackCall[],
  check: (method: string, problems: string[]) => void,
) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/link/`;
  const clients: WebSocket[] = [];
  /** The clients that have been sent hello, which Slack sends envelopes to. */
  const greeted = new Set<WebSocket>();
  const pending = new Map<
    string,
    {
      resolve: (ack: { envelope_id: string; payload?: unknown }) => void;
      reject: (error: Error) => void;
    }
  >();
  let onConnected: (() => void)[] = [];

  server.on('connection', (socket) => {
    clients.push(socket);
    socket.on('close', () => {
      greeted.delete(socket);
      if (clients.includes(socket)) clients.splice(clients.indexOf(socket), 1);
    });
    socket.on('message', (data) => {
      let message: { envelope_id?: unknown; payload?: unknown };
      try {
        message = JSON.parse(data.toString());
      } catch {
        unexpected.push({ method: 'socket_message', args: { raw: data.toString() } });
        return;
      }
      const waiter = pending.get(String(message.envelope_id));
      if (!waiter) {
        unexpected.push({ method: 'socket_message', args: message as Record<string, unknown> });
        return;
      }
      pending.delete(String(message.envelope_id));
      if (typeof message.payload === 'object' && message.payload !== null) {
        check('socket_ack', messageProblems(message.payload as Record<string, unknown>));
      }
      waiter.resolve(message as { envelope_id: string; payload?: unknown });
    });
    socket.send(
      JSON.stringify({
        type: 'hello',
        num_connections: clients.length,
        debug_info: { host: 'fake', approximate_connection_time: 18060 },
        connection_info: { app_id: FAKE_APP_ID },
      }),
      () => {
        greeted.add(socket);
        const waiting = onConnected;
        onConnected = [];
        for (const resolve of waiting) resolve();
      },
    );
  });

  const isReady = (socket: WebSocket) => greeted.has(socket) && socket.readyState === socket.OPEN;
  return {
    url,
    /**
     * Resolves once a client is connected and has been sent hello (at once if one is); rejects
     * after `timeoutMs` (default 30 s).
     */
    connected: (timeoutMs = 30_000) =>
      clients.some(isReady)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`no Socket Mode client connected within ${timeoutMs} ms`)),
              timeoutMs,
            );
            onConnected.push(() => {
              clearTimeout(timer);
              resolve();
            });
          }),
    /**
     * Sends an envelope of `type` with `payload` to the newest connected client; resolves with the
     * client's acknowledgement ({envelope_id, payload?}). Throws when no client is connected, or
     * after 5 s without an acknowledgement. `retryAttempt` / `retryReason` mark a redelivery.
     */
    send(
      type: SocketEnvelopeType,
      payload: object,
      options: { retryAttempt?: number; retryReason?: string } = {},
    ): Promise<{ envelope_id: string; payload?: unknown }> {
      const socket = clients.findLast(isReady);
      if (!socket) return Promise.reject(new Error('no Socket Mode client is connected'));
      const envelopeId = randomUUID();
      const retries =
        type === 'events_api'
          ? { retry_attempt: options.retryAttempt ?? 0, retry_reason: options.retryReason ?? '' }
          : { retry_attempt: options.retryAttempt, retry_reason: options.retryReason };
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(envelopeId);
          reject(new Error(`no acknowledgement of ${type} envelope within ${ACK_TIMEOUT_MS} ms`));
        }, ACK_TIMEOUT_MS);
        pending.set(envelopeId, {
          resolve: (ack) => {
            clearTimeout(timer);
            resolve(ack);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        socket.send(
          JSON.stringify({
            envelope_id: envelopeId,
            type,
            payload,
            accepts_response_payload: type !== 'events_api',
            ...retries,
          }),
        );
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const waiter of pending.values())
          waiter.reject(new Error('Socket Mode server closed'));
        pending.clear();
        for (const socket of [...clients]) socket.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * A local stand-in for Slack's Web API (https://slack.com/api/<method>), response_urls and Socket
 * Mode. Records every call in `calls` and answers as Slack does:
 * - chat.postMessage: {ok, channel, ts, message}; to a user id (U…) the DM channel (D…);
 * - chat.update: {ok, channel, ts (the one given), text, message}; chat.postEphemeral:
 *   {ok, message_ts}; views.publish: {ok, view};
 * - usergroups.users.list: {ok, users} from `userGroups`, else {ok: false, error: no_such_subteam};
 * - apps.connections.open with `Authorization: Bearer <appToken>` (default xapp-test-token):
 *   {ok, url} of the fake's Socket Mode server, else {ok: false, error: invalid_auth}.
 * The bot's methods need a bot token (`Authorization: Bearer xoxb-…`): without one the call goes to
 * `unexpected` and is answered not_authed (not_allowed_token_type for another kind of token). Any
 * other method goes to `unexpected`, answered {ok: false, error: unknown_method}.
 *
 * Message payloads (blocks, text) and Home tabs are checked with checkBlockKit / checkMessageText;
 * the problems go to `violations` (the call is still answered ok).
 *
 * `responseUrl(key)` gives a response_url; POSTs to it are recorded as {method: 'response_url',
 * args: body, key}. `socket` is the Socket Mode server: `connected()`, `send(type, payload)`.
 * `ts` values count up from 1700000000.000001, one per posted message.
 */
export async function startFakeSlackApi(
  options: {
    userGroups?: Record<string, string[]>;
    appToken?: string;
    /** Channels the bot is not in: chat.postMessage there answers `not_in_channel`. */
    refusedChannels?: string[];
  } = {},
) {
  const refusedChannels = new Set(options.refusedChannels ?? []);
  const userGroups = options.userGroups ?? {};
  const appToken = options.appToken ?? 'xapp-test-token';
  const calls: SlackCall[] = [];
  const unexpected: SlackCall[] = [];
  const violations: SlackViolation[] = [];
  const check = (method: string, problems: string[]) => {
    if (problems.length > 0) violations.push({ method, problems });
  };
  const socket = await startSocketServer(unexpected, check);
  let nextTs = 1;
  let nextView = 1;
  const newTs = () => `1700000000.${String(nextTs++).padStart(6, '0')}`;

  /** Answers one Web API call, recording it; returns the JSON body of the answer. */
  function answer(method: string, args: Record<string, unknown>, authorization: string): object {
    const token = /^Bearer (.+)$/.exec(authorization)?.[1] ?? (args.token as string | undefined);
    if (method === 'apps.connections.open') {
      if (token !== appToken) {
        unexpected.push({ method, args });
        return { ok: false, error: 'invalid_auth' };
      }
      calls.push({ method, args });
      return { ok: true, url: `${socket.url}?ticket=${randomUUID()}&app_id=${FAKE_APP_ID}` };
    }
    if (!BOT_METHODS.has(method)) {
      unexpected.push({ method, args });
      return { ok: false, error: 'unknown_method' };
    }
    if (!token?.startsWith('xoxb-')) {
      unexpected.push({ method, args });
      return { ok: false, error: token ? 'not_allowed_token_type' : 'not_authed' };
    }
    calls.push({ method, args });
    switch (method) {
      case 'usergroups.users.list': {
        const users = userGroups[String(args.usergroup)];
        return users ? { ok: true, users } : { ok: false, error: 'no_such_subteam' };
      }
      case 'views.publish': {
        check(method, homeViewProblems(args.view));
        const view = { ...(args.view as object), id: `V0HOME${nextView++}` };
        return { ok: true, view };
      }
      case 'chat.postEphemeral':
        check(method, messageProblems(args));
        return { ok: true, message_ts: newTs() };
      default: {
        check(method, messageProblems(args));
        const message = { type: 'message', text: args.text, blocks: args.blocks };
        if (method === 'chat.update') {
          return { ok: true, channel: args.channel, ts: args.ts, text: args.text, message };
        }
        const channel = String(args.channel ?? '');
        if (method === 'chat.postMessage' && refusedChannels.has(channel))
          return { ok: false, error: 'not_in_channel' };
        const ts = newTs();
        calls[calls.length - 1]!.ts = ts;
        return {
          ok: true,
          channel: channel.startsWith('U') ? `D${channel.slice(1)}` : channel,
          ts,
          message: { ...message, ts },
        };
      }
    }
  }

  const server = await listen(async (request, response) => {
    const path = (request.url ?? '').split('?')[0]!;
    const body = (await readBody(request)).toString();
    const args = parseArgs(body, request.headers['content-type'] ?? '');
    const responseKey = /^\/response\/(.+)$/.exec(path)?.[1];
    if (responseKey !== undefined && request.method === 'POST') {
      calls.push({ method: 'response_url', args, key: decodeURIComponent(responseKey) });
      check('response_url', messageProblems(args));
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const method = path.replace(/^\/api\//, '');
    const result = answer(method, args, request.headers.authorization ?? '');
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  });

  return {
    ...server,
    apiUrl: `${server.url}/api/`,
    calls,
    unexpected,
    violations,
    socket: { url: socket.url, connected: socket.connected, send: socket.send },
    /** A response_url whose POSTs are recorded with `key`. */
    responseUrl: (key: string) => `${server.url}/response/${encodeURIComponent(key)}`,
    close: async () => {
      await socket.close();
      await server.close();
    },
  };
}
