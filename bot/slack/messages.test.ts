import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../db/queries/artifacts';
import type { Build, BuildWithJobs, Job } from '../../db/queries/builds';
import type { WorkerStatus } from '../../db/queries/workers';
import type { Repo } from '../../db/queries/repos';
import { checkBlockKit, checkMessageText } from '../../test/fakes/block-kit';
import type { BuildView } from '../build-view';
import {
  SLACK_MAX_BLOCKS,
  escapeMrkdwn,
  renderBuildList,
  renderBuildMessage,
  renderDirectMessage,
  renderHeldMessage,
  renderHelp,
  renderHome,
  renderLogReply,
  renderTargets,
  renderWorkers,
  type SlackMessage,
} from './messages';

const PORTAL = 'http://127.0.0.1:8080';
const LONG = 'x'.repeat(62);
const repo = { id: 1, owner: 'acme', name: 'widget' } as Repo;
const build = (fields: Partial<Build> = {}): Build =>
  ({
    id: 42,
    sha: 'c'.repeat(40),
    ref: 'feature/<script>&"quotes"',
    state: 'running',
    trusted: true,
    requester: 'slack:U0ALICE',
    ...fields,
  }) as Build;
const job = (index: number, fields: Partial<Job> = {}): Job =>
  ({
    id: 100 + index,
    buildId: 42,
    target: `${LONG.slice(0, 55)}-${index}`,
    platform: 'linux/arm64',
    toolchain: 'cross',
    toolchains: ['native', 'cross', 'emulated'],
    state: 'running',
    error: null,
    reuseOfJobId: null,
    startedAt: new Date(Date.now() - 90_000),
    finishedAt: null,
    ...fields,
  }) as Job;
const artifact = (jobId: number, index: number): Artifact => ({
  id: jobId * 100 + index,
  jobId,
  name: `dist/${'installer'.repeat(20)}-${index}.tar.gz`,
  objectKey: 'k',
  size: 123_456_789,
  sha256: 'd'.repeat(64),
  createdAt: new Date(),
});

/** A build of `count` targets, in `state`, each job with 20 artifacts and a 100 KB log tail. */
function hugeView(count: number, state: Build['state'], jobState: Job['state']): BuildView {
  const jobs = Array.from({ length: count }, (_, index) =>
    job(index, {
      state: jobState,
      error: jobState === 'failed' ? `script exited with 1 ${'<&>'.repeat(800)}` : null,
      finishedAt: jobState === 'running' ? null : new Date(),
    }),
  );
  return {
    build: build({ state }),
    repo,
    jobs,
    artifactsByJob: new Map(
      jobs.map((j) => [j.id, Array.from({ length: 20 }, (_, index) => artifact(j.id, index))]),
    ),
    logTails: new Map(
      jobState === 'failed'
        ? jobs.map((j) => [j.id, '\u001b[31merror\u001b[0m '.repeat(6000)])
        : [],
    ),
    queueReasons: new Map(),
  };
}

const withinLimits = (message: SlackMessage) => {
  expect(checkBlockKit('message', message.blocks)).toEqual([]);
  expect(checkMessageText(message.text)).toEqual([]);
};

describe('Slack messages stay within Block Kit limits', () => {
  it.each([
    ['queued', 'queued'],
    ['running', 'running'],
    ['succeeded', 'succeeded'],
    ['failed', 'failed'],
    ['canceled', 'canceled'],
  ] as const)('a 60-target build message, %s', (state, jobState) => {
    const view = hugeView(60, state, jobState);
    const message = renderBuildMessage(view, PORTAL);
    withinLimits(message);
    expect(message.blocks).toHaveLength(SLACK_MAX_BLOCKS);
    expect(JSON.stringify(message.blocks)).toContain('…and 14 more targets: see the portal.');
  });

  it('a failed job: its log reply, and the direct message', () => {
    const view = hugeView(60, 'failed', 'failed');
    const reply = renderLogReply(view, view.jobs[0]!, PORTAL);
    withinLimits(reply);
    // The end of the log is kept, without ANSI colours.
    expect(JSON.stringify(reply.blocks)).toMatch(/error ```"/);
    expect(JSON.stringify(reply.blocks)).not.toContain('\\u001b');
    withinLimits(renderDirectMessage(view, PORTAL));
  });

  it('lists, the fleet, targets, help, held requests and the Home tab', () => {
    const rows: BuildWithJobs[] = Array.from({ length: 80 }, (_, index) => ({
      build: build({ id: index + 1 }),
      repo,
      jobs: hugeView(30, 'running', 'running').jobs,
    }));
    withinLimits(renderBuildList(rows, 'Recent builds', PORTAL));
    const workers = Array.from(
      { length: 200 },
      (_, index) =>
        ({
          id: `worker-${LONG}-${index}`,
          platforms: ['linux/amd64', 'linux/arm64'],
          emulatedPlatforms: ['linux/riscv64'],
          slots: 4,
          runningJobIds: [1, 2],
          live: index % 2 === 0,
          stoppedAt: null,
        }) as unknown as WorkerStatus,
    );
    const queue = Array.from({ length: 40 }, (_, index) => ({
      runPlatform: `linux/p${index}`,
      queued: 5,
      running: 1,
      workers: 2,
      freeSlots: 0,
    }));
    withinLimits(renderWorkers(workers, queue, PORTAL));
    withinLimits(
      renderTargets(
        'acme/widget',
        'main',
        Array.from({ length: 300 }, (_, index) => ({
          name: `${LONG}-${index}`,
          platform: 'linux/arm64',
          toolchains: ['cross'],
        })),
      ),
    );
    withinLimits(renderHelp());
    const request = {
      text: 'all pr-7',
      repo: 'acme/widget',
      userId: 'U0ALICE',
      resolved: { sha: 'e'.repeat(40), pullNumber: 7, trusted: false },
      targets: Array.from({ length: 300 }, (_, index) => `${LONG}-${index}`),
    };
    withinLimits(renderHeldMessage(9, request, 'held'));
    withinLimits(renderHeldMessage(9, request, 'dismissed', 'U0MAINT'));
    const home = renderHome(
      { mine: rows, running: rows, workers, queue, directMessages: true },
      PORTAL,
    );
    expect(home.type).toBe('home');
    expect(checkBlockKit('home', home.blocks)).toEqual([]);
  });

  it('escapes what users control: refs, targets, file names', () => {
    const message = renderBuildMessage(hugeView(1, 'succeeded', 'succeeded'), PORTAL);
    const text = JSON.stringify(message.blocks);
    expect(text).toContain('feature/&lt;script&gt;&amp;');
    expect(text).not.toContain('<script>');
    expect(escapeMrkdwn('<!channel> & <@U1|x>')).toBe('&lt;!channel&gt; &amp; &lt;@U1|x&gt;');
  });
});

describe('a failed job log reply', () => {
  it('keeps the last lines of a log full of < and &, escaped, whole, and closes its fence', () => {
    const view = hugeView(1, 'failed', 'failed');
    const lines = Array.from(
      { length: 400 },
      (_, index) => `error: no match for std::vector<int> & ${index}`,
    );
    view.logTails.set(view.jobs[0]!.id, lines.join('\n'));
    const reply = renderLogReply(view, view.jobs[0]!, PORTAL);
    const text = (reply.blocks[1] as { text: { text: string } }).text.text;
    expect(text.length).toBeLessThanOrEqual(3000);
    expect(text.endsWith('std::vector&lt;int&gt; &amp; 399```')).toBe(true);
    expect(text).not.toMatch(/&(?!amp;|lt;|gt;)/);
    expect(text).not.toContain('<int>');
  });
});
