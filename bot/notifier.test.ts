import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebClient } from '@slack/web-api';
import { createLogger } from '../core/logger';
import { createBuild, setBuildNotify } from '../db/queries/builds';
import { builds, jobs } from '../db/schema';
import { startFakeSlackApi } from '../test/fakes/slack-api';
import { buildRequest } from '../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { startNotifier } from './notifier';

const log = createLogger({ name: 'notifier-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const JOB = {
  target: 'amd64',
  platform: 'linux/amd64',
  toolchains: ['native'],
  image: 'builder:1',
  spec: { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 5 },
};

describe('startNotifier', () => {
  let database: TestDatabase;
  let slack: Awaited<ReturnType<typeof startFakeSlackApi>>;
  beforeAll(async () => {
    database = await createTestDatabase();
    slack = await startFakeSlackApi();
  });
  afterAll(async () => {
    await slack.close();
    await database.drop();
  });

  it('refreshes the messages of running builds every refreshMs, and leaves queued ones be', async () => {
    const running = await createBuild(database.db, buildRequest('notifier', { jobs: [JOB] }));
    const queued = await createBuild(database.db, buildRequest('notifier', { jobs: [JOB] }));
    await database.db
      .update(jobs)
      .set({ state: 'running', startedAt: new Date(), workerId: 'w1' })
      .where(eq(jobs.buildId, running.build.id));
    await database.db
      .update(builds)
      .set({ state: 'running' })
      .where(eq(builds.id, running.build.id));
    for (const [build, ts] of [
      [running, '1700000000.000100'],
      [queued, '1700000000.000200'],
    ] as const)
      await setBuildNotify(database.db, build.build.id, {
        slack: { channel: 'C0BUILDS', ts, user: 'U0ALICE' },
      });

    const notifier = startNotifier({
      db: database.db,
      slack: new WebClient('xoxb-test-token', { slackApiUrl: slack.apiUrl }),
      portalUrl: 'http://127.0.0.1:9',
      log,
      pollMs: 100,
      refreshMs: 300,
    });
    await sleep(1200);
    await notifier.stop();

    const edits = (ts: string) =>
      slack.calls.filter((call) => call.method === 'chat.update' && call.args.ts === ts).length;
    // The running build: edited at once (never reported yet), then every ~300 ms for 1.2 s.
    expect(edits('1700000000.000100')).toBeGreaterThanOrEqual(3);
    // The queued one: edited once (its state was never reported), then not again.
    expect(edits('1700000000.000200')).toBe(1);
    expect(slack.unexpected).toEqual([]);
  });
});
