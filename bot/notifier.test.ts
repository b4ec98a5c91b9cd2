import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebClient } from '@slack/web-api';
import { createLogger } from '../core/logger';
import { createBuild, setBuildNotify, type NewJob } from '../db/queries/builds';
import { builds, jobs } from '../db/schema';
import { startFakeSlackApi } from '../test/fakes/slack-api';
import { buildRequest } from '../test/support/queue';
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { startNotifier } from './notifier';

const log = createLogger({ name: 'notifier-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const JOB: NewJob = {
  target: 'amd64',
  platform: 'linux/amd64',
  toolchains: ['native'],
  image: 'builder:1',
  spec: { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 5 },
};

/** Stores a build of one job, running, whose running state is already shown in message `ts`. */
async function runningBuild(database: TestDatabase, ts: string, reported: boolean) {
  const stored = await createBuild(database.db, buildRequest('notifier', { jobs: [JOB] }));
  await database.db
    .update(jobs)
    .set({ state: 'running', startedAt: new Date(), workerId: 'w1' })
    .where(eq(jobs.buildId, stored.build.id));
  await database.db
    .update(builds)
    .set({ state: 'running', reportedState: reported ? 'running' : null })
    .where(eq(builds.id, stored.build.id));
  await setBuildNotify(database.db, stored.build.id, {
    slack: { channel: 'C0BUILDS', ts, user: 'U0ALICE' },
  });
  return stored.build.id;
}

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

  /**
   * Runs a notifier (polling every 100 ms) until `done()` holds (checked every 50 ms; at most
   * 20 s, so that a slow machine only makes it run longer), then stops it.
   */
  const runNotifier = async (
    done: () => boolean,
    options: { refreshMs: number; pageSize?: number },
  ) => {
    const notifier = startNotifier({
      db: database.db,
      slack: new WebClient('xoxb-test-token', { slackApiUrl: slack.apiUrl }),
      portalUrl: 'http://127.0.0.1:9',
      log,
      pollMs: 100,
      ...options,
    });
    for (const until = Date.now() + 20_000; !done() && Date.now() < until;) await sleep(50);
    await notifier.stop();
  };
  /** How many times the message `ts` was edited. */
  const edits = (ts: string) =>
    slack.calls.filter((call) => call.method === 'chat.update' && call.args.ts === ts).length;

  it('refreshes the messages of running builds every refreshMs, and leaves queued ones be', async () => {
    await runningBuild(database, '1700000000.000100', false);
    const queued = await createBuild(database.db, buildRequest('notifier', { jobs: [JOB] }));
    await setBuildNotify(database.db, queued.build.id, {
      slack: { channel: 'C0BUILDS', ts: '1700000000.000200', user: 'U0ALICE' },
    });

    await runNotifier(() => edits('1700000000.000100') >= 3, { refreshMs: 300 });
    // The running build: edited at once (never reported yet), then every ~300 ms.
    expect(edits('1700000000.000100')).toBeGreaterThanOrEqual(3);
    // The queued one: edited once (its state was never reported), then not again.
    expect(edits('1700000000.000200')).toBe(1);
    expect(slack.unexpected).toEqual([]);
  });

  it('visits every open build in turn when there are more than a page', async () => {
    const stamps = Array.from({ length: 5 }, (_, index) => `1700000001.00000${index}`);
    for (const ts of stamps) await runningBuild(database, ts, true);
    await runNotifier(() => stamps.every((ts) => edits(ts) >= 1), {
      refreshMs: 200,
      pageSize: 2,
    });
    // Each of the five running builds' messages was refreshed, two builds read per pass.
    for (const ts of stamps) expect(edits(ts), ts).toBeGreaterThanOrEqual(1);
  });
});
