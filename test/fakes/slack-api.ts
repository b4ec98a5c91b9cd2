import { listen, readBody } from './http';

/** One recorded Web API call: the method (e.g. chat.update) and its arguments, JSON fields parsed. */
export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
}

const EXPECTED = new Set([
  'chat.postMessage',
  'chat.update',
  'chat.postEphemeral',
  'views.publish',
]);

/**
 * A local stand-in for Slack's Web API (https://slack.com/api/<method>): records every call and
 * answers as Slack does ({ok: true, channel, ts}); any other method is recorded in `unexpected`
 * and answered {ok: false, error: "unknown_method"}.
 */
export async function startFakeSlackApi() {
  const calls: SlackCall[] = [];
  const unexpected: SlackCall[] = [];
  let nextTs = 1;
  const server = await listen(async (request, response) => {
    const method = (request.url ?? '').replace(/^\/api\//, '').split('?')[0]!;
    const body = (await readBody(request)).toString();
    const type = request.headers['content-type'] ?? '';
    const args: Record<string, unknown> = type.includes('json')
      ? JSON.parse(body || '{}')
      : Object.fromEntries(new URLSearchParams(body));
    for (const field of ['blocks', 'attachments', 'view']) {
      if (typeof args[field] === 'string') args[field] = JSON.parse(args[field] as string);
    }
    const call = { method, args };
    response.setHeader('content-type', 'application/json');
    if (!EXPECTED.has(method)) {
      unexpected.push(call);
      response.end(JSON.stringify({ ok: false, error: 'unknown_method' }));
      return;
    }
    calls.push(call);
    const ts =
      method === 'chat.update' ? args.ts : `1700000000.${String(nextTs++).padStart(6, '0')}`;
    response.end(
      JSON.stringify({ ok: true, channel: args.channel, ts, message: { text: args.text } }),
    );
  });
  return { ...server, apiUrl: `${server.url}/api/`, calls, unexpected };
}
