import type { WebClient } from '@slack/web-api';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { listUnreportedBuilds, markBuildReported } from '../db/queries/builds';
import { loadBuildView } from './build-view';
import { startPassLoop, type PassLoop } from './pass-loop';
import { renderBuildMessage } from './slack/messages';

/**
 * Reports build state changes back to Slack: edits each build's message (`chat.update`) when its
 * state differs from the last one reported, in passes run by startPassLoop (woken by NOTIFY, with
 * polling), so each state is reported once.
 */
export function startNotifier(options: {
  db: Database;
  slack: WebClient;
  portalUrl: string;
  log: Logger;
  pollMs?: number;
}): PassLoop {
  const { db, slack, portalUrl, log } = options;
  const pass = async () => {
    for (const build of await listUnreportedBuilds(db)) {
      const slackTarget = build.notify.slack;
      if (!slackTarget?.ts) continue;
      try {
        const view = await loadBuildView(db, build.id);
        if (!view) continue;
        await slack.chat.update({
          channel: slackTarget.channel,
          ts: slackTarget.ts,
          ...renderBuildMessage(view, portalUrl),
        });
        await markBuildReported(db, build.id, view.build.state);
        log.debug({ buildId: build.id, state: view.build.state }, 'build message updated');
      } catch (error) {
        log.warn(
          { err: error, buildId: build.id },
          'updating the build message failed; retrying on the next pass',
        );
      }
    }
  };
  return startPassLoop({ db, pass, log, pollMs: options.pollMs });
}
