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
