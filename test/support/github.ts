import { randomUUID } from 'node:crypto';
import examples from '@octokit/webhooks-examples';
import { sign } from '@octokit/webhooks-methods';

/**
 * Real webhook payloads (@octokit/webhooks-examples, as api.github.com sends them), adjusted to a
 * test repository, and signed deliveries of them.
 */

/**
 * A payload as tests edit it, field by field at any depth (the examples' types are unions of
 * every variant, which would need a cast at each edit).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type Payload = Record<string, any>;

/** A copy of the first example of `event` (with `action`, when given) that `where` accepts. */
export function examplePayload(
  event: string,
  action?: string,
  where: (payload: Record<string, unknown>) => boolean = () => true,
): Payload {
  const definition = examples.find((candidate) => candidate.name === event);
  const found = (definition?.examples as Record<string, unknown>[] | undefined)?.find(
    (payload) => (action === undefined || payload.action === action) && where(payload),
  );
  if (!found) throw new Error(`no example payload of ${event}.${action ?? ''}`);
  return structuredClone(found) as Payload;
}

/**
 * Points an example payload at repository `owner/name`, installation `installationId`, sent by
 * `sender`: the repository object, `installation` (some examples have none), and `sender`.
 */
export function retarget(
  payload: Payload,
  options: { owner: string; name: string; installationId: number; sender: string },
): Payload {
  const fullName = `${options.owner}/${options.name}`;
  payload.repository = {
    ...payload.repository,
    name: options.name,
    full_name: fullName,
    private: true,
    owner: { ...payload.repository.owner, login: options.owner },
  };
  payload.installation = {
    id: options.installationId,
    node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ==',
  };
  payload.sender = { ...payload.sender, login: options.sender };
  return payload;
}

/**
 * POSTs a webhook delivery to `url` as GitHub does (docs.github.com/webhooks/webhook-events-and-
 * payloads#delivery-headers): JSON body, `X-GitHub-Event`, `X-GitHub-Delivery` (a new UUID unless
 * given), and `X-Hub-Signature-256` (HMAC-SHA256 of the body with `secret`; `forge` signs with
 * another secret).
 */
export async function deliverWebhook(
  url: string,
  secret: string,
  event: string,
  payload: unknown,
  options: { deliveryId?: string; forge?: boolean } = {},
): Promise<{ status: number; body: string; deliveryId: string }> {
  const body = JSON.stringify(payload);
  const deliveryId = options.deliveryId ?? randomUUID();
  const signature = await sign(options.forge ? `${secret}-forged` : secret, body);
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/test',
      'x-github-event': event,
      'x-github-delivery': deliveryId,
      'x-hub-signature-256': signature,
    },
    body,
  });
  return { status: response.status, body: await response.text(), deliveryId };
}
