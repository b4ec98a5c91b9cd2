import { stripAnsi } from '../core/ansi';
import type { Job } from '../db/queries/builds';
import { isFinished } from './build-details';

/** Where to read a job's log from, as a log URL's query asks it. */
export interface LogQuery {
  /** The attempt (1, 2, …; 0 before the first claim); undefined for the latest. */
  attempt: number | undefined;
  /** The first chunk to return (0, 1, 2, …): the `nextSeq` of the previous answer. */
  fromSeq: number;
}

/** Query parameters at most this many digits long: 999 999 999 fits PostgreSQL's int4. */
const COUNT = /^\d{1,9}$/;

/**
 * Reads the `attempt` and `from` parameters of a log URL (`?attempt=2&from=5`), both optional
 * non-negative integers in decimal ASCII digits. Returns the query, or a message for people
 * naming the bad parameter (for a 400 answer): a sign, a fraction, an empty value or more than 9
 * digits are refused.
 */
export function parseLogQuery(params: {
  attempt?: string | undefined;
  from?: string | undefined;
}): LogQuery | { error: string } {
  for (const name of ['attempt', 'from'] as const) {
    const value = params[name];
    if (value !== undefined && !COUNT.test(value)) {
      return {
        error: `${name} must be a non-negative integer of at most 9 digits, e.g. ?${name}=2; got ${JSON.stringify(value.slice(0, 20))}`,
      };
    }
  }
  return {
    attempt: params.attempt === undefined ? undefined : Number(params.attempt),
    fromSeq: params.from === undefined ? 0 : Number(params.from),
  };
}

/**
 * The JSON answer of `GET /api/v1/jobs/:id/log` for attempt `log.attempt` of `job`:
 * - `text`: the log from chunk `from` on, with ANSI escape sequences removed and CRLF turned
 *   into LF (core/ansi.ts `stripAnsi`, as on the HTML log page; the raw bytes are at
 *   `/jobs/:id/log.txt`). Each answer is stripped on its own, so an escape sequence the worker
 *   happened to split across two chunks can leave a fragment at the seam.
 * - `nextSeq`: the `from` to ask for next; equal to `from` when nothing new was written.
 * - `state`: the job's current state (for an older attempt too).
 * - `done`: nothing more will be written to this attempt: it is an older attempt, or the job is
 *   finished (not queued or running). A job queued again after an attempt ended is not done: its
 *   next attempt will have a log of its own (ask for it with `attempt` = the old one + 1).
 */
export function logToJson(
  job: Pick<Job, 'id' | 'state' | 'attempt'>,
  log: { attempt: number; text: string; nextSeq: number },
) {
  return {
    jobId: job.id,
    attempt: log.attempt,
    state: job.state,
    text: stripAnsi(log.text),
    nextSeq: log.nextSeq,
    done: log.attempt < job.attempt || isFinished(job.state),
  };
}
