import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger';
import { CHANNELS } from '../db/notify';
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { startPassLoop } from './pass-loop';

const log = createLogger({ name: 'pass-loop-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A pass that records when it started and ended (performance.now(), ms) and takes `ms`. */
function recordingPass(ms: number) {
  const runs: { start: number; end?: number }[] = [];
  const pass = async () => {
    const run: { start: number; end?: number } = { start: performance.now() };
    runs.push(run);
    await sleep(ms);
    run.end = performance.now();
  };
  return { runs, pass };
}

describe('startPassLoop', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('never overlaps passes, and a poke during a pass runs exactly one more after it', async () => {
    const { runs, pass } = recordingPass(100);
    const loop = startPassLoop({ db: database.db, pass, log, pollMs: 60_000 });
    await sleep(20); // the first pass (at start) is running
    for (let poke = 0; poke < 5; poke += 1) loop.poke();
    await sleep(400);
    await loop.stop();
    expect(runs).toHaveLength(2);
    expect(runs[1]!.start).toBeGreaterThanOrEqual(runs[0]!.end!);
  });

  it('with minGapMs, a burst of NOTIFYs and pokes costs one pass per gap', async () => {
    const { runs, pass } = recordingPass(5);
    const loop = startPassLoop({ db: database.db, pass, log, pollMs: 60_000, minGapMs: 200 });
    await sleep(100); // the first pass ran, and LISTEN is set up
    const burstStart = performance.now();
    let lastChangeAt = burstStart;
    for (let change = 0; change < 20; change += 1) {
      lastChangeAt = performance.now();
      await database.db.$client.notify(CHANNELS.builds, String(change));
      loop.poke();
      await sleep(20);
    }
    const burstMs = performance.now() - burstStart;
    await sleep(300);
    await loop.stop();
    const starts = runs.map((run) => run.start);
    const gaps = starts.slice(1).map((start, index) => start - starts[index]!);
    // 20 changes over burstMs (≥ 400 ms) made a handful of passes, each ≥ 200 ms after the last.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(199);
    expect(runs.length).toBeLessThanOrEqual(2 + Math.ceil(burstMs / 200));
    expect(runs.length).toBeGreaterThanOrEqual(3);
    // The last change was seen: a pass started after it.
    expect(starts.at(-1)!).toBeGreaterThanOrEqual(lastChangeAt);
  });
});
