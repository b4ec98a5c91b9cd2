import type { KnownBlock } from '@slack/types';
import { stripAnsi } from '../../core/ansi';
import { formatBytes, formatDuration, formatToolchain } from '../../core/format';
import { portalUrls } from '../../core/urls';
import type { BuildView } from '../build-view';

/** Slack's limits (api.slack.com/reference/block-kit/blocks): 50 blocks, 3000 chars per text. */
export const SLACK_MAX_BLOCKS = 50;
export const SLACK_MAX_TEXT = 3000;

const ICONS: Record<string, string> = {
  queued: ':hourglass_flowing_sand:',
  running: ':gear:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  timed_out: ':alarm_clock:',
  canceled: ':no_entry_sign:',
};

/** Escapes text for Slack mrkdwn (&, <, > as Slack's docs require). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max = SLACK_MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * The one channel message of a build, as `chat.postMessage` / `chat.update` arguments: a
 * fallback `text` and Block Kit `blocks`, within Slack's limits. Shows each job's state, and
 * when done its download links, or when failed the last lines of its log.
 */
export function renderBuildMessage(
  view: BuildView,
  portalUrl: string,
): { text: string; blocks: KnownBlock[] } {
  const { build, repo, jobs } = view;
  const repoName = `${repo.owner}/${repo.name}`;
  const headline =
    `${ICONS[build.state] ?? ''} Build #${build.id} of ${escapeMrkdwn(repoName)} ` +
    `\`${escapeMrkdwn(build.ref)}\` (${build.sha.slice(0, 12)}): *${build.state}*`;
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: clip(headline) } },
  ];
  for (const job of jobs) {
    const elapsed =
      job.startedAt && (job.finishedAt ?? (job.state === 'running' ? new Date() : undefined))
        ? ` in ${formatDuration((job.finishedAt ?? new Date()).getTime() - job.startedAt.getTime())}`
        : '';
    const lines = [
      `${ICONS[job.state] ?? ''} *${escapeMrkdwn(job.target)}* (${job.platform}, ${formatToolchain(job)}): ${job.state}${elapsed}` +
        (job.state === 'running' ? ` · <${portalUrls.jobLog(portalUrl, job.id)}|log>` : '') +
        (view.queueReasons.has(job.id)
          ? ` — ${escapeMrkdwn(view.queueReasons.get(job.id)!)}`
          : '') +
        (job.reuseOfJobId !== null && job.state === 'succeeded'
          ? ` (reused: an identical build of this commit made it)`
          : ''),
    ];
    for (const artifact of view.artifactsByJob.get(job.id) ?? []) {
      lines.push(
        `• <${portalUrls.artifactDownload(portalUrl, artifact.id, artifact.name)}|${escapeMrkdwn(artifact.name)}> ` +
          `${formatBytes(artifact.size)} · sha256 \`${artifact.sha256.slice(0, 16)}…\``,
      );
    }
    if (job.error)
      lines.push(`${escapeMrkdwn(job.error)} · <${portalUrls.jobLog(portalUrl, job.id)}|full log>`);
    const tail = view.logTails.get(job.id);
    if (tail) {
      const room = SLACK_MAX_TEXT - lines.join('\n').length - 20;
      const clipped = tail.length > room ? `…${tail.slice(tail.length - room)}` : tail;
      lines.push('```' + escapeMrkdwn(stripAnsi(clipped)) + '```');
    }
    if (blocks.length < SLACK_MAX_BLOCKS - 1) {
      blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(lines.join('\n')) } });
    }
  }
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: clip(
          `<${portalUrls.build(portalUrl, build.id)}|Open build #${build.id} in the portal> · <${portalUrls.commit(portalUrl, repo.owner, repo.name, build.sha)}|commit ${build.sha.slice(0, 12)}>`,
        ),
      },
    ],
  });
  const text = `Build #${build.id} of ${repoName} ${build.ref}: ${build.state} — ${portalUrls.build(portalUrl, build.id)}`;
  return { text, blocks };
}
