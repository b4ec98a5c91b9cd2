import type { WebClient } from '@slack/web-api';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { FINAL_BUILD_STATES } from '../db/schema';
import {
  listBuildsWithOpenMessages,
  listJobsOfBuilds,
  markBuildReported,
  setBuildNotify,
  type Build,
  type Job,
} from '../db/queries/builds';
import {
  claimSlackPost,
  releaseSlackPost,
  setSlackPostTs,
  wantsDirectMessages,
  type SlackPostKind,
} from '../db/queries/slack';
import { loadBuildView, type BuildView } from './build-view';
import { startPassLoop, type PassLoop } from './pass-loop';
import { renderBuildMessage, renderDirectMessage, renderLogReply } from './slack/messages';
import { slackError } from './slack/service';

/** The shortest time between the starts of two notifier passes, in ms. */
const PASS_GAP_MS = 250;

/** The Slack reporter: a pass loop told of each message the front end posts. */
export interface Notifier extends PassLoop {
  /** A build's message was just posted showing `view`: edit it only when that changes. */
  posted(view: BuildView): void;
}

/**
 * Slack's errors that no retry can fix (api.slack.com/methods/chat.update, chat.postMessage):
 * the message or channel is gone, or the bot may not post there.
 */
const PERMANENT_ERRORS = new Set([
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
  'channel_not_found',
  'is_archived',
  'not_in_channel',
  'cannot_dm_bot',
  'user_not_found',
  'user_disabled',
]);
const isPermanent = (error: unknown) => PERMANENT_ERRORS.has(slackError(error));

/**
 * What a build's message shows, from its rows alone (artifacts come with a job's success): a
 * change means an edit. Why a job waits and running jobs' elapsed time are left to the refresh.
 */
function fingerprint(build: Build, jobs: Job[]): string {
  return JSON.stringify([
    build.state,
    jobs.map((job) => [job.id, job.state, job.toolchain, job.error, job.workerId]),
  ]);
}

/**
 * Reports builds back to Slack, in passes run by startPassLoop (woken by NOTIFY, with polling):
 * edits each build's one channel message (chat.update) when what it shows changes (a job starts,
 * ends, or makes artifacts) and every `refreshMs` (default 60 000 ms) while jobs run, for their
 * elapsed time; posts each failed job's last log lines once as a reply in the message's thread;
 * and when the build ends, sends its requester one direct message unless they turned those off.
 * Each post is claimed in `slack_posts` first, so a retried pass never posts twice; a pass that
 * fails is retried by the next one, and the final state is marked reported only once all of it
 * was done. A pass reads the open builds whose state changed and the next `pageSize` of the
 * others, so that any number of open messages are all visited in turn.
 */
export function startNotifier(options: {
  db: Database;
  slack: WebClient;
  portalUrl: string;
  log: Logger;
  pollMs?: number;
  refreshMs?: number;
  /** Open builds read per pass besides those whose state changed (default 100). */
  pageSize?: number;
}): Notifier {
  const { db, slack, portalUrl, log } = options;
  const refreshMs = options.refreshMs ?? 60_000;
  const shown = new Map<number, { fingerprint: string; at: number }>();
  const pageSize = options.pageSize ?? 100;
  /** Where the next pass's page of open builds starts (builds whose state changed come too). */
  let cursor = 0;

  /** Posts `post` once for (build, kind, job): claimed first, released if Slack refuses it. */
  const postOnce = async (
    build: Build,
    kind: SlackPostKind,
    jobId: number,
    post: () => Promise<{ ts?: string }>,
  ) => {
    if (!(await claimSlackPost(db, build.id, kind, jobId))) return;
    try {
      const posted = await post();
      await setSlackPostTs(db, build.id, kind, jobId, posted.ts ?? '');
    } catch (error) {
      if (isPermanent(error)) {
        // Kept claimed: trying again would fail the same way.
        log.warn({ err: error, buildId: build.id, kind }, 'Slack refused a post for good; skipped');
        await setSlackPostTs(db, build.id, kind, jobId, '');
        return;
      }
      await releaseSlackPost(db, build.id, kind, jobId);
      throw error;
    }
  };

  /**
   * Reports one build whose rows were read as `print` (fingerprint) at `now`; `running`: one of
   * its jobs runs, so its elapsed time is refreshed every `refreshMs`.
   */
  const report = async (build: Build, print: string, running: boolean, now: number) => {
    const target = build.notify.slack;
    if (!target?.ts) return;
    const last = shown.get(build.id);
    // What was shown last (after a restart: what was marked reported) against what is now.
    const changed = last ? last.fingerprint !== print : build.reportedState !== build.state;
    // Only running jobs' elapsed time needs a refresh: refreshing every queued build's message
    // would spend Slack's chat.update allowance (about 50 a minute) on messages that show the same.
    const due = running && now - (last?.at ?? 0) >= refreshMs;
    // Nothing to edit and nothing to finish: skip without reading the build's view.
    if (!changed && !due && build.reportedState === build.state) return;
    const view = await loadBuildView(db, build.id);
    if (!view) return;
    const finished = FINAL_BUILD_STATES.includes(view.build.state);
    if (changed || due) {
      try {
        await slack.chat.update({
          channel: target.channel,
          ts: target.ts,
          ...renderBuildMessage(view, portalUrl, new Date(now)),
        });
      } catch (error) {
        if (!isPermanent(error)) throw error;
        // The message was deleted or its channel archived: stop reporting to it.
        log.warn({ err: error, buildId: build.id }, 'the build message is gone; no longer edited');
        await setBuildNotify(db, build.id, { ...build.notify, slack: undefined });
        shown.delete(build.id);
        return;
      }
      shown.set(build.id, { fingerprint: print, at: now });
      log.debug({ buildId: build.id, state: view.build.state }, 'build message updated');
    }
    for (const job of view.jobs) {
      if (!view.logTails.has(job.id)) continue;
      await postOnce(build, 'thread-log', job.id, () =>
        slack.chat.postMessage({
          channel: target.channel,
          thread_ts: target.ts,
          ...renderLogReply(view, job, portalUrl),
        }),
      );
    }
    if (!finished) {
      if (build.reportedState !== view.build.state)
        await markBuildReported(db, build.id, view.build.state);
      return;
    }
    if (target.user && (await wantsDirectMessages(db, target.user)))
      await postOnce(build, 'direct-message', 0, () =>
        slack.chat.postMessage({ channel: target.user!, ...renderDirectMessage(view, portalUrl) }),
      );
    await markBuildReported(db, build.id, view.build.state);
    shown.delete(build.id);
  };

  const pass = async () => {
    const { builds: open, nextAfterId } = await listBuildsWithOpenMessages(db, {
      afterId: cursor,
      limit: pageSize,
    });
    cursor = nextAfterId;
    const jobs = await listJobsOfBuilds(
      db,
      open.map((build) => build.id),
    );
    const now = Date.now();
    for (const build of open) {
      const own = jobs.filter((job) => job.buildId === build.id);
      const print = fingerprint(build, own);
      try {
        await report(
          build,
          print,
          own.some((job) => job.state === 'running'),
          now,
        );
      } catch (error) {
        log.warn(
          { err: error, buildId: build.id },
          'reporting the build to Slack failed; retrying on the next pass',
        );
      }
    }
  };
  // At most a few passes a second: each reads up to 100 open builds, and Slack allows about one
  // chat.update per second per channel anyway (api.slack.com/docs/rate-limits).
  const loop = startPassLoop({ db, pass, log, pollMs: options.pollMs, minGapMs: PASS_GAP_MS });
  return {
    ...loop,
    posted(view) {
      shown.set(view.build.id, { fingerprint: fingerprint(view.build, view.jobs), at: Date.now() });
      loop.poke();
    },
  };
}
