import { LogLevel, SocketModeClient } from '@slack/socket-mode';
import { WebClient } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appHomeOpenedEvent, eventEnvelope } from '../support/slack';
import { startFakeSlackApi } from './slack-api';

type FakeSlack = Awaited<ReturnType<typeof startFakeSlackApi>>;

const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

/**
 * The fake Slack answers Slack's own clients (@slack/web-api, @slack/socket-mode) as Slack does,
 * and records what a real Slack would refuse or never expect.
 */
describe('fake Slack API', () => {
  let fake: FakeSlack;
  let web: WebClient;

  beforeEach(async () => {
    fake = await startFakeSlackApi({ userGroups: { S0RELEASE: ['U0ALICE', 'U0BOB'] } });
    web = new WebClient('xoxb-test-token', {
      slackApiUrl: fake.apiUrl,
      retryConfig: { retries: 0 },
      logLevel: LogLevel.ERROR,
    });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('records a message with blocks and answers with its channel and ts', async () => {
    const blocks = [section('Build #1 of acme/hello: *queued*')];
    const posted = await web.chat.postMessage({ channel: 'C0BUILDS', text: 'Build #1', blocks });
    const updated = await web.chat.update({
      channel: 'C0BUILDS',
      ts: posted.ts!,
      text: 'Build #1 succeeded',
      blocks,
    });

    expect(posted).toMatchObject({ ok: true, channel: 'C0BUILDS', ts: '1700000000.000001' });
    expect(updated).toMatchObject({ ok: true, ts: '1700000000.000001' });
    expect(fake.calls.map((call) => call.method)).toEqual(['chat.postMessage', 'chat.update']);
    expect(fake.calls[0]!.args).toMatchObject({ channel: 'C0BUILDS', text: 'Build #1', blocks });
    expect(fake.violations).toEqual([]);
    expect(fake.unexpected).toEqual([]);
  });

  it('answers a message to a user id with the DM channel, recording the user id', async () => {
    const posted = await web.chat.postMessage({ channel: 'U0ALICE', text: 'Your build is done' });
    expect(posted.channel).toBe('D0ALICE');
    expect(fake.calls[0]!.args.channel).toBe('U0ALICE');
  });

  it('records a violation for a message of 51 blocks', async () => {
    const blocks = Array.from({ length: 51 }, (_, index) => section(`line ${index}`));
    await web.chat.postMessage({ channel: 'C0BUILDS', text: 'Build #1', blocks });
    expect(fake.violations).toEqual([
      { method: 'chat.postMessage', problems: ['blocks: 51 blocks, more than 50 in a message'] },
    ]);
  });

  it('checks a Home tab published with views.publish', async () => {
    const blocks = Array.from({ length: 101 }, (_, index) => section(`line ${index}`));
    await web.views.publish({
      user_id: 'U0ALICE',
      view: { type: 'home', blocks: blocks.slice(1) },
    });
    expect(fake.violations).toEqual([]);
    await web.views.publish({ user_id: 'U0ALICE', view: { type: 'home', blocks } });
    expect(fake.violations).toEqual([
      { method: 'views.publish', problems: ['blocks: 101 blocks, more than 100 in a home'] },
    ]);
  });

  it('puts an unexpected method, or a call without a bot token, in unexpected', async () => {
    await expect(web.apiCall('conversations.list', {})).rejects.toThrow(/unknown_method/);
    const anonymous = new WebClient(undefined, {
      slackApiUrl: fake.apiUrl,
      retryConfig: { retries: 0 },
      logLevel: LogLevel.ERROR,
    });
    await expect(anonymous.chat.postMessage({ channel: 'C0BUILDS', text: 'hi' })).rejects.toThrow(
      /not_authed/,
    );
    expect(fake.unexpected.map((call) => call.method)).toEqual([
      'conversations.list',
      'chat.postMessage',
    ]);
    expect(fake.calls).toEqual([]);
  });

  it('records a POST to a response_url with its key', async () => {
    const response = await fetch(fake.responseUrl('build-7'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ replace_original: false, text: 'Retrying build #7' }),
    });
    expect(response.status).toBe(200);
    expect(fake.calls).toEqual([
      {
        method: 'response_url',
        args: { replace_original: false, text: 'Retrying build #7' },
        key: 'build-7',
      },
    ]);
  });

  it('lists the members of a user group, and refuses an unknown one', async () => {
    const listed = await web.usergroups.users.list({ usergroup: 'S0RELEASE' });
    expect(listed.users).toEqual(['U0ALICE', 'U0BOB']);
    await expect(web.usergroups.users.list({ usergroup: 'S0NOBODY' })).rejects.toThrow(
      /no_such_subteam/,
    );
  });

  it('refuses apps.connections.open without the app token', async () => {
    await expect(web.apps.connections.open()).rejects.toThrow(/invalid_auth/);
    expect(fake.unexpected.map((call) => call.method)).toEqual(['apps.connections.open']);
  });

  it('delivers Socket Mode envelopes to a real SocketModeClient and returns its ack', async () => {
    const client = new SocketModeClient({
      appToken: 'xapp-test-token',
      clientOptions: { slackApiUrl: fake.apiUrl },
      logLevel: LogLevel.ERROR,
    });
    const received: unknown[] = [];
    client.on('slash_commands', async ({ ack, body }) => {
      received.push(body);
      await ack({ text: 'ok' });
    });
    client.on('app_home_opened', async ({ ack, event, retry_num }) => {
      received.push({ event, retry_num });
      await ack();
    });
    try {
      await client.start();
      await fake.socket.connected();
      const command = { command: '/crossdock', text: 'build acme/hello', user_id: 'U0ALICE' };
      const ack = await fake.socket.send('slash_commands', command);
      const opened = appHomeOpenedEvent('U0ALICE');
      const eventAck = await fake.socket.send('events_api', eventEnvelope(opened), {
        retryAttempt: 1,
        retryReason: 'timeout',
      });

      expect(ack).toEqual({ envelope_id: expect.any(String), payload: { text: 'ok' } });
      expect(eventAck).toEqual({ envelope_id: expect.any(String), payload: {} });
      expect(received).toEqual([command, { event: opened, retry_num: 1 }]);
      expect(fake.calls.map((call) => call.method)).toEqual(['apps.connections.open']);
      expect(fake.unexpected).toEqual([]);
    } finally {
      await client.disconnect();
    }
  });

  it('rejects a Socket Mode send when no client is connected', async () => {
    await expect(fake.socket.send('interactive', {})).rejects.toThrow(/no Socket Mode client/);
  });
});
