import { createHmac } from 'node:crypto';

/**
 * POSTs a slash command to `url` as Slack does: form-encoded, signed with `signingSecret` by
 * Slack's v0 scheme (HMAC-SHA256 of "v0:<timestamp>:<body>", api.slack.com/authentication/
 * verifying-requests-from-slack). `forge` signs with a wrong secret.
 */
export async function postSlashCommand(
  url: string,
  signingSecret: string,
  fields: Record<string, string>,
  options: { forge?: boolean; timestamp?: number } = {},
): Promise<{ status: number; body: string; elapsedMs: number }> {
  const body = new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0TEAM',
    team_domain: 'acme',
    channel_name: 'builds',
    user_name: 'alice',
    api_app_id: 'A0CROSSDOCK',
    is_enterprise_install: 'false',
    ...fields,
  }).toString();
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const secret = options.forge ? `${signingSecret}-forged` : signingSecret;
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const started = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': signature,
    },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text, elapsedMs: performance.now() - started };
}
