import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger';
import { createQuietGate, startSlackFollowUp, type FollowUpTask } from './follow-up';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Bumps `counter` every 5 ms for `ms`; resolves with performance.now() of the last bump. */
async function requestsFor(counter: Int32Array, ms: number): Promise<number> {
  const until = performance.now() + ms;
  let last = performance.now();
  while (performance.now() < until) {
    Atomics.add(counter, 0, 1);
    last = performance.now();
    await sleep(5);
  }
  return last;
}

describe('createQuietGate', () => {
  const counter = () => new Int32Array(new SharedArrayBuffer(4));

  it('lets work start at once when no request is arriving', async () => {
    const requests = counter();
    const gate = createQuietGate(requests, { quietMs: 20, maxWaitMs: 5000, sampleMs: 5 });
    await sleep(30);
    let released = false;
    void gate.wait(performance.now()).then(() => (released = true));
    // Resolved without waiting on a timer: two microtask turns suffice.
    await Promise.resolve();
    await Promise.resolve();
    gate.stop();
    expect(released).toBe(true);
  });

  it('holds work back while requests arrive, and lets it go once they pause', async () => {
    const requests = counter();
    // A quiet period far longer than the 5 ms between requests: a busy machine that stalls this
    // process for a few tens of ms must not look like a pause.
    const gate = createQuietGate(requests, { quietMs: 200, maxWaitMs: 5000, sampleMs: 5 });
    const burst = requestsFor(requests, 500);
    await sleep(10);
    const waited = gate.wait(performance.now()).then(() => performance.now());
    const [lastRequest, released] = await Promise.all([burst, waited]);
    gate.stop();
    expect(released).toBeGreaterThan(lastRequest);
  });

  it('lets work go after maxWaitMs even while requests keep arriving', async () => {
    const requests = counter();
    const gate = createQuietGate(requests, { quietMs: 200, maxWaitMs: 100, sampleMs: 5 });
    const burst = requestsFor(requests, 1000);
    await sleep(10);
    const since = performance.now();
    await gate.wait(since);
    const released = performance.now();
    const lastRequest = await burst;
    gate.stop();
    expect(released - since).toBeGreaterThanOrEqual(99);
    expect(released).toBeLessThan(lastRequest);
  });
});

describe('startSlackFollowUp', () => {
  const scripted = new URL('../../test/support/scripted-follow-up-thread.ts', import.meta.url);
  const log = createLogger({ name: 'follow-up-test', level: 'silent' });
  const options = (gitCacheDir: string) => ({
    slack: { botToken: 'xoxb-test', botId: 'B0', botUserId: 'U0', channelRepos: {} },
    portalUrl: 'http://127.0.0.1:9',
    databaseUrl: 'postgres://unused@127.0.0.1:9/unused',
    gitCacheDir,
    log: { name: 'follow-up-test', level: 'silent' },
  });
  const home: FollowUpTask = { kind: 'home', userId: 'U0ALICE' };

  it('starts the thread again after it dies: its task fails, later ones wait for the new thread', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossdock-follow-up-'));
    const followUp = await startSlackFollowUp(options(dir), log, scripted);
    try {
      expect(followUp.healthy()).toBe(true);
      // The first thread dies at its first task: that task is rejected, not left hanging.
      await expect(followUp.run(home, { to: 'caller' })).rejects.toThrow(/ended \(exit code 1\)/);
      expect(followUp.healthy()).toBe(false);
      // Handed over while no thread runs: it waits for the next one (started after 1 s).
      const reply = await followUp.run(home, { to: 'caller' });
      expect(reply).toEqual({ text: 'done home', blocks: [] });
      expect(followUp.healthy()).toBe(true);
      expect(readFileSync(join(dir, 'starts'), 'utf8')).toBe('xx');
    } finally {
      await followUp.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    await expect(followUp.run(home, { to: 'caller' })).rejects.toThrow(/stopping/);
  });

  it('rejects when the thread fails to start', async () => {
    await expect(
      startSlackFollowUp(options(join(tmpdir(), 'crossdock-follow-up-fail')), log, scripted),
    ).rejects.toThrow(/ended \(exit code 1\)/);
  });
});
