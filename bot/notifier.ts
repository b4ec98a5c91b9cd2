import type { WebClient } from '@slack/web-api';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { CHANNELS } from '../db/notify';
import { listUnreportedBuilds, markBuildReported } from '../db/queries/builds';
import { loadBuildView } from './build-view';
import { renderBuildMessage } from './slack/messages';

/**
 * Reports build state changes back to where they were requested: edits each build's Slack
 * message (`chat.update`) when its state differs from the last one reported. Woken by NOTIFY on
 * the builds channel, with a polling fallback; passes never overlap, so each state is reported
 * once. `stop()` resolves when the current pass is done.
 */
export function startNotifier(options: {
  db: Database;
  slack: WebClient;
  portalUrl: string;
  log: Logger;
  pollMs?: number;
}): { poke: () => void; stop: () => Promise<void> } {
  const { db, slack, portalUrl, log } = options;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

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
  const poke = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .catch((error) => log.warn({ err: error }, 'notifier pass failed'))
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
      await (await listening)?.unlisten().catch(() => {});
      await running;
    },
  };
}
