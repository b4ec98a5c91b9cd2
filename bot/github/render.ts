import { stripAnsi } from '../../core/ansi';
import { formatBytes, formatDuration, formatToolchain } from '../../core/format';
import { portalUrls } from '../../core/urls';
import type { Artifact } from '../../db/queries/artifacts';
import type { Build, Job } from '../../db/queries/builds';
import type { JobState } from '../../db/schema';
import type { BuildView } from '../build-view';

/** GitHub's limit on a check run's output.summary and output.text, and on a comment's body. */
export const GITHUB_MAX_TEXT = 65_535;

/** Marks Crossdock's comment on a pull request, so that it is found again and never doubled. */
export const PULL_COMMENT_MARKER = '<!-- crossdock:pull-request -->';

/** A check run's fields (docs.github.com/rest/checks/runs#update-a-check-run). */
export interface CheckRunFields {
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'cancelled' | 'timed_out' | 'neutral';
  details_url: string;
  external_id: string;
  started_at?: string;
  completed_at?: string;
  output: { title: string; summary: string; text?: string };
}

const CONCLUSIONS: Partial<Record<JobState, CheckRunFields['conclusion']>> = {
  succeeded: 'success',
  failed: 'failure',
  canceled: 'cancelled',
  timed_out: 'timed_out',
};

const ICONS: Record<string, string> = {
  queued: '⏳',
  running: '⚙️',
  succeeded: '✅',
  failed: '❌',
  timed_out: '⏰',
  canceled: '🚫',
};

/**
 * Escapes text for GitHub-flavoured Markdown (github.github.com/gfm): the punctuation that could
 * start a link, emphasis, code, HTML or a table cell, and line breaks. For names people control
 * (branches, targets, file names, error messages).
 */
export function escapeMarkdown(text: string): string {
  // `@` too, so a file name cannot mention people or teams; `:` keeps bare URLs from linking.
  return text
    .replace(/[\\`*_{}[\]()<>#+!|~&@:]/g, (char) => `&#${char.charCodeAt(0)};`)
    .replace(/\r?\n/g, ' ');
}

/** An inline code span of `text`: backticks, which could close it, become `'`. */
function codeSpan(text: string): string {
  return `\`${text.replace(/`/g, "'").replace(/\r?\n/g, ' ')}\``;
}

/** A fenced code block that no line of `text` can close (a fence longer than any run of backticks). */
function codeBlock(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}\n${text}\n${fence}`;
}

function clip(text: string, max = GITHUB_MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The name of a target's check run: `crossdock/arm64`. */
export const checkRunName = (target: string) => `crossdock/${target}`;

/** Markdown table rows of artifacts: name (download link), size, sha256. */
function artifactRows(artifacts: Artifact[], portalUrl: string): string[] {
  return artifacts.map(
    (artifact) =>
      `| [${escapeMarkdown(artifact.name)}](${portalUrls.artifactDownload(portalUrl, artifact.id, artifact.name)}) | ${formatBytes(artifact.size)} | \`${artifact.sha256}\` |`,
  );
}

/**
 * The check run of one job of a build: queued → in_progress → completed with the conclusion of
 * its outcome. The summary lists the artifacts (name with its download link, size, sha256); a
 * failed job's text is the end of its log. Within GitHub's 65535-character limits.
 */
export function renderCheckRun(view: BuildView, job: Job, portalUrl: string): CheckRunFields {
  const { build } = view;
  const conclusion = CONCLUSIONS[job.state];
  const status =
    conclusion !== undefined ? 'completed' : job.state === 'running' ? 'in_progress' : 'queued';
  const elapsed =
    job.startedAt && job.finishedAt
      ? ` in ${formatDuration(job.finishedAt.getTime() - job.startedAt.getTime())}`
      : '';
  const title = `${job.target}: ${job.state.replace('_', ' ')}${elapsed}`;
  const lines = [
    `Build [#${build.id}](${portalUrls.build(portalUrl, build.id)}) of \`${build.sha.slice(0, 12)}\`: ` +
      `target **${escapeMarkdown(job.target)}** for ${job.platform} (${formatToolchain(job)}), ` +
      `builder image ${codeSpan(job.image)}${job.imageDigest ? ` (${job.imageDigest.slice(0, 19)})` : ''}.`,
  ];
  if (!build.trusted)
    lines.push(
      '',
      'Built as untrusted code (a fork’s pull request): no secrets, no shared caches.',
    );
  if (job.state === 'queued' && view.queueReasons.has(job.id))
    lines.push('', `Waiting: ${escapeMarkdown(view.queueReasons.get(job.id)!)}`);
  if (job.reuseOfJobId !== null && job.state === 'succeeded')
    lines.push('', 'Reused: an identical job of this commit made these artifacts.');
  const artifacts = view.artifactsByJob.get(job.id) ?? [];
  if (artifacts.length > 0)
    lines.push(
      '',
      '| Artifact | Size | sha256 |',
      '|---|---|---|',
      ...artifactRows(artifacts, portalUrl),
    );
  if (job.error) lines.push('', `Error: ${escapeMarkdown(job.error)}`);
  lines.push('', `[Log](${portalUrls.jobLog(portalUrl, job.id)})`);
  const tail = view.logTails.get(job.id);
  return {
    name: checkRunName(job.target),
    status,
    ...(conclusion ? { conclusion } : {}),
    details_url: portalUrls.build(portalUrl, build.id),
    external_id: String(job.id),
    ...(job.startedAt ? { started_at: job.startedAt.toISOString() } : {}),
    ...(conclusion && job.finishedAt ? { completed_at: job.finishedAt.toISOString() } : {}),
    output: {
      title,
      summary: clip(lines.join('\n')),
      ...(tail
        ? { text: clip(`Last lines of the log:\n\n${codeBlock(stripAnsi(tail).slice(-60_000))}`) }
        : {}),
    },
  };
}

/**
 * The neutral check run that shows a fork's pull request head awaiting approval, or (approved)
 * the success that replaces it.
 */
export function renderApprovalCheckRun(
  approvedBy?: string,
): Omit<CheckRunFields, 'details_url' | 'external_id'> {
  return approvedBy
    ? {
        name: 'crossdock/approval',
        status: 'completed',
        conclusion: 'success',
        output: {
          title: `Approved by @${approvedBy}`,
          summary: `@${escapeMarkdown(approvedBy)} approved building this commit with \`/ok-to-build\`.`,
        },
      }
    : {
        name: 'crossdock/approval',
        status: 'completed',
        conclusion: 'neutral',
        output: {
          title: 'Awaiting approval',
          summary:
            'This pull request comes from a fork whose author cannot write to the repository, so ' +
            'Crossdock builds nothing of it until a maintainer has read the change and comments ' +
            '`/ok-to-build`. That approves this commit only: a later push needs approval again.',
        },
      };
}

/** What the pull request's comment shows. */
export interface PullCommentView {
  pullNumber: number;
  /** Builds of the pull request, newest first, with their artifacts by job. */
  builds: { build: Build; jobs: Job[] }[];
  artifactsByJob: Map<number, Artifact[]>;
  /** Head shas held for approval, with the targets asked for. */
  held: { sha: string; text: string }[];
  notice?: string;
}

/**
 * Crossdock's one comment on a pull request (edited in place): the notice of the last command,
 * what is held for approval, and for each target its newest build with the artifacts' download
 * links, sizes and sha256. Starts with PULL_COMMENT_MARKER; within GitHub's 65536 characters.
 */
export function renderPullComment(view: PullCommentView, portalUrl: string): string {
  const lines = [PULL_COMMENT_MARKER, `### Crossdock builds of #${view.pullNumber}`, ''];
  if (view.notice) lines.push(`> ${escapeMarkdown(view.notice)}`, '');
  for (const hold of view.held) {
    lines.push(
      `⏸️ Held: ${codeSpan(hold.text)} at \`${hold.sha.slice(0, 12)}\` awaits a maintainer’s \`/ok-to-build\` (this pull request comes from a fork; approval covers one commit).`,
    );
  }
  if (view.held.length > 0) lines.push('');
  const newest = new Map<string, { build: Build; job: Job }>();
  for (const { build, jobs } of view.builds)
    for (const job of jobs) if (!newest.has(job.target)) newest.set(job.target, { build, job });
  if (newest.size > 0) {
    lines.push('| Target | Build | Commit | State | Artifacts |', '|---|---|---|---|---|');
    for (const [target, { build, job }] of [...newest].sort(([a], [b]) => a.localeCompare(b))) {
      const artifacts = (view.artifactsByJob.get(job.id) ?? []).map(
        (artifact) =>
          `[${escapeMarkdown(artifact.name)}](${portalUrls.artifactDownload(portalUrl, artifact.id, artifact.name)}) ${formatBytes(artifact.size)} \`${artifact.sha256.slice(0, 16)}…\``,
      );
      lines.push(
        `| ${escapeMarkdown(target)} | [#${build.id}](${portalUrls.build(portalUrl, build.id)}) | \`${build.sha.slice(0, 12)}\` | ${ICONS[job.state] ?? ''} ${job.state.replace('_', ' ')} | ${artifacts.join('<br>') || '—'} |`,
      );
    }
    lines.push('');
  }
  lines.push(
    '<sub>Comment `/build <targets>`, `/build cancel` or `/build retry`; label `build:<target>` to build every push.</sub>',
  );
  return clip(lines.join('\n'), 65_536);
}
