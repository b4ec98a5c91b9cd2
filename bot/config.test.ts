import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBotConfig } from './config';

describe("the bot's GitHub App settings", () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-config-'));
  const keyFile = join(dir, 'app.pem');
  writeFileSync(
    keyFile,
    '-----BEGIN RSA PRIVATE KEY-----\nnot checked here\n-----END RSA PRIVATE KEY-----\n',
  );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = {
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
    SLACK_SIGNING_SECRET: 's',
    SLACK_BOT_TOKEN: 'xoxb-1',
    SLACK_BOT_ID: 'B1',
    SLACK_BOT_USER_ID: 'U1',
  };
  const app = {
    GITHUB_API_URL: 'https://api.github.com',
    GITHUB_APP_ID: '123',
    GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
    GITHUB_WEBHOOK_SECRET: 'sixteen-chars-secret',
  };

  it('is off when none is set', () => {
    expect(loadBotConfig(base).githubApp).toBeUndefined();
  });

  it('reads the id, the key file and the secret', () => {
    const config = loadBotConfig({ ...base, ...app });
    expect(config.githubApp).toMatchObject({ appId: 123, webhookSecret: 'sixteen-chars-secret' });
    expect(config.githubApp!.privateKey).toContain('BEGIN RSA PRIVATE KEY');
  });

  it('refuses half a configuration, naming what to set', () => {
    expect(() =>
      loadBotConfig({ ...base, GITHUB_WEBHOOK_SECRET: app.GITHUB_WEBHOOK_SECRET }),
    ).toThrow(
      'the GitHub App needs GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY_FILE, GITHUB_API_URL and GITHUB_WEBHOOK_SECRET together',
    );
    expect(() => loadBotConfig({ ...base, ...app, GITHUB_WEBHOOK_SECRET: 'short' })).toThrow(
      'GITHUB_WEBHOOK_SECRET: must be at least 16 characters',
    );
  });
});

describe("the bot's Slack settings", () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = {
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
    SLACK_BOT_TOKEN: 'xoxb-1',
    SLACK_BOT_ID: 'B1',
    SLACK_BOT_USER_ID: 'U1',
  };

  it('serves HTTP with a signing secret by default, acknowledging at once', () => {
    const { slack } = loadBotConfig({ ...base, SLACK_SIGNING_SECRET: 's' });
    expect(slack).toMatchObject({ socketMode: false, ackWaitMs: 0, permissions: undefined });
  });

  it('takes Socket Mode with an app-level token instead of a signing secret', () => {
    const { slack } = loadBotConfig({
      ...base,
      SLACK_SOCKET_MODE: 'true',
      SLACK_APP_TOKEN: 'xapp-1-A1-1',
    });
    expect(slack).toMatchObject({ socketMode: true, appToken: 'xapp-1-A1-1' });
    expect(() => loadBotConfig({ ...base, SLACK_SOCKET_MODE: 'true' })).toThrow(
      'SLACK_SOCKET_MODE needs SLACK_APP_TOKEN',
    );
    expect(() => loadBotConfig(base)).toThrow('SLACK_SIGNING_SECRET is required');
    expect(() =>
      loadBotConfig({ ...base, SLACK_SOCKET_MODE: 'true', SLACK_APP_TOKEN: 'xoxb-wrong' }),
    ).toThrow('SLACK_APP_TOKEN: must be an app-level token');
  });

  it("bounds the acknowledgement wait below Slack's 3 s", () => {
    expect(
      loadBotConfig({ ...base, SLACK_SIGNING_SECRET: 's', SLACK_ACK_WAIT_MS: '1500' }).slack
        .ackWaitMs,
    ).toBe(1500);
    expect(() =>
      loadBotConfig({ ...base, SLACK_SIGNING_SECRET: 's', SLACK_ACK_WAIT_MS: '5000' }),
    ).toThrow('SLACK_ACK_WAIT_MS');
  });

  it('reads the permissions file at boot and names what is wrong in it', () => {
    const good = join(dir, 'good.yml');
    writeFileSync(good, 'repositories:\n  "acme/*":\n    build: ["*"]\n');
    const { slack } = loadBotConfig({
      ...base,
      SLACK_SIGNING_SECRET: 's',
      SLACK_PERMISSIONS_FILE: good,
    });
    expect(slack.permissions).toEqual({
      repositories: { 'acme/*': { build: ['*'], release: [], approve: [] } },
    });
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'repositories:\n  "acme/*":\n    build: [alice]\n');
    expect(() =>
      loadBotConfig({ ...base, SLACK_SIGNING_SECRET: 's', SLACK_PERMISSIONS_FILE: bad }),
    ).toThrow(
      `SLACK_PERMISSIONS_FILE ${bad}: repositories.acme/*.build.0: must be a Slack user id`,
    );
    expect(() =>
      loadBotConfig({
        ...base,
        SLACK_SIGNING_SECRET: 's',
        SLACK_PERMISSIONS_FILE: join(dir, 'missing.yml'),
      }),
    ).toThrow('cannot be read (ENOENT)');
  });
});
