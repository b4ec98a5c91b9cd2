import type { Worker } from 'node:worker_threads';
import type { Command } from '../../core/command';
import { reportError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { startTypeScriptThread } from '../../core/threads';
import type { GitHubOptions, SlackSettings } from '../config';
import { renderText } from './messages';
import type { SlackReply, SlackRequester } from './service';

/** The buttons whose click runs follow-up work, by the service method that does it. */
export type ButtonWork = 'cancel' | 'retry' | 'approve' | 'dismiss';

/** Work that follows a Slack request's acknowledgement. */
export type FollowUpTask =
  /** A parsed `/build` command; `text` is what was typed after `/build`. */
  | { kind: 'command'; who: SlackRequester; command: Command; text: string }
  /** A click on a build's or held request's button; `id` is the build's or hold's id. */
  | { kind: 'button'; work: ButtonWork; who: SlackRequester; id: number }
  /** The Home tab's switch for direct messages. */
  | { kind: 'direct-messages'; userId: string; on: boolean }
  /** The Home tab was opened: publish it. */
  | { kind: 'home'; userId: string };

/** Where a task's answer goes. */
export interface Delivery {
  /**
   * `response_url`: the follow-up thread posts it there itself (api.slack.com/interactivity/
   * handling#message_responses), as a new message (replace_original false), or nowhere when the
   * request came with none (the Home tab). `caller`: `run` resolves with it, for the
   * acknowledging thread to answer in the acknowledgement (or through response_url if late).
   */
  to: 'response_url' | 'caller';
  responseUrl?: string;
}

/** What the follow-up thread needs to build its own database pool, sources and Slack client. */
export interface FollowUpInit {
  /** Without the signing secret and app token, which only the acknowledging thread uses. */
  slack: Omit<SlackSettings, 'signingSecret' | 'appToken'>;
  portalUrl: string;
  databaseUrl: string;
  github?: GitHubOptions;
  gitCacheDir: string;
  log: { name: string; level: string };
  /** The notifier's fallback poll, in ms (default 5000). */
  notifierPollMs?: number;
  /**
   * A counter (one Int32 over a SharedArrayBuffer) the acknowledging thread bumps for every
   * request it receives: the follow-up thread starts new work only once it stops moving.
   */
  requests: Int32Array;
}

/** Messages to the follow-up thread. */
export type ToFollowUp =
  { type: 'task'; id: number; task: FollowUpTask; delivery: Delivery } | { type: 'stop' };

/** Messages from the follow-up thread. */
export type FromFollowUp =
  | { type: 'ready' }
  /** Task `id` is done; `reply` is set when its delivery was `caller`. */
  | { type: 'done'; id: number; reply?: SlackReply }
  | { type: 'stopped' };

/** The follow-up thread, as the acknowledging thread uses it. */
export interface SlackFollowUp {
  /**
   * Hands `task` to the follow-up thread. Resolves once it is done, with its answer when
   * `delivery.to` is `caller` (undefined when there is nothing to answer, e.g. a started build,
   * whose answer is its channel message). Rejects if the thread ends before it is done, or the
   * bot is stopping.
   */
  run(task: FollowUpTask, delivery: Delivery): Promise<SlackReply | undefined>;
  /** Notes a request received from Slack (cheap: one atomic add), for the quiet gate. */
  received(): void;
  /** Whether a follow-up thread is running and ready (false while it is being started again). */
  healthy(): boolean;
  /** Lets the thread finish its tasks (up to `graceMs`, default 10 s), then ends it. */
  stop(graceMs?: number): Promise<void>;
}

/** How the follow-up thread gives way to acknowledgements. */
export interface QuietGateOptions {
  /** Requests must have stopped arriving for this long before new work starts, in ms. */
  quietMs: number;
  /** Work waits at most this long for a quiet moment, so that it is never starved, in ms. */
  maxWaitMs: number;
  /** How often the counter is read, in ms. */
  sampleMs: number;
}

export const QUIET_GATE: QuietGateOptions = { quietMs: 20, maxWaitMs: 1000, sampleMs: 5 };

/**
 * The follow-up thread's side of `requests`: `wait(since)` resolves once no request has arrived
 * for `quietMs`, or `maxWaitMs` after `since` (performance.now() of when the work arrived), whichever is first. On two cores a burst of acknowledgements is otherwise slowed by the
 * very follow-up work (and the PostgreSQL backends it keeps busy) that the burst brings; Slack
 * allows 3 s for an acknowledgement and 30 minutes for the answer through response_url, so the
 * answers wait. `stop()` ends the sampling timer.
 */
export function createQuietGate(requests: Int32Array, options: QuietGateOptions = QUIET_GATE) {
  let seen = Atomics.load(requests, 0);
  let lastRequestAt = performance.now();
  const sample = () => {
    const now = Atomics.load(requests, 0);
    if (now !== seen) {
      seen = now;
      lastRequestAt = performance.now();
    }
  };
  const timer = setInterval(sample, options.sampleMs);
  timer.unref();
  return {
    async wait(since: number): Promise<void> {
      sample();
      while (
        performance.now() - lastRequestAt < options.quietMs &&
        performance.now() - since < options.maxWaitMs
      ) {
        await new Promise((resolve) => setTimeout(resolve, options.sampleMs));
        sample();
      }
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * A thrown error as the answer to its requester, logged at its level: a user's mistake or a
 * refusal (CrossdockError) says what to do instead; anything else is an internal error.
 */
export function errorReply(error: unknown, log: Logger): SlackReply {
  const report = reportError(error);
  log[report.level]({ err: error, code: report.code }, 'slack request refused');
  return renderText(report.reply);
}

/**
 * An answer as a message response (api.slack.com/interactivity/handling#message_responses): what
 * an acknowledgement carries and what is POSTed to a response_url. Ephemeral unless the reply
 * says otherwise.
 */
export function responseMessage(reply: SlackReply) {
  return {
    response_type: reply.visibility ?? ('ephemeral' as const),
    text: reply.text,
    blocks: reply.blocks,
  };
}

/** How long the thread may take to load and connect before it counts as failed, in ms. */
const START_TIMEOUT_MS = 60_000;
/** Wait before a crashed thread is started again, in ms; doubled after each failed start. */
const RESTART_DELAY_MS = 1000;
/** The longest wait between two starts, in ms. */
const RESTART_MAX_DELAY_MS = 30_000;

/** A task handed over, until the thread says it is done. */
interface Handover {
  message: Extract<ToFollowUp, { type: 'task' }>;
  /** Posted to the current thread (else waiting for one that is ready). */
  sent: boolean;
  resolve: (reply: SlackReply | undefined) => void;
  reject: (error: Error) => void;
}

/**
 * Starts the Slack follow-up thread (bot/slack/follow-up-thread.ts): a worker thread with its own
 * database pool, source hosts and Slack Web API client that runs the work after each
 * acknowledgement (commands, buttons, the Home tab) and the notifier. The acknowledging thread
 * then does nothing but verify, parse and acknowledge, so its latency does not depend on how
 * much follow-up work is in flight (decision 0008). Resolves once the thread is ready; rejects
 * if it fails to start (or is not ready within 60 s).
 *
 * A thread that ends later is logged and started again after 1 s, doubling up to 30 s while
 * starts fail. The tasks it had taken are rejected (their requesters are told); tasks handed over
 * meanwhile wait for the next thread, and are rejected if that one fails to start too.
 */
export async function startSlackFollowUp(
  options: Omit<FollowUpInit, 'requests'>,
  log: Logger,
  /** The thread's module; tests give one that follows a script. */
  entry = new URL('./follow-up-thread.ts', import.meta.url),
): Promise<SlackFollowUp> {
  const requests = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
  const init: FollowUpInit = { ...options, requests };
  const handovers = new Map<number, Handover>();
  let nextId = 0;
  let thread: Worker | undefined;
  let ready = false;
  let started = false;
  let stopping = false;
  let failedStarts = 0;
  let stopped: (() => void) | undefined;

  /** Rejects the handovers `which` selects with `error`. */
  const rejectWhere = (which: (handover: Handover) => boolean, error: Error) => {
    for (const [id, handover] of handovers)
      if (which(handover)) {
        handovers.delete(id);
        handover.reject(error);
      }
  };

  const restartLater = () => {
    const delayMs = Math.min(RESTART_MAX_DELAY_MS, RESTART_DELAY_MS * 2 ** failedStarts);
    log.error({ delayMs }, 'the Slack follow-up thread ended; starting it again');
    setTimeout(() => {
      if (!stopping) start().catch(() => {}); // logged by its exit
    }, delayMs).unref();
  };

  const start = () =>
    new Promise<void>((resolve, reject) => {
      const worker = startTypeScriptThread(entry, init, 'crossdock-slack-follow-up');
      thread = worker;
      const startTimer = setTimeout(() => {
        log.error('the Slack follow-up thread did not start within 60 s');
        void worker.terminate();
      }, START_TIMEOUT_MS);
      worker.on('message', (message: FromFollowUp) => {
        if (message.type === 'ready') {
          clearTimeout(startTimer);
          ready = true;
          started = true;
          failedStarts = 0;
          for (const handover of handovers.values())
            if (!handover.sent) {
              worker.postMessage(handover.message);
              handover.sent = true;
            }
          resolve();
        } else if (message.type === 'done') {
          handovers.get(message.id)?.resolve(message.reply);
          handovers.delete(message.id);
        } else if (message.type === 'stopped') stopped?.();
      });
      worker.on('error', (error) => log.error({ err: error }, 'the Slack follow-up thread failed'));
      worker.on('exit', (code) => {
        clearTimeout(startTimer);
        const wasReady = ready;
        ready = false;
        thread = undefined;
        const ended = new Error(`the Slack follow-up thread ended (exit code ${code})`);
        const taken = [...handovers.values()].filter((handover) => handover.sent).length;
        if (taken) log.error({ tasks: taken }, 'Slack requests were acknowledged but not finished');
        rejectWhere((handover) => handover.sent, ended);
        if (!wasReady) {
          failedStarts += 1;
          // Waiting tasks had their chance: a thread that does not start may not start again.
          rejectWhere(() => true, ended);
          reject(ended);
        }
        if (started && !stopping) restartLater();
      });
    });

  try {
    await start();
  } catch (error) {
    stopping = true;
    await thread?.terminate();
    throw error;
  }

  return {
    received() {
      Atomics.add(requests, 0, 1);
    },
    healthy: () => ready,
    run(task, delivery) {
      if (stopping) return Promise.reject(new Error('the bot is stopping'));
      const id = (nextId += 1);
      return new Promise((resolve, reject) => {
        const message: Handover['message'] = { type: 'task', id, task, delivery };
        const handover: Handover = { message, sent: false, resolve, reject };
        handovers.set(id, handover);
        if (ready && thread) {
          thread.postMessage(message);
          handover.sent = true;
        }
      });
    },
    async stop(graceMs = 10_000) {
      stopping = true;
      rejectWhere((handover) => !handover.sent, new Error('the bot is stopping'));
      const worker = thread;
      if (!worker) return;
      const done = new Promise<void>((resolve) => (stopped = resolve));
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ type: 'stop' } satisfies ToFollowUp);
      const grace = setTimeout(() => void worker.terminate(), graceMs);
      await Promise.race([done.then(() => exited), exited]);
      clearTimeout(grace);
    },
  };
}
