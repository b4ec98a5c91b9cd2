import { describe, expect, it } from 'vitest';
import { createQuietGate } from './follow-up';

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
    const gate = createQuietGate(requests, { quietMs: 20, maxWaitMs: 5000, sampleMs: 5 });
    const burst = requestsFor(requests, 300);
    await sleep(10);
    const waited = gate.wait(performance.now()).then(() => performance.now());
    const [lastRequest, released] = await Promise.all([burst, waited]);
    gate.stop();
    expect(released).toBeGreaterThan(lastRequest);
  });

  it('lets work go after maxWaitMs even while requests keep arriving', async () => {
    const requests = counter();
    const gate = createQuietGate(requests, { quietMs: 20, maxWaitMs: 100, sampleMs: 5 });
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
