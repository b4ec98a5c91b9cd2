import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { CHANNELS } from '../db/notify';

/** A background reporter: `poke()` asks for a pass soon; `stop()` resolves once the current one is done. */
export interface PassLoop {
  poke: () => void;
  stop: () => Promise<void>;
}

/**
 * Runs `pass` when poked, on every NOTIFY of the builds channel, and every `pollMs` (default
 * 5000 ms) as a fallback for lost notifications. Passes never overlap: a poke during a pass
 * runs one more pass after it, so every change is seen and none twice at once. With `minGapMs`,
 * a pass starts at least that long after the previous one started, so that a burst of changes
 * (a build stored per second, each NOTIFYing) costs a pass per gap rather than back-to-back passes.
 * A pass that throws is logged (warn) and the next one tries again.
 */
export function startPassLoop(options: {
  db: Database;
  pass: () => Promise<void>;
  log: Logger;
  pollMs?: number;
  minGapMs?: number;
}): PassLoop {
  const { db, pass, log } = options;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let lastStart = -Infinity;
  let waiting: NodeJS.Timeout | undefined;
  const poke = () => {
    if (stopped) return;
    if (running || waiting) {
      again ||= Boolean(running);
      return;
    }
    const wait = lastStart + (options.minGapMs ?? 0) - performance.now();
    if (wait > 0) {
      waiting = setTimeout(() => {
        waiting = undefined;
        poke();
      }, wait);
      return;
    }
    lastStart = performance.now();
    running = pass()
      .catch((error) => log.warn({ err: error }, 'reporting pass failed'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          poke();
        }
      });
  };
  const timer = setInterval(poke, options.pollMs ?? 5000);
  const listening = db.$client.listen(CHANNELS.builds, poke).catch((error) => {
    log.warn({ err: error }, 'LISTEN failed; relying on polling');
    return undefined;
  });
  poke();
  return {
    poke,
    async stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(waiting);
      await (await listening)?.unlisten().catch(() => {});
      await running;
    },
  };
}
