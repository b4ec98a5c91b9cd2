import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalUrls } from '../core/urls';
import type { NewBuild } from '../db/queries/builds';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../test/support/services';
import {
  createTestPortal,
  finishBuild,
  portalBuildRequest,
  portalJob,
  type JobOutcome,
} from '../test/support/portal-builds';
import { createPortalApp } from './app';

const BASE = 'http://portal.test';
const path = (url: string) => url.slice(BASE.length);
const JOBS = [portalJob('amd64', 'linux/amd64'), portalJob('arm64', 'linux/arm64')];

let builds = 0;
/** A build request of acme/widget at its own sha. */
const request = (overrides: Partial<NewBuild>): NewBuild => {
  builds += 1;
  return portalBuildRequest('widget', builds.toString(16).padStart(40, 'c'), {
    jobs: JOBS,
    ...overrides,
  });
};

describe('stable download URLs', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let app: ReturnType<typeof createPortalApp>;
  const bytes = (label: string) => Buffer.concat([Buffer.from(`${label}\n`), randomBytes(50_000)]);
  const files = {
    v100: bytes('1.0.0 amd64'),
    v100arm: bytes('1.0.0 arm64'),
    v110: bytes('1.1.0 amd64'),
    untrusted: bytes('1.2.0 from a fork'),
    failedRelease: bytes('1.3.0 amd64, build failed'),
    mainOld: bytes('main, older'),
    feature: bytes('feature/x'),
  };
  const shas: Record<string, string> = {};

  /** Stores a build, runs its jobs to `outcomes` (by target) and uploads their files. */
  const finishedBuild = async (
    name: string,
    input: NewBuild,
    outcomes: Record<string, JobOutcome>,
  ) => {
    await finishBuild(database.db, bucket, input, outcomes);
    shas[name] = input.sha;
  };

  beforeAll(async () => {
    [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
    const readme = Buffer.from('read me\n');
    const tag = (name: string) => ({ ref: name, tag: name, trigger: 'tag' as const });
    await finishedBuild('v1.0.0', request(tag('v1.0.0')), {
      amd64: {
        state: 'succeeded',
        files: { 'widget-amd64.tar.gz': files.v100, 'README.txt': readme },
      },
      arm64: {
        state: 'succeeded',
        files: { 'widget-arm64.tar.gz': files.v100arm, 'README.txt': readme },
      },
    });
    await finishedBuild('v1.1.0', request(tag('v1.1.0')), {
      amd64: { state: 'succeeded', files: { 'widget-amd64.tar.gz': files.v110 } },
      arm64: { state: 'succeeded' },
    });
    // Newer, but of untrusted code, or failed: never a release, never the latest.
    await finishedBuild('v1.2.0', request({ ...tag('v1.2.0'), trusted: false }), {
      amd64: { state: 'succeeded', files: { 'widget-amd64.tar.gz': files.untrusted } },
      arm64: { state: 'succeeded' },
    });
    await finishedBuild('v1.3.0', request(tag('v1.3.0')), {
      amd64: { state: 'succeeded', files: { 'widget-amd64.tar.gz': files.failedRelease } },
      arm64: { state: 'failed' },
    });
    const branch = (name: string) => ({ ref: name, branch: name });
    await finishedBuild('main-old', request(branch('main')), {
      amd64: { state: 'succeeded', files: { 'widget-amd64.tar.gz': files.mainOld } },
      arm64: { state: 'succeeded' },
    });
    await finishedBuild('main-new', request(branch('main')), {
      amd64: { state: 'failed' },
      arm64: { state: 'succeeded' },
    });
    await finishedBuild('feature', request(branch('feature/x')), {
      amd64: { state: 'succeeded', files: { 'dist/widget amd64.tar.gz': files.feature } },
      arm64: { state: 'succeeded' },
    });
    app = createTestPortal(database, bucket, { portalUrl: BASE });
  });
  afterAll(async () => {
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  const get = (url: string, headers: Record<string, string> = {}) =>
    app.request(path(url), { headers });
  const body = async (response: Response) => Buffer.from(await response.arrayBuffer());
  const release = (tag: string, file: string) =>
    portalUrls.releaseDownload(BASE, 'acme', 'widget', tag, file);

  it("downloads a tag's file as the raw bytes, with its name, sha256 and ETag", async () => {
    const response = await get(release('v1.0.0', 'widget-amd64.tar.gz'));
    expect(response.status).toBe(200);
    expect((await body(response)).equals(files.v100)).toBe(true);
    const sha256 = createHash('sha256').update(files.v100).digest('hex');
    expect(response.headers.get('content-disposition')).toBe(
      'attachment; filename="widget-amd64.tar.gz"',
    );
    expect(response.headers.get('content-length')).toBe(String(files.v100.length));
    expect(response.headers.get('x-checksum-sha256')).toBe(sha256);
    expect(response.headers.get('etag')).toBe(`"${sha256}"`);
    expect(response.headers.get('accept-ranges')).toBe('bytes');
  });

  it('latest is the newest successful release of trusted code', async () => {
    const latest = portalUrls.latestReleaseDownload(BASE, 'acme', 'widget', 'widget-amd64.tar.gz');
    const response = await get(latest);
    expect(response.status).toBe(200);
    // Not v1.2.0 (a fork's code) nor v1.3.0 (its build failed), though both are newer.
    expect((await body(response)).equals(files.v110)).toBe(true);
  });

  it('a tag built from untrusted code, or whose build failed, has no release downloads', async () => {
    expect((await get(release('v1.2.0', 'widget-amd64.tar.gz'))).status).toBe(404);
    expect((await get(release('v1.3.0', 'widget-amd64.tar.gz'))).status).toBe(404);
    expect((await get(release('v9.9.9', 'widget-amd64.tar.gz'))).status).toBe(404);
    expect((await get(release('v1.0.0', 'missing.tar.gz'))).status).toBe(404);
  });

  it('a file that several targets made answers 409 with the URL of each', async () => {
    const response = await get(release('v1.0.0', 'README.txt'));
    expect(response.status).toBe(409);
    const answer = (await response.json()) as { downloads: string[] };
    expect(answer.downloads).toEqual(
      ['amd64', 'arm64'].map((target) =>
        portalUrls.commitDownload(BASE, 'acme', 'widget', shas['v1.0.0']!, target, 'README.txt'),
      ),
    );
    const one = await get(answer.downloads[1]!);
    expect((await body(one)).toString()).toBe('read me\n');
  });

  it("a commit's file is its target's, from the newest build where that target succeeded", async () => {
    const url = portalUrls.commitDownload(
      BASE,
      'acme',
      'widget',
      shas['v1.3.0']!,
      'amd64',
      'widget-amd64.tar.gz',
    );
    // The build failed (arm64), but amd64 succeeded: the commit's own URL serves it.
    expect((await body(await get(url))).equals(files.failedRelease)).toBe(true);
    expect((await get(url.replace('/amd64/', '/arm64/'))).status).toBe(404);
    expect((await get(url.replace(shas['v1.3.0']!, shas['v1.3.0']!.slice(0, 12)))).status).toBe(
      404,
    );
  });

  it("a branch's latest file is from its newest build where the target succeeded", async () => {
    const main = portalUrls.branchDownload(
      BASE,
      'acme',
      'widget',
      'main',
      'amd64',
      'widget-amd64.tar.gz',
    );
    // The newest build of main failed for amd64: the one before serves it.
    expect((await body(await get(main))).equals(files.mainOld)).toBe(true);
    const feature = portalUrls.branchDownload(
      BASE,
      'acme',
      'widget',
      'feature/x',
      'amd64',
      'dist/widget amd64.tar.gz',
    );
    expect(feature).toContain('/branches/feature%2Fx/latest/amd64/dist/widget%20amd64.tar.gz');
    const response = await get(feature);
    expect((await body(response)).equals(files.feature)).toBe(true);
    expect(response.headers.get('content-disposition')).toBe(
      'attachment; filename="widget amd64.tar.gz"',
    );
  });

  it('serves one byte range as 206, and says 416 for a range past the end', async () => {
    const url = release('v1.0.0', 'widget-amd64.tar.gz');
    const size = files.v100.length;
    const part = await get(url, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${size}`);
    expect(part.headers.get('content-length')).toBe('100');
    expect((await body(part)).equals(files.v100.subarray(100, 200))).toBe(true);

    const tail = await get(url, { range: 'bytes=-10' });
    expect(tail.status).toBe(206);
    expect((await body(tail)).equals(files.v100.subarray(size - 10))).toBe(true);

    const past = await get(url, { range: `bytes=${size}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${size}`);

    // Several ranges, or an If-Range of another ETag: the whole file.
    const several = await get(url, { range: 'bytes=0-1,5-6' });
    expect(several.status).toBe(200);
    expect((await body(several)).length).toBe(size);
    const changed = await get(url, { range: 'bytes=0-9', 'if-range': '"0000"' });
    expect(changed.status).toBe(200);

    const etag = part.headers.get('etag')!;
    const resumed = await get(url, { range: 'bytes=0-9', 'if-range': etag });
    expect(resumed.status).toBe(206);
    expect((await get(url, { 'if-none-match': etag })).status).toBe(304);

    const head = await app.request(path(url), { method: 'HEAD', headers: { range: 'bytes=0-99' } });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-length')).toBe('100');
    expect((await head.arrayBuffer()).byteLength).toBe(0);
  });

  it('refuses paths that climb out, and unknown repositories', async () => {
    const climb = `${BASE}/acme/widget/releases/v1.0.0/download/%2e%2e%2fwidget-amd64.tar.gz`;
    expect((await get(climb)).status).toBe(404);
    expect((await get(release('v1.0.0', 'x').replace('/widget/', '/nope/'))).status).toBe(404);
  });

  it("a tag's release page lists its files by platform, with stable links, sizes and sha256", async () => {
    const response = await get(portalUrls.release(BASE, 'acme', 'widget', 'v1.0.0'));
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('<h1>widget v1.0.0</h1>');
    expect(html.indexOf('linux/amd64')).toBeLessThan(html.indexOf('linux/arm64'));
    expect(html).toContain(`href="${release('v1.0.0', 'widget-amd64.tar.gz')}"`);
    expect(html).toContain(createHash('sha256').update(files.v100arm).digest('hex'));
    // Made by both targets: listed per target, linked by commit.
    const readme = portalUrls.commitDownload(
      BASE,
      'acme',
      'widget',
      shas['v1.0.0']!,
      'arm64',
      'README.txt',
    );
    expect(html).toContain(`href="${readme}">arm64/README.txt</a>`);
    expect(html).toContain(`href="${release('v1.0.0', 'SHA256SUMS')}"`);

    const latest = await get(portalUrls.latestRelease(BASE, 'acme', 'widget'));
    expect(latest.status).toBe(302);
    expect(latest.headers.get('location')).toBe(
      portalUrls.release(BASE, 'acme', 'widget', 'v1.1.0'),
    );
    expect((await get(portalUrls.release(BASE, 'acme', 'widget', 'v1.2.0'))).status).toBe(404);
  });

  it("a release's SHA256SUMS checks its downloaded files with sha256sum --check", async () => {
    const sums = await get(release('v1.0.0', 'SHA256SUMS'));
    expect(sums.status).toBe(200);
    const text = await sums.text();
    expect(
      text
        .trim()
        .split('\n')
        .map((line) => line.slice(66)),
    ).toEqual([
      'amd64/README.txt',
      'arm64/README.txt',
      'widget-amd64.tar.gz',
      'widget-arm64.tar.gz',
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'crossdock-sums-'));
    try {
      for (const line of text.trim().split('\n')) {
        const listed = line.slice(66);
        const [target, name] = listed.includes('/') ? listed.split('/') : [undefined, listed];
        const url = target
          ? portalUrls.commitDownload(BASE, 'acme', 'widget', shas['v1.0.0']!, target, name!)
          : release('v1.0.0', name!);
        mkdirSync(dirname(join(dir, listed)), { recursive: true });
        writeFileSync(join(dir, listed), await body(await get(url)));
      }
      writeFileSync(join(dir, 'SHA256SUMS'), text);
      const checked = execFileSync('sha256sum', ['--check', 'SHA256SUMS'], { cwd: dir }).toString();
      expect(checked.trim().split('\n')).toHaveLength(4);
      expect(checked).not.toContain('FAILED');
      // A corrupted download fails the check.
      writeFileSync(join(dir, 'widget-amd64.tar.gz'), 'corrupt');
      expect(() =>
        execFileSync('sha256sum', ['--check', 'SHA256SUMS'], { cwd: dir, stdio: 'pipe' }),
      ).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a release's SHA256SUMS is its own file when one target made it, else made for the release", async () => {
    const repo = {
      owner: 'acme',
      name: 'sums',
      cloneUrl: '/srv/git/sums.git',
      source: 'git' as const,
    };
    // Commits of their own, out of the way of the search test's sha prefix.
    const tagged = (name: string) =>
      request({ repo, sha: name.slice(1).padStart(40, 'd'), ref: name, tag: name, trigger: 'tag' });
    const sums = (tag: string) =>
      get(portalUrls.releaseDownload(BASE, 'acme', 'sums', tag, 'SHA256SUMS'));
    const tarball = bytes('sums amd64');
    const own = Buffer.from(`${createHash('sha256').update(tarball).digest('hex')}  sums.tar.gz\n`);
    await finishedBuild('sums-v1', tagged('v1'), {
      amd64: { state: 'succeeded', files: { 'sums.tar.gz': tarball, SHA256SUMS: own } },
      arm64: { state: 'succeeded' },
    });
    const one = await sums('v1');
    expect(one.status).toBe(200);
    expect((await body(one)).equals(own)).toBe(true);

    // As the worker does it: every job made its own. The release's lists them all.
    await finishedBuild('sums-v2', tagged('v2'), {
      amd64: { state: 'succeeded', files: { 'sums.tar.gz': tarball, SHA256SUMS: own } },
      arm64: { state: 'succeeded', files: { SHA256SUMS: Buffer.from('arm64\n') } },
    });
    const both = await sums('v2');
    expect(both.status).toBe(200);
    const listed = (await both.text())
      .trim()
      .split('\n')
      .map((line) => line.slice(66));
    expect(listed).toEqual(['amd64/SHA256SUMS', 'arm64/SHA256SUMS', 'sums.tar.gz']);

    // v1 built again: listed once, by its newest build, as the newest release.
    const rebuilt = { ...tagged('v1'), sha: '3'.padStart(40, 'd') };
    await finishedBuild('sums-v1-again', rebuilt, {
      amd64: { state: 'succeeded' },
      arm64: { state: 'succeeded' },
    });
    const { releases } = (await (
      await get(portalUrls.releasesApi(BASE, 'acme', 'sums'))
    ).json()) as { releases: { tag: string; sha: string }[] };
    expect(releases.map(({ tag, sha }) => [tag, sha])).toEqual([
      ['v1', rebuilt.sha],
      ['v2', shas['sums-v2']],
    ]);
  });

  it('badges show the state of a branch, and of each target, in SVG', async () => {
    const badge = async (url: string) => {
      const response = await get(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/svg+xml; charset=utf-8');
      const svg = await response.text();
      expect(svg).toMatch(/^<svg /);
      return svg.match(/<title>([^<]*)<\/title>/)![1];
    };
    const url = (branch: string, target?: string) =>
      portalUrls.branchBadge(BASE, 'acme', 'widget', branch, target);
    // main's newest build failed (its amd64 job), though arm64 passed in it.
    expect(await badge(url('main'))).toBe('build: failing');
    expect(await badge(url('main', 'amd64'))).toBe('amd64: failing');
    expect(await badge(url('main', 'arm64'))).toBe('arm64: passing');
    expect(await badge(url('feature/x'))).toBe('build: passing');
    expect(await badge(url('never-built'))).toBe('build: unknown');
    const hostile = await (await get(url('main', '<script>x'))).text();
    expect(hostile).not.toContain('<script>');
    expect(hostile).toContain('&lt;script&gt;x: unknown');
    expect((await get(url('main').replace('/widget/', '/nope/'))).status).toBe(404);
  });

  it('the Atom feed lists the releases of trusted code, newest first', async () => {
    const response = await get(portalUrls.releasesFeed(BASE, 'acme', 'widget'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/atom+xml; charset=utf-8');
    const xml = await response.text();
    expect(xml).toContain('<feed xmlns="http://www.w3.org/2005/Atom">');
    const titles = [...xml.matchAll(/<entry>[\s\S]*?<title[^>]*>(?:<!\[CDATA\[)?([^<\]]*)/g)].map(
      (match) => match[1],
    );
    expect(titles).toEqual(['acme/widget v1.1.0', 'acme/widget v1.0.0']);
    expect(xml).toContain(`<link href="${portalUrls.release(BASE, 'acme', 'widget', 'v1.1.0')}"/>`);
  });

  it('the JSON API lists releases and gives one with its files', async () => {
    const list = (await (await get(portalUrls.releasesApi(BASE, 'acme', 'widget'))).json()) as {
      releases: { tag: string }[];
    };
    expect(list.releases.map((entry) => entry.tag)).toEqual(['v1.1.0', 'v1.0.0']);
    const one = (await (
      await get(portalUrls.releaseApi(BASE, 'acme', 'widget', 'v1.0.0'))
    ).json()) as { files: { name: string; sha256: string; downloadUrl: string }[] };
    expect(one.files.map((file) => file.name).sort()).toEqual([
      'amd64/README.txt',
      'arm64/README.txt',
      'widget-amd64.tar.gz',
      'widget-arm64.tar.gz',
    ]);
    const tarball = one.files.find((file) => file.name === 'widget-amd64.tar.gz')!;
    expect(tarball.sha256).toBe(createHash('sha256').update(files.v100).digest('hex'));
    expect((await body(await get(tarball.downloadUrl))).equals(files.v100)).toBe(true);
    const latest = (await (
      await get(portalUrls.releaseApi(BASE, 'acme', 'widget', 'latest'))
    ).json()) as { tag: string };
    expect(latest.tag).toBe('v1.1.0');
    expect((await get(portalUrls.releaseApi(BASE, 'acme', 'widget', 'v1.2.0'))).status).toBe(404);
  });

  it('search finds commits by sha prefix, tags and branches by prefix, and escapes LIKE', async () => {
    const search = async (query: string) =>
      (
        (await (await get(portalUrls.searchApi(BASE, query))).json()) as {
          hits: { kind: string; sha: string; tag: string | null; branch: string | null }[];
        }
      ).hits;
    expect(await search(shas['v1.3.0']!)).toEqual([
      expect.objectContaining({ kind: 'commit', sha: shas['v1.3.0'], tag: 'v1.3.0' }),
    ]);
    expect((await search('cccc')).filter((hit) => hit.kind === 'commit')).toHaveLength(7);
    expect((await search('v1.')).map((hit) => hit.tag)).toEqual([
      'v1.3.0',
      'v1.2.0',
      'v1.1.0',
      'v1.0.0',
    ]);
    const branches = await search('feature');
    expect(branches.map((hit) => [hit.kind, hit.branch])).toEqual([['branch', 'feature/x']]);
    // main's newest build is the hit.
    expect((await search('main'))[0]!.sha).toBe(shas['main-new']);
    expect(await search('#12345')).toEqual([]);
    expect(await search('%')).toEqual([]);
    expect(await search('v_.')).toEqual([]);
    expect((await get(portalUrls.searchApi(BASE, ' '))).status).toBe(400);

    const page = await (await get(portalUrls.search(BASE, '<b>v1.1'))).text();
    expect(page).toContain('value="&lt;b&gt;v1.1"');
    const found = await (await get(portalUrls.search(BASE, 'v1.1'))).text();
    expect(found).toContain('tag v1.1.0</a>');
  });

  it('the OpenAPI document is valid and describes every /api/v1 route and method', async () => {
    const document = (await (await get(portalUrls.openApi(BASE))).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    await SwaggerParser.validate(structuredClone(document) as never);
    const routes = app.routes
      .filter((route) => route.method !== 'ALL' && route.path.startsWith('/api/v1/'))
      .map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, '{$1}')}`);
    expect(routes.length).toBeGreaterThanOrEqual(12);
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual([...new Set(routes)].sort());
  });
});
