import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Database } from '../db/client';
import { getJob } from '../db/queries/jobs';
import { readLog } from '../db/queries/logs';
import { isFinished } from './build-details';
import { LogHtml } from './log-html';

/** How the stream of a job's log behaves (defaults in parentheses). */
export interface LiveLogOptions {
  /** How often new chunks and the job's state are read, in ms (1000). */
  pollMs?: number;
  /**
   * After this long, in ms, the stream ends and the browser reconnects, resuming after the last
   * line it got (Last-Event-ID) (300 000). Bounds how long one request holds a connection.
   */
  maxMs?: number;
}

/** Reconnection delay the stream asks browsers for, in ms (SSE `retry:`). */
const RETRY_MS = 2000;

/**
 * Streams attempt `attempt` of job `jobId`'s log as Server-Sent Events (WHATWG HTML
 * "Server-sent events"), for the log page's script (portal/static/portal.js):
 * - `lines`: HTML of new complete lines (LogHtml), joined by LF; its `id` is the number of the
 *   last line sent, so a reconnecting browser's `Last-Event-ID` resumes after it. Lines up to
 *   `afterLine` are not sent (the page has them).
 * - `state`: the job's state (queued, running, …), at the start and whenever it changes.
 * - `done`: the job finished or a new attempt started (its data: the state); the last line is
 *   sent even without a line end, then the stream ends.
 * The job is read before its new chunks: once it is finished, the chunks read after hold every
 * line (the worker stores them all before it records the outcome).
 */
export function streamLiveLog(
  c: Context,
  db: Database,
  log: { jobId: number; attempt: number; afterLine: number },
  options: LiveLogOptions = {},
): Response {
  const pollMs = options.pollMs ?? 1000;
  const maxMs = options.maxMs ?? 300_000;
  // streamSSE sends Cache-Control: no-cache. Reverse proxies (nginx) must pass events on as
  // they come.
  c.header('X-Accel-Buffering', 'no');
  return streamSSE(c, async (stream) => {
    let aborted = false;
    stream.onAbort(() => {
      aborted = true;
    });
    const html = new LogHtml();
    const send = async (lines: string[]) => {
      const first = html.lines - lines.length + 1;
      const fresh = lines.slice(Math.max(0, log.afterLine - first + 1));
      if (fresh.length === 0) return;
      await stream.writeSSE({
        event: 'lines',
        data: fresh.join('\n'),
        id: String(html.lines),
        retry: RETRY_MS,
      });
    };
    let nextSeq = 0;
    let state: string | undefined;
    const started = Date.now();
    while (!aborted) {
      const job = await getJob(db, log.jobId);
      const chunk = await readLog(db, log.jobId, { attempt: log.attempt, fromSeq: nextSeq });
      nextSeq = chunk.nextSeq;
      const done = !job || job.attempt > log.attempt || isFinished(job.state);
      await send(html.push(chunk.text));
      if (done) await send(html.flush());
      if (job && job.state !== state) {
        state = job.state;
        await stream.writeSSE({ event: 'state', data: job.state });
      }
      if (done) {
        await stream.writeSSE({ event: 'done', data: job?.state ?? 'gone' });
        return;
      }
      if (Date.now() - started >= maxMs) return;
      await stream.sleep(pollMs);
    }
  });
}
