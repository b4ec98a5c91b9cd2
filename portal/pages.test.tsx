import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRetentionDate } from '../core/retention';
import { portalUrls } from '../core/urls';
import type { NewBuild } from '../db/queries/builds';
import { claimJob } from '../db/queries/jobs';
import {
  createTestPortal,
  finishBuild,
  portalBuildRequest,
  portalJob,
} from '../test/support/portal-builds';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../test/support/services';
import { createPortalApp, type PortalDeps } from './app';
import { PORTAL_SCRIPT, PORTAL_STYLE } from './assets';
import { createBuild } from '../db/queries/builds';
import { setRepoVisibility } from '../db/queries/repos';

const BASE = 'http://portal.test';
const JOBS = [portalJob('amd64', 'linux/amd64'), portalJob('arm64', 'linux/arm64')];
const BRANCH = 'feature/<script>x';

describe('pages of branches, pull requests, artifacts, releases and the home page', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let app: ReturnType<typeof createPortalApp>;
  const portalWith = (options: Partial<PortalDeps> = {}) =>
    createTestPortal(database, bucket, {
      portalUrl: BASE,
      retentionPolicy: { pullRequestDays: 3, branchDays: 30 },
      ...options,
    });
  const ids: Record<string, number> = {};
  const file = (label: string) => Buffer.concat([Buffer.from(label), randomBytes(1000)]);
  const bytes = {
    oldAmd64: file('old amd64'),
    newArm64: file('new arm64'),
    pull: file('pull'),
    release: file('release'),
    provenance: Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}\n'),
  };
  let serial = 0;
  const request = (overrides: Partial<NewBuild>, repo = 'gadget'): NewBuild =>
    portalBuildRequest(repo, (++serial).toString(16).padStart(40, 'b'), {
      ref: BRANCH,
      branch: BRANCH,
      jobs: JOBS,
      reuse: false,
      ...overrides,
    });
  const get = async (url: string) => {
    const response = await app.request(url.slice(BASE.length));
    return { status: response.status, html: await response.text() };
  };

  beforeAll(async () => {
    [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
    const { db } = database;
    ids.old = await finishBuild(db, bucket, request({}), {
      amd64: { state: 'succeeded', files: { 'gadget.bin': bytes.oldAmd64 } },
      arm64: { state: 'succeeded' },
    });
    ids.new = await finishBuild(db, bucket, request({}), {
      amd64: { state: 'failed' },
      arm64: { state: 'succeeded', files: { 'gadget.bin': bytes.newArm64 } },
    });
    const pull = { ref: 'pr-7', branch: undefined, pullNumber: 7, trigger: 'label' as const };
    ids.pullOld = await finishBuild(db, bucket, request(pull), {
      amd64: { state: 'failed' },
      arm64: { state: 'failed' },
    });
    ids.pull = await finishBuild(db, bucket, request({ ...pull, trusted: false }), {
      amd64: { state: 'succeeded', files: { 'gadget.bin': bytes.pull } },
      arm64: { state: 'succeeded' },
    });
    const tag = { ref: 'v3.0.0', branch: undefined, tag: 'v3.0.0', trigger: 'tag' as const };
    ids.release = await finishBuild(db, bucket, request(tag), {
      amd64: {
        state: 'succeeded',
        files: { 'gadget-3.0.0.deb': bytes.release, 'provenance.intoto.json': bytes.provenance },
      },
      arm64: { state: 'succeeded' },
    });
    // A running job, and a private repository's build that anonymous visitors must not see.
    await createBuild(db, request({ ref: 'main', branch: 'main', jobs: [JOBS[0]!] }));
    await claimJob(db, { workerId: 'worker-a', platforms: ['linux/amd64'], leaseSeconds: 60 });
    await createBuild(db, request({ ref: 'main', branch: 'main', jobs: [JOBS[0]!] }, 'hidden'));
    await setRepoVisibility(db, 'acme', 'hidden', 'private');
    app = portalWith();
  });
  afterAll(async () => {
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  it('the repository page links its branches, pull requests and releases', async () => {
    const { html } = await get(portalUrls.repo(BASE, 'acme', 'gadget'));
    expect(html).toContain(`href="${portalUrls.branch(BASE, 'acme', 'gadget', BRANCH)}"`);
    expect(html).toContain('feature/&lt;script&gt;x</a>');
    expect(html).not.toContain('<script>x');
    expect(html).toContain(`<a href="${portalUrls.pull(BASE, 'acme', 'gadget', 7)}">#7</a>`);
    expect(html).toContain(
      `<a href="${portalUrls.release(BASE, 'acme', 'gadget', 'v3.0.0')}">v3.0.0</a>`,
    );
  });

  it('the branch page gives the newest successful build per target, by stable links', async () => {
    const { status, html } = await get(portalUrls.branch(BASE, 'acme', 'gadget', BRANCH));
    expect(status).toBe(200);
    // amd64 failed in the newer build: its latest success is the older one.
    const link = (target: string) =>
      portalUrls.branchDownload(BASE, 'acme', 'gadget', BRANCH, target, 'gadget.bin');
    expect(html).toContain(`href="${link('amd64')}"`);
    expect(html).toContain(`href="${link('arm64')}"`);
    expect(html).toContain(`href="${portalUrls.build(BASE, ids.old!)}">#${ids.old}</a>`);
    expect(html).toContain(`href="${portalUrls.build(BASE, ids.new!)}">#${ids.new}</a>`);
    const download = await app.request(link('amd64').slice(BASE.length));
    expect(Buffer.from(await download.arrayBuffer()).equals(bytes.oldAmd64)).toBe(true);
    expect(html).toContain(`<h1>Branch feature/&lt;script&gt;x <img src="`);
    expect((await get(portalUrls.branch(BASE, 'acme', 'gadget', 'nope'))).status).toBe(404);
  });

  it('the pull request page shows its newest build and all of them', async () => {
    const { status, html } = await get(portalUrls.pull(BASE, 'acme', 'gadget', 7));
    expect(status).toBe(200);
    expect(html).toContain(`<h2><a href="${portalUrls.build(BASE, ids.pull!)}">`);
    expect(html).toContain(`>#${ids.pullOld}</a>`);
    expect(html).toContain('Built from a fork: untrusted code');
    expect((await get(portalUrls.pull(BASE, 'acme', 'gadget', 8))).status).toBe(404);
    expect((await get(`${BASE}/acme/gadget/pull/x`)).status).toBe(404);
  });

  it('the artifact page says what it is, where it came from and when it expires', async () => {
    const page = (await get(portalUrls.build(BASE, ids.pull!))).html;
    const id = Number(/\/artifacts\/(\d+)"/.exec(page)![1]);
    const { status, html } = await get(portalUrls.artifact(BASE, id));
    expect(status).toBe(200);
    expect(html).toContain(createHash('sha256').update(bytes.pull).digest('hex'));
    const commit = await sha(ids.pull!);
    const stable = portalUrls.commitDownload(BASE, 'acme', 'gadget', commit, 'amd64', 'gadget.bin');
    expect(html).toContain(`<code>${stable}</code>`);
    // A pull request's artifacts expire 3 days (the policy) after the build finished.
    const build = (await (
      await app.request(`/api/v1/repos/acme/gadget/commits/${commit}/builds`)
    ).json()) as {
      builds: { finishedAt: string; retention: { class: string; expiresAt: string } }[];
    };
    const { finishedAt, retention } = build.builds[0]!;
    const expires = new Date(Date.parse(finishedAt) + 3 * 86_400_000);
    expect(retention).toMatchObject({ class: 'pull-request', expiresAt: expires.toISOString() });
    expect(html).toContain(`<td class="retention">expires ${formatRetentionDate(expires)}</td>`);
    expect(page).toContain(`Artifacts: expires ${formatRetentionDate(expires)}`);
    expect((await get(portalUrls.artifact(BASE, 999_999))).status).toBe(404);
  });

  /** The sha of build `id`, read from its page. */
  async function sha(id: number) {
    const { html } = await get(portalUrls.build(BASE, id));
    return /\/commit\/([0-9a-f]{40})"/.exec(html)![1]!;
  }

  it('the release page has copy buttons, the provenance and how long it is kept', async () => {
    const { html } = await get(portalUrls.release(BASE, 'acme', 'gadget', 'v3.0.0'));
    const url = portalUrls.releaseDownload(BASE, 'acme', 'gadget', 'v3.0.0', 'gadget-3.0.0.deb');
    const digest = createHash('sha256').update(bytes.release).digest('hex');
    expect(html).toContain(`<button type="button" hidden="" data-copy="${url}"`);
    expect(html).toContain(`<button type="button" hidden="" data-copy="${digest}"`);
    expect(html).toContain('Artifacts: kept: tag v3.0.0');
    expect(html).toMatch(
      /Provenance of amd64 \(in-toto, SLSA v1\): <a href="[^"]+provenance\.intoto\.json">/,
    );
    // The provenance is linked, not listed as an installer.
    expect(html).not.toMatch(/<td><a href="[^"]+">provenance\.intoto\.json<\/a>/);
    // The one script the CSP allows, which makes the buttons work.
    const script = await app.request('/static/portal.js');
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain('navigator.clipboard.writeText');
  });

  it('links a versioned style sheet and script, which browsers may keep for a year', async () => {
    const { html } = await get(`${BASE}/`);
    expect(html).not.toContain('<style>');
    for (const [asset, tag] of [
      [PORTAL_STYLE, `<link rel="stylesheet" href="${PORTAL_STYLE.url(BASE)}"/>`],
      [PORTAL_SCRIPT, `<script src="${PORTAL_SCRIPT.url(BASE)}" defer=""></script>`],
    ] as const) {
      expect(html).toContain(tag);
      const current = await app.request(asset.url(BASE).slice(BASE.length));
      expect(current.status).toBe(200);
      expect(current.headers.get('content-type')).toBe(asset.contentType);
      expect(current.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(await current.text()).toBe(readFileSync(`portal/static/${asset.name}`, 'utf8'));
      // An older page's version, or none, may be kept for minutes only.
      for (const stale of [`/static/${asset.name}?v=000000000000`, `/static/${asset.name}`])
        expect((await app.request(stale)).headers.get('cache-control')).toBe('public, max-age=300');
    }
    const style = await (await app.request(PORTAL_STYLE.url(BASE).slice(BASE.length))).text();
    expect(style).toContain('pre.log .line:target');
  });

  it('the home page shows running jobs, recent builds and the queue, public ones only', async () => {
    const { html } = await get(`${BASE}/`);
    expect(html).toMatch(
      /<h2>Running jobs<\/h2><ul><li><a href="[^"]+\/jobs\/\d+\/log">amd64 of build #\d+<\/a>/,
    );
    expect(html).toContain(`href="${portalUrls.build(BASE, ids.release!)}">#${ids.release}</a>`);
    // Counts only: the hidden repository's queued job is counted, not named.
    expect(html).toContain('linux/amd64: 1 running, 1 queued');
    expect(html).not.toContain('acme/hidden');
  });

  it('the JSON API gives what the pages show', async () => {
    const json = async (url: string) => {
      const response = await app.request(url.slice(BASE.length));
      expect({ url, status: response.status }).toEqual({ url, status: 200 });
      return (await response.json()) as Record<string, unknown>;
    };
    const repo = (await json(portalUrls.repoApi(BASE, 'acme', 'gadget'))) as {
      branches: { name: string; latest: { id: number } }[];
      pulls: { number: number; latest: { id: number } }[];
      tags: { tag: string }[];
    };
    expect(repo.branches.map((branch) => branch.name)).toEqual(['main', BRANCH]);
    expect(repo.pulls).toMatchObject([{ number: 7, latest: { id: ids.pull } }]);
    expect(repo.tags).toMatchObject([{ tag: 'v3.0.0' }]);

    const branch = (await json(portalUrls.branchApi(BASE, 'acme', 'gadget', BRANCH))) as {
      latest: { target: string; build: { id: number }; files: { downloadUrl: string }[] }[];
      builds: { id: number }[];
    };
    expect(branch.latest.map((entry) => [entry.target, entry.build.id])).toEqual([
      ['amd64', ids.old],
      ['arm64', ids.new],
    ]);
    expect(branch.latest[0]!.files[0]!.downloadUrl).toBe(
      portalUrls.branchDownload(BASE, 'acme', 'gadget', BRANCH, 'amd64', 'gadget.bin'),
    );
    expect(branch.builds.map((build) => build.id)).toEqual([ids.new, ids.old]);

    const pull = (await json(portalUrls.pullApi(BASE, 'acme', 'gadget', 7))) as {
      builds: { id: number }[];
    };
    expect(pull.builds.map((build) => build.id)).toEqual([ids.pull, ids.pullOld]);

    const build = (await json(portalUrls.buildApi(BASE, ids.release!))) as {
      retention: { class: string };
      jobs: { artifacts: { id: number; name: string }[] }[];
    };
    expect(build.retention).toMatchObject({ class: 'tag', expiresAt: null });
    const deb = build.jobs[0]!.artifacts.find((artifact) => artifact.name === 'gadget-3.0.0.deb')!;
    const artifact = await json(portalUrls.artifactApi(BASE, deb.id));
    expect(artifact).toMatchObject({
      name: 'gadget-3.0.0.deb',
      sha256: createHash('sha256').update(bytes.release).digest('hex'),
      target: 'amd64',
      build: { id: ids.release, tag: 'v3.0.0' },
      retention: { reason: 'kept: tag v3.0.0' },
    });

    const recent = (await json(portalUrls.buildsApi(BASE))) as { builds: { repo: string }[] };
    expect(recent.builds.length).toBe(6);
    expect(recent.builds.map((entry) => entry.repo)).not.toContain('acme/hidden');
    for (const url of [
      portalUrls.branchApi(BASE, 'acme', 'gadget', 'nope'),
      portalUrls.pullApi(BASE, 'acme', 'gadget', 8),
      portalUrls.repoApi(BASE, 'acme', 'nope'),
      portalUrls.repoApi(BASE, 'acme', 'hidden'),
      portalUrls.buildApi(BASE, 999_999),
      portalUrls.artifactApi(BASE, 999_999),
    ])
      expect({ url, status: (await app.request(url.slice(BASE.length))).status }).toEqual({
        url,
        status: 404,
      });
  });

  it('with the page cache, every kept page answers as it does without it', async () => {
    const cached = portalWith({ pageCache: { ttlMs: 60_000 } });
    const buildPage = (await get(portalUrls.build(BASE, ids.release!))).html;
    const artifactId = Number(/\/artifacts\/(\d+)"/.exec(buildPage)![1]);
    // Some of these match more than one cached route (/builds/1 is also /:owner/:repo).
    const urls = [
      `${BASE}/`,
      portalUrls.repo(BASE, 'acme', 'gadget'),
      portalUrls.commit(BASE, 'acme', 'gadget', await sha(ids.old!)),
      portalUrls.build(BASE, ids.release!),
      portalUrls.artifact(BASE, artifactId),
      portalUrls.release(BASE, 'acme', 'gadget', 'v3.0.0'),
      portalUrls.branch(BASE, 'acme', 'gadget', BRANCH),
      portalUrls.pull(BASE, 'acme', 'gadget', 7),
      portalUrls.buildApi(BASE, ids.release!),
      portalUrls.artifactApi(BASE, artifactId),
      portalUrls.repoApi(BASE, 'acme', 'gadget'),
      portalUrls.build(BASE, 999_999),
      portalUrls.repo(BASE, 'acme', 'hidden'),
    ];
    for (const url of urls) {
      const expected = (await get(url)).status;
      const first = await cached.request(url.slice(BASE.length));
      const again = await cached.request(url.slice(BASE.length));
      expect({ url, first: first.status, again: again.status }).toEqual({
        url,
        first: expected,
        again: expected,
      });
      expect(await again.text()).toBe(await first.text());
    }
  });
});
