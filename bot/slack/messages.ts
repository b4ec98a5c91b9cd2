import type { ActionsBlock, Button, KnownBlock, View } from '@slack/types';
import { stripAnsi } from '../../core/ansi';
import { commandHelp } from '../../core/command';
import { formatBytes, formatDuration, formatToolchain } from '../../core/format';
import { portalUrls } from '../../core/urls';
import type { Build, BuildWithJobs, Job } from '../../db/queries/builds';
import type { PlatformQueue, WorkerStatus } from '../../db/queries/workers';
import { workerState } from '../../db/queries/workers';
import { UNSUCCESSFUL_JOB_STATES, type SlackHeldRequest } from '../../db/schema';
import type { BuildView } from '../build-view';

/**
 * Slack's Block Kit limits (api.slack.com/reference/block-kit/blocks, /block-elements):
 * 50 blocks in a message, 100 in a Home tab, 3000 characters in a section's text, 10 elements in
 * a context block, 75 characters in a button's text.
 */
export const SLACK_MAX_BLOCKS = 50;
export const SLACK_MAX_HOME_BLOCKS = 100;
export const SLACK_MAX_TEXT = 3000;
const SLACK_MAX_FALLBACK_TEXT = 4000;

/** The action ids of the buttons; their `value` is the build's (or held request's) id. */
export const ACTIONS = {
  cancel: 'build_cancel',
  retry: 'build_retry',
  approve: 'hold_approve',
  dismiss: 'hold_dismiss',
  openPortal: 'open_portal',
  directMessages: 'home_direct_messages',
} as const;

/** A message as chat.postMessage / chat.update / response_url take it. */
export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

const ICONS: Record<string, string> = {
  queued: ':hourglass_flowing_sand:',
  running: ':gear:',
  succeeded: ':white_check_mark:',
  failed: ':x:',
  timed_out: ':alarm_clock:',
  canceled: ':no_entry_sign:',
  held: ':raised_hand:',
  live: ':large_green_circle:',
  stopped: ':white_circle:',
  lost: ':red_circle:',
};

/** Escapes text for Slack mrkdwn (&, <, > as Slack's docs require). */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `text` cut to at most `max` characters, ending with … when cut. */
export function clip(text: string, max = SLACK_MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A mrkdwn section block, clipped to Slack's limit. */
function section(text: string): KnownBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(text) } };
}

function context(text: string): KnownBlock {
  return { type: 'context', elements: [{ type: 'mrkdwn', text: clip(text) }] };
}

function button(
  text: string,
  actionId: string,
  value: string,
  extra: Partial<Button> = {},
): Button {
  return {
    type: 'button',
    text: { type: 'plain_text', text: clip(text, 75) },
    action_id: actionId,
    value,
    ...extra,
  };
}

/** Fits `blocks` into `max`: the last kept block says how many were left out (see the portal). */
function fitBlocks(blocks: KnownBlock[], max: number, more: (left: number) => string) {
  if (blocks.length <= max) return blocks;
  const kept = blocks.slice(0, max - 1);
  return [...kept, context(more(blocks.length - kept.length))];
}

const repoName = (build: { repo: { owner: string; name: string } }) =>
  `${build.repo.owner}/${build.repo.name}`;

const elapsedOf = (job: Job, now: Date) =>
  job.startedAt && (job.finishedAt || job.state === 'running')
    ? formatDuration((job.finishedAt ?? now).getTime() - job.startedAt.getTime())
    : undefined;

/** One job as a mrkdwn line (or lines, with its artifacts and error). */
function jobLines(view: BuildView, job: Job, portalUrl: string, now: Date): string {
  const elapsed = elapsedOf(job, now);
  const state = job.state.replace('_', ' ');
  const lines = [
    `${ICONS[job.state] ?? ''} *${escapeMrkdwn(job.target)}* (${job.platform}, ${formatToolchain(job)}): ${state}` +
      (elapsed ? ` ${job.state === 'running' ? 'for' : 'in'} ${elapsed}` : '') +
      (job.state === 'running' ? ` · <${portalUrls.jobLog(portalUrl, job.id)}|live log>` : '') +
      (view.queueReasons.has(job.id) ? ` — ${escapeMrkdwn(view.queueReasons.get(job.id)!)}` : '') +
      (job.reuseOfJobId !== null && job.state === 'succeeded'
        ? ' (reused: an identical build of this commit made it)'
        : ''),
  ];
  for (const artifact of view.artifactsByJob.get(job.id) ?? []) {
    lines.push(
      `• <${portalUrls.artifactDownload(portalUrl, artifact.id, artifact.name)}|${escapeMrkdwn(artifact.name)}> ` +
        `${formatBytes(artifact.size)} · sha256 \`${artifact.sha256.slice(0, 16)}…\``,
    );
  }
  if (job.error)
    lines.push(
      `${escapeMrkdwn(job.error)} · <${portalUrls.jobLog(portalUrl, job.id)}|full log>` +
        (view.logTails.has(job.id) ? ' · last lines in the thread' : ''),
    );
  return lines.join('\n');
}

/** The buttons of a build's message: Cancel while it runs, Retry once something failed. */
function buildActions(view: BuildWithJobs, portalUrl: string): ActionsBlock {
  const { build } = view;
  const elements: Button[] = [];
  if (build.state === 'queued' || build.state === 'running') {
    elements.push(
      button('Cancel', ACTIONS.cancel, String(build.id), {
        style: 'danger',
        confirm: {
          title: { type: 'plain_text', text: `Cancel build #${build.id}?` },
          text: { type: 'mrkdwn', text: 'Its queued and running jobs stop; finished ones stay.' },
          confirm: { type: 'plain_text', text: 'Cancel the build' },
          deny: { type: 'plain_text', text: 'Keep it' },
        },
      }),
    );
  } else if (view.jobs.some((job) => UNSUCCESSFUL_JOB_STATES.includes(job.state))) {
    elements.push(button('Retry', ACTIONS.retry, String(build.id), { style: 'primary' }));
  }
  elements.push(
    button('Open in portal', ACTIONS.openPortal, String(build.id), {
      url: portalUrls.build(portalUrl, build.id),
    }),
  );
  return { type: 'actions', block_id: `build-${build.id}`, elements };
}

function headline(build: Build, repo: string, ref: string, state: string): string {
  return (
    `${ICONS[state] ?? ''} Build #${build.id} of *${escapeMrkdwn(repo)}* ` +
    `\`${escapeMrkdwn(ref)}\` (${build.sha.slice(0, 12)}): *${state.replace('_', ' ')}*` +
    (build.trusted ? '' : ' · untrusted code: no secrets')
  );
}

/**
 * The one channel message of a build, as chat.postMessage / chat.update arguments: a fallback
 * `text` and Block Kit `blocks` within Slack's limits (targets past the 50-block limit are
 * summed up and left to the portal). Each target shows its state and elapsed time, and when done
 * its download links or its error; buttons cancel, retry, or open the portal. `now` is when it is
 * rendered (for running jobs' elapsed time).
 */
export function renderBuildMessage(
  view: BuildView,
  portalUrl: string,
  now = new Date(),
): SlackMessage {
  const { build } = view;
  const repo = repoName(view);
  const jobs = view.jobs.map((job) => section(jobLines(view, job, portalUrl, now)));
  const requester = build.requester.startsWith('slack:')
    ? `<@${build.requester.slice('slack:'.length)}>`
    : escapeMrkdwn(build.requester);
  const blocks: KnownBlock[] = [
    section(headline(build, repo, build.ref, build.state)),
    // Room for the headline, the actions and the context.
    ...fitBlocks(
      jobs,
      SLACK_MAX_BLOCKS - 3,
      (left) => `…and ${left} more targets: see the portal.`,
    ),
    buildActions(view, portalUrl),
    context(
      `Requested by ${requester} · <${portalUrls.commit(portalUrl, view.repo.owner, view.repo.name, build.sha)}|commit ${build.sha.slice(0, 12)}>`,
    ),
  ];
  const text = clip(
    `Build #${build.id} of ${escapeMrkdwn(repo)} ${escapeMrkdwn(build.ref)}: ${build.state} — ${portalUrls.build(portalUrl, build.id)}`,
    SLACK_MAX_FALLBACK_TEXT,
  );
  return { text, blocks };
}

/** A failed job's last log lines, posted as a reply in the build message's thread. */
export function renderLogReply(view: BuildView, job: Job, portalUrl: string): SlackMessage {
  const intro = `*${escapeMrkdwn(job.target)}* ${job.state.replace('_', ' ')}: ${escapeMrkdwn(job.error ?? '')} · <${portalUrls.jobLog(portalUrl, job.id)}|full log>`;
  // Escaped first, then the end kept (never half an entity), so the last lines survive whole.
  const tail = escapeMrkdwn(stripAnsi(view.logTails.get(job.id) ?? '(the log is empty)'));
  const room = SLACK_MAX_TEXT - 8;
  let start = Math.max(0, tail.length - room + 1);
  // Cut inside `&amp;`, `&lt;` or `&gt;`: start after it.
  const entity = tail.lastIndexOf('&', start - 1);
  if (start > 0 && entity !== -1 && entity >= start - 4) start = tail.indexOf(';', entity) + 1;
  const clipped = start > 0 ? `…${tail.slice(start)}` : tail;
  return {
    text: clip(
      `${escapeMrkdwn(job.target)} ${job.state}: last lines of its log`,
      SLACK_MAX_FALLBACK_TEXT,
    ),
    blocks: [section(intro), section('```' + clipped + '```')],
  };
}

/** The direct message to the requester when their build ends (they can turn these off). */
export function renderDirectMessage(
  view: BuildView,
  portalUrl: string,
  link?: string,
): SlackMessage {
  const { build } = view;
  const repo = repoName(view);
  const summary = view.jobs.map((job) => `${ICONS[job.state] ?? ''} ${escapeMrkdwn(job.target)}`);
  return {
    text: `Your build #${build.id} of ${escapeMrkdwn(repo)} ${escapeMrkdwn(build.ref)} ${build.state}.`,
    blocks: [
      section(
        `${headline(build, repo, build.ref, build.state)}\n${summary.join('  ')}` +
          (link ? `\n<${link}|The build's message>` : ''),
      ),
      {
        type: 'actions',
        elements: [
          button('Open in portal', ACTIONS.openPortal, String(build.id), {
            url: portalUrls.build(portalUrl, build.id),
          }),
        ],
      },
      context('Turn these messages off in Crossdock’s Home tab.'),
    ],
  };
}

/** The message of a request held for approval: Approve builds it, Dismiss drops it. */
export function renderHeldMessage(
  holdId: number,
  request: SlackHeldRequest,
  state: 'held' | 'dismissed',
  decidedBy?: string,
): SlackMessage {
  const sha = request.resolved.sha.slice(0, 12);
  const what = `${request.targets.map(escapeMrkdwn).join(', ')} of *${escapeMrkdwn(request.repo)}* ${
    request.resolved.pullNumber ? `pull request #${request.resolved.pullNumber}` : ''
  } (${sha})`;
  if (state === 'dismissed')
    return {
      text: `Build request of ${escapeMrkdwn(request.repo)} at ${sha} dismissed.`,
      blocks: [
        section(
          `${ICONS.canceled} <@${request.userId}>'s build of ${what}: dismissed by <@${decidedBy}>.`,
        ),
      ],
    };
  return {
    text: `Build request of ${escapeMrkdwn(request.repo)} at ${sha} waits for approval.`,
    blocks: [
      section(
        `${ICONS.held} <@${request.userId}> asked to build ${what}. It is a fork's code, so someone ` +
          `who may approve fork builds must review ${sha} first; a later push needs approval again.`,
      ),
      {
        type: 'actions',
        block_id: `hold-${holdId}`,
        elements: [
          button('Approve', ACTIONS.approve, String(holdId), {
            style: 'primary',
            confirm: {
              title: { type: 'plain_text', text: `Build ${sha}?` },
              text: {
                type: 'mrkdwn',
                text: 'It builds without secrets and with empty caches. Approve only code you have read.',
              },
              confirm: { type: 'plain_text', text: 'Approve' },
              deny: { type: 'plain_text', text: 'Not yet' },
            },
          }),
          button('Dismiss', ACTIONS.dismiss, String(holdId)),
        ],
      },
    ],
  };
}

/** An ephemeral answer: plain mrkdwn in one section (clipped). */
export function renderText(text: string): SlackMessage {
  return { text: clip(text, SLACK_MAX_FALLBACK_TEXT), blocks: [section(text)] };
}

/** `/build help`: every Slack command, generated from core/command.ts COMMANDS. */
export function renderHelp(): SlackMessage {
  return {
    text: 'Crossdock commands',
    blocks: [
      section(`*Crossdock* builds your code for every platform.\n${commandHelp('slack')}`),
      context(
        'A ref is `pr-123`, `#123`, `owner/repo#123`, a branch, a tag or a commit sha. `all` builds every target.',
      ),
    ],
  };
}

function buildLine(row: BuildWithJobs, portalUrl: string): string {
  const { build } = row;
  const targets = row.jobs
    .map((job) => `${ICONS[job.state] ?? ''}${escapeMrkdwn(job.target)}`)
    .join(' ');
  return (
    `${ICONS[build.state] ?? ''} <${portalUrls.build(portalUrl, build.id)}|#${build.id}> ` +
    `${escapeMrkdwn(repoName(row))} \`${escapeMrkdwn(build.ref)}\` ${build.sha.slice(0, 8)} · ` +
    `${build.state} · ${targets}`
  );
}

/** `/build list`: recent builds, one line each, within the block limit. */
export function renderBuildList(
  rows: BuildWithJobs[],
  title: string,
  portalUrl: string,
): SlackMessage {
  if (rows.length === 0)
    return renderText(`${title}: none yet. Start one with \`/build <targets> <ref>\`.`);
  return {
    text: title,
    blocks: fitBlocks(
      [
        section(`*${escapeMrkdwn(title)}*`),
        ...rows.map((row) => section(buildLine(row, portalUrl))),
      ],
      SLACK_MAX_BLOCKS,
      (left) => `…and ${left} more in the portal.`,
    ),
  };
}

/** The fleet: each worker's state, platforms and running jobs, and the queue per platform. */
function fleetBlocks(workers: WorkerStatus[], queue: PlatformQueue[], portalUrl: string) {
  const workerLines = workers.map((worker) => {
    const state = workerState(worker);
    const platforms = [
      ...worker.platforms,
      ...worker.emulatedPlatforms.map((platform) => `${platform} (emulated)`),
    ].join(', ');
    return (
      `${ICONS[state]} \`${escapeMrkdwn(worker.id)}\` ${state} · ${escapeMrkdwn(platforms)} · ` +
      `${worker.runningJobIds.length}/${worker.slots} slots busy`
    );
  });
  const queueLines = queue.map(
    (platform) =>
      `\`${platform.runPlatform}\`: ${platform.queued} queued, ${platform.running} running, ` +
      `${platform.workers} workers with ${platform.freeSlots} free slots`,
  );
  return [
    section(
      `*Workers* (<${portalUrls.workers(portalUrl)}|fleet page>)\n${workerLines.join('\n') || 'No worker has registered yet.'}`,
    ),
    section(`*Queue*\n${queueLines.join('\n') || 'Nothing queued or running.'}`),
  ];
}

/** `/build workers`. */
export function renderWorkers(
  workers: WorkerStatus[],
  queue: PlatformQueue[],
  portalUrl: string,
): SlackMessage {
  const live = workers.filter((worker) => worker.live).length;
  return {
    text: `${live} live workers; ${queue.reduce((sum, platform) => sum + platform.queued, 0)} jobs queued`,
    blocks: fleetBlocks(workers, queue, portalUrl),
  };
}

/** `/build targets`: a recipe's targets with their platforms and toolchains. */
export function renderTargets(
  repo: string,
  branch: string,
  targets: { name: string; platform: string; toolchains: string[] }[],
): SlackMessage {
  const lines = targets.map(
    (target) =>
      `• \`${escapeMrkdwn(target.name)}\` ${target.platform} (${target.toolchains.join(', ')})`,
  );
  return renderText(
    `*${escapeMrkdwn(repo)}* at \`${escapeMrkdwn(branch)}\` has ${targets.length} targets:\n${lines.join('\n')}\n` +
      `Build one with \`/build ${escapeMrkdwn(targets[0]?.name ?? '<target>')} ${escapeMrkdwn(branch)}\`, or \`all\`.`,
  );
}

/**
 * The App Home tab of `userId` (views.publish): their recent builds, the running builds, the
 * workers and the queue, and the switch for direct messages. At most 100 blocks.
 */
export function renderHome(
  home: {
    mine: BuildWithJobs[];
    running: BuildWithJobs[];
    workers: WorkerStatus[];
    queue: PlatformQueue[];
    directMessages: boolean;
  },
  portalUrl: string,
): View {
  const list = (rows: BuildWithJobs[], none: string) =>
    rows.length ? rows.map((row) => section(buildLine(row, portalUrl))) : [context(none)];
  const blocks: KnownBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: 'Your recent builds' } },
    ...list(home.mine.slice(0, 20), 'None yet: type `/build help` in a channel to start.'),
    { type: 'divider' },
    { type: 'header', text: { type: 'plain_text', text: 'Running now' } },
    ...list(home.running.slice(0, 20), 'Nothing is queued or running.'),
    { type: 'divider' },
    ...fleetBlocks(home.workers, home.queue, portalUrl),
    { type: 'divider' },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: home.directMessages
          ? 'A direct message tells you when your build ends.'
          : 'Direct messages when your build ends are *off*.',
      },
      accessory: button(
        home.directMessages ? 'Turn off' : 'Turn on',
        ACTIONS.directMessages,
        home.directMessages ? 'off' : 'on',
      ),
    },
  ];
  return {
    type: 'home',
    blocks: fitBlocks(blocks, SLACK_MAX_HOME_BLOCKS, (left) => `…and ${left} more in the portal.`),
  };
}
