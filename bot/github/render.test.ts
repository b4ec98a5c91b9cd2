import { describe, expect, it } from 'vitest';
import type { Artifact } from '../../db/queries/artifacts';
import type { Build, Job } from '../../db/queries/builds';
import type { BuildView } from '../build-view';
import { GITHUB_MAX_TEXT, escapeMarkdown, renderCheckRun, renderPullComment } from './render';
import { releaseAssetName } from './reporter';

const build = {
  id: 7,
  sha: 'a'.repeat(40),
  ref: 'pr-5',
  pullNumber: 5,
  trusted: true,
} as Build;
const job = (fields: Partial<Job>): Job =>
  ({
    id: 70,
    buildId: 7,
    target: 'arm64',
    platform: 'linux/arm64',
    toolchain: 'cross',
    toolchains: ['cross'],
    image: 'crossdock/builder-debian:bookworm',
    imageDigest: null,
    state: 'queued',
    error: null,
    reuseOfJobId: null,
    startedAt: null,
    finishedAt: null,
    ...fields,
  }) as Job;
const artifact = (name: string): Artifact => ({
  id: 9,
  jobId: 70,
  name,
  objectKey: 'k',
  size: 2048,
  sha256: 'b'.repeat(64),
  createdAt: new Date(),
});
const view = (jobs: Job[], extra: Partial<BuildView> = {}): BuildView => ({
  build,
  repo: { id: 1, owner: 'acme', name: 'hello' } as BuildView['repo'],
  jobs,
  artifactsByJob: new Map(),
  logTails: new Map(),
  queueReasons: new Map(),
  ...extra,
});

describe('check runs', () => {
  it.each<[Job['state'], string, string | undefined]>([
    ['queued', 'queued', undefined],
    ['running', 'in_progress', undefined],
    ['succeeded', 'completed', 'success'],
    ['failed', 'completed', 'failure'],
    ['canceled', 'completed', 'cancelled'],
    ['timed_out', 'completed', 'timed_out'],
  ])('a %s job is %s (%s)', (state, status, conclusion) => {
    const fields = renderCheckRun(view([job({ state })]), job({ state }), 'http://portal');
    expect(fields.status).toBe(status);
    expect(fields.conclusion).toBe(conclusion);
    expect(fields.name).toBe('crossdock/arm64');
    expect(fields.details_url).toBe('http://portal/builds/7');
  });

  it('escapes file names and fences a log that contains fences', () => {
    const failed = job({ state: 'failed', error: 'script exited with 1' });
    const hostile = artifact('x](https://evil.example)<img src=x>.tar.gz');
    const fields = renderCheckRun(
      view([failed], {
        artifactsByJob: new Map([[70, [hostile]]]),
        logTails: new Map([[70, 'before\n```\n[click](https://evil.example)\n````\nafter']]),
      }),
      failed,
      'http://portal',
    );
    expect(fields.output.summary).not.toContain('](https://evil.example)');
    expect(fields.output.summary).not.toContain('<img');
    expect(fields.output.summary).toContain('2.0 KiB');
    // The log is in a fence longer than any run of backticks in it, so it cannot close early.
    expect(fields.output.text).toMatch(/^Last lines of the log:\n\n`````\n/);
    expect(fields.output.text!.trimEnd().endsWith('`````')).toBe(true);
  });

  it('stays within GitHub limits however long the log', () => {
    const failed = job({ state: 'failed' });
    const fields = renderCheckRun(
      view([failed], { logTails: new Map([[70, 'x'.repeat(200_000)]]) }),
      failed,
      'http://portal',
    );
    expect(fields.output.text!.length).toBeLessThanOrEqual(GITHUB_MAX_TEXT);
  });
});

describe('the pull request comment', () => {
  it('shows the newest build of each target and escapes user text', () => {
    const body = renderPullComment(
      {
        pullNumber: 5,
        builds: [{ build, jobs: [job({ state: 'succeeded' })] }],
        artifactsByJob: new Map([[70, [artifact('hello|world.deb')]]]),
        held: [{ sha: 'c'.repeat(40), text: 'all' }],
        notice: '@x said <script>alert(1)</script>',
      },
      'http://portal',
    );
    expect(body.startsWith('<!-- crossdock:pull-request -->')).toBe(true);
    expect(body).toContain('| arm64 | [#7](http://portal/builds/7)');
    expect(body).toContain('hello&#124;world.deb');
    expect(body).not.toContain('<script>');
    expect(body).toContain('Held: `all` at `cccccccccccc`');
  });

  it('escapes every Markdown and HTML character people could use', () => {
    const escaped = escapeMarkdown('[a](b) *c* _d_ `e` <f> #g |h| ~i~ !j &k @team https://x\nl');
    // Only numeric character references remain of them, and no line break.
    expect(escaped.replace(/&#\d+;/g, '')).toBe('ab c d e f g h i j k team https//x l');
  });
});

describe('release asset names', () => {
  it.each([
    ['arm64', 'hello_2.10_arm64.deb', 'hello_2.10_arm64.deb'],
    ['arm64', 'hello', 'arm64-hello'],
    ['arm64', 'SHA256SUMS', 'arm64-SHA256SUMS'],
    ['arm64-docker', 'hello_arm64.deb', 'arm64-docker-hello_arm64.deb'],
    ['amd64', 'dist/hello.tar.gz', 'amd64-dist-hello.tar.gz'],
  ])('%s: %s → %s', (target, name, expected) => {
    expect(releaseAssetName(target, name)).toBe(expected);
  });
});
