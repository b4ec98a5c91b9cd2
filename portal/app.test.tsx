import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../core/format';
import { artifactKey } from '../core/storage';
import { portalUrls } from '../core/urls';
import { listArtifactsForJobs } from '../db/queries/artifacts';
import { createBuild, type NewBuild } from '../db/queries/builds';
import { claimJob, completeJob, type NewArtifact } from '../db/queries/jobs';
import { appendLogChunk } from '../db/queries/logs';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../test/support/services';
import { createPortalApp } from './app';
import { attachmentDisposition, fileNameInPath } from './download';
import { stripAnsi } from '../core/ansi';

const BASE = 'http://portal.test';
const SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const HTML_NAME = 'docs/<script>alert(1)</script>.txt';

/** The path and query of a portal URL, for `app.request`. */
const path = (url: string) => url.slice(BASE.length);

const buildRequest = (overrides: Partial<NewBuild>): NewBuild => ({
  repo: { owner: 'acme', name: 'hello', cloneUrl: '/srv/git/hello.git', source: 'git' },
  sha: SHA,
  ref: 'v1.0.0',
  tag: 'v1.0.0',
  trigger: 'tag',
  requester: 'release-bot',
  recipeDigest: 'sha256:0',
  jobs: [
    {
      target: 'amd64',
      platform: 'linux/amd64',
      toolchains: ['native'],
      image: 'crossdock/builder-debian:bookworm',
      spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
    },
    {
      target: 'arm64',
      platform: 'linux/arm64',
      toolchains: ['cross'],
      image: 'crossdock/builder-debian:bookworm',
      spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
    },
  ],
  ...overrides,
});

describe('portal', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let app: ReturnType<typeof createPortalApp>;
  const logLines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  const tarball = randomBytes(70_000);
  const note = Buffer.from('plain <b>notes</b>\n');
  const ids = { firstBuild: 0, secondBuild: 0, amd64Job: 0, arm64Job: 0 };
  const artifactIds: Record<string, number> = {};

  beforeAll(async () => {
    [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
    const { db } = database;
    const first = await createBuild(db, buildRequest({ requestKey: 'tag:v1.0.0' }));
    ids.firstBuild = first.build.id;

    const amd64 = await claimJob(db, {
      workerId: 'worker-a',
      platforms: ['linux/amd64'],
      leaseSeconds: 60,
    });
    ids.amd64Job = amd64!.job.id;
    const fence = { jobId: amd64!.job.id, attempt: amd64!.job.attempt };
    await appendLogChunk(db, {
      ...fence,
      seq: 0,
      data: '\x1b[36m[crossdock]\x1b[0m cloning\n<b>bold?</b> & \x1b[1;31mred\x1b[0m\r\n',
    });
    const uploaded: NewArtifact[] = [];
    for (const [name, bytes] of [
      ['hello-linux-amd64.tar.gz', tarball],
      [HTML_NAME, note],
    ] as const) {
      const objectKey = artifactKey({
        owner: 'acme',
        repo: 'hello',
        sha: SHA,
        target: 'amd64',
        ...fence,
        file: name,
      });
      await bucket.client.putObject(bucket.storage.bucket, objectKey, bytes, bytes.length);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      uploaded.push({ name, objectKey, size: bytes.length, sha256 });
    }
    // Recorded, but its object is gone (as after a retention sweep).
    uploaded.push({ name: 'gone.bin', objectKey: 'artifacts/gone.bin', size: 1, sha256: '00' });
    await completeJob(db, fence, { state: 'succeeded', exitCode: 0, artifacts: uploaded });

    const arm64 = await claimJob(db, {
      workerId: 'worker-b',
      platforms: ['linux/amd64'],
      leaseSeconds: 60,
    });
    ids.arm64Job = arm64!.job.id;
    await completeJob(
      db,
      { jobId: arm64!.job.id, attempt: arm64!.job.attempt },
      { state: 'failed', exitCode: 2, error: 'make: *** [all] Error 2 <oops>' },
    );

    const second = await createBuild(
      db,
      buildRequest({ ref: 'main', tag: undefined, branch: 'main', trigger: 'slack' }),
    );
    ids.secondBuild = second.build.id;

    for (const artifact of await listArtifactsForJobs(db, [ids.amd64Job])) {
      artifactIds[artifact.name] = artifact.id;
    }

    app = createPortalApp({
      db,
      storage: bucket.client,
      bucket: bucket.storage.bucket,
      portalUrl: `${BASE}/`,
      log,
    });
  });

  afterAll(async () => {
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  const downloadUrl = (name: string) => portalUrls.artifactDownload(BASE, artifactIds[name]!, name);

  it('answers the health check', async () => {
    const response = await app.request('/healthz');
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
  });

  it('lists repositories with links to them', async () => {
    const response = await app.request('/');
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain(`href="${portalUrls.repo(BASE, 'acme', 'hello')}"`);
    expect(html).toContain('acme/hello');
  });

  it('shows a repository with its commits and built tags', async () => {
    const response = await app.request(path(portalUrls.repo(BASE, 'acme', 'hello')));
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain(`href="${portalUrls.commit(BASE, 'acme', 'hello', SHA)}"`);
    expect(html).toContain(SHA.slice(0, 12));
    expect(html).toMatch(/<h2>Tags<\/h2>[\s\S]*v1\.0\.0/);
  });

  it('shows every build of a commit, newest first, with jobs and artifacts', async () => {
    const response = await app.request(path(portalUrls.commit(BASE, 'acme', 'hello', SHA)));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await response.text();
    expect(html.indexOf(`Build #${ids.secondBuild}`)).toBeGreaterThan(-1);
    expect(html.indexOf(`Build #${ids.secondBuild}`)).toBeLessThan(
      html.indexOf(`Build #${ids.firstBuild}`),
    );
    expect(html).toContain('hello-linux-amd64.tar.gz');
    expect(html).toContain(`${tarball.length} bytes`);
    expect(html).toContain(formatBytes(tarball.length));
    expect(html).toContain(createHash('sha256').update(tarball).digest('hex'));
    expect(html).toContain(`href="${downloadUrl('hello-linux-amd64.tar.gz')}"`);
    expect(html).toContain(`href="${portalUrls.jobLog(BASE, ids.amd64Job)}"`);
    expect(html).toContain('worker-b');
    expect(html).toContain('make: *** [all] Error 2 &lt;oops&gt;');
  });

  it('escapes an artifact name holding HTML', async () => {
    const html = await (
      await app.request(path(portalUrls.commit(BASE, 'acme', 'hello', SHA)))
    ).text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('docs/&lt;script&gt;alert(1)&lt;/script&gt;.txt');
  });

  it('shows one build on its page', async () => {
    const response = await app.request(path(portalUrls.build(BASE, ids.firstBuild)));
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain(`Build #${ids.firstBuild}`);
    expect(html).toContain('hello-linux-amd64.tar.gz');
    expect(html).not.toContain(`Build #${ids.secondBuild}`);
  });

  it('downloads the exact bytes with their size, name and checksum', async () => {
    const response = await app.request(path(downloadUrl('hello-linux-amd64.tar.gz')));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('content-length')).toBe(String(tarball.length));
    expect(response.headers.get('content-disposition')).toBe(
      'attachment; filename="hello-linux-amd64.tar.gz"',
    );
    expect(response.headers.get('x-checksum-sha256')).toBe(
      createHash('sha256').update(tarball).digest('hex'),
    );
    expect(Buffer.from(await response.arrayBuffer()).equals(tarball)).toBe(true);
  });

  it('answers HEAD of a download with the headers and no body', async () => {
    const response = await app.request(path(downloadUrl('hello-linux-amd64.tar.gz')), {
      method: 'HEAD',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(tarball.length));
    expect(response.headers.get('x-checksum-sha256')).toMatch(/^[0-9a-f]{64}$/);
    expect((await response.arrayBuffer()).byteLength).toBe(0);
  });

  it('downloads an artifact in a subfolder whose name holds HTML, with a safe file name', async () => {
    const response = await app.request(path(downloadUrl(HTML_NAME)));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="script>.txt"');
    expect(Buffer.from(await response.arrayBuffer()).equals(note)).toBe(true);
  });

  it('answers 404 when the object of an artifact is gone, and logs it', async () => {
    const response = await app.request(path(downloadUrl('gone.bin')));
    expect(response.status).toBe(404);
    expect(logLines.some((line) => line.includes('artifact object missing'))).toBe(true);
  });

  it.each([
    ['an unknown repository', '/acme/nothing'],
    ['an unknown owner', `/nobody/hello/commit/${SHA}`],
    ['a commit without builds', `/acme/hello/commit/${'f'.repeat(40)}`],
    ['a short sha', `/acme/hello/commit/${SHA.slice(0, 7)}`],
    ['a non-numeric build id', '/builds/1abc'],
    ['a negative build id', '/builds/-1'],
    ['an unknown build id', '/builds/999999'],
    ['a huge build id', `/builds/${'9'.repeat(30)}`],
    ['a non-numeric job id', '/jobs/x/log'],
    ['an unknown job id', '/jobs/999999/log.txt'],
    ['a non-numeric artifact id', '/artifacts/one/download/hello-linux-amd64.tar.gz'],
    ['an unknown artifact id', '/artifacts/999999/download/hello-linux-amd64.tar.gz'],
    ['an unknown route', '/a/b/c/d/e'],
  ])('answers 404 for %s', async (_what, url) => {
    const response = await app.request(url);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('Not found');
  });

  it.each([
    ['another name', 'other.tar.gz'],
    ['an encoded ../', '%2e%2e%2fhello-linux-amd64.tar.gz'],
    ['an encoded slash', 'docs%2F%3Cscript%3Ealert(1)%3C%2Fscript%3E.txt'],
    ['a dot segment', 'docs/./x'],
    ['a bad escape', 'hello%zz'],
    ['no name', ''],
  ])('answers 404 to a download URL with %s', async (_what, tail) => {
    const id = artifactIds['hello-linux-amd64.tar.gz'];
    const response = await app.request(`/artifacts/${id}/download/${tail}`);
    expect(response.status).toBe(404);
  });

  it('shows a log as escaped, numbered lines with the colours of its ANSI codes', async () => {
    const response = await app.request(path(portalUrls.jobLog(BASE, ids.amd64Job)));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await response.text();
    // Escaped text, numbered lines, and the colours of its ANSI codes (bold red).
    expect(html).toContain(
      'href="#L1">1</a><span style="color:rgb(0,187,187)">[crossdock]</span> cloning</span>',
    );
    expect(html).toMatch(
      /href="#L2">2<\/a>&lt;b&gt;bold\?&lt;\/b&gt; &amp; <span style="font-weight:bold;color:rgb\(187,0,0\)">red<\/span><\/span>/,
    );
    expect(html).not.toContain('\x1b');
    expect(html).not.toContain('<b>');
  });

  it('serves the raw log as plain text', async () => {
    const response = await app.request(`${path(portalUrls.jobLog(BASE, ids.amd64Job))}.txt`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toContain('\x1b[1;31mred\x1b[0m');
  });

  it('gives the builds of a commit as JSON with download URLs', async () => {
    const response = await app.request(`/api/v1/repos/acme/hello/commits/${SHA}/builds`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      sha: string;
      builds: {
        id: number;
        state: string;
        jobs: {
          target: string;
          state: string;
          artifacts: { name: string; size: number; sha256: string; downloadUrl: string }[];
        }[];
      }[];
    };
    expect(body.sha).toBe(SHA);
    expect(body.builds.map((build) => build.id)).toEqual([ids.secondBuild, ids.firstBuild]);
    const first = body.builds[1]!;
    expect(first.state).toBe('failed');
    expect(first.jobs.map((job) => [job.target, job.state])).toEqual([
      ['amd64', 'succeeded'],
      ['arm64', 'failed'],
    ]);
    expect(first.jobs[0]!.artifacts).toContainEqual({
      id: artifactIds['hello-linux-amd64.tar.gz'],
      name: 'hello-linux-amd64.tar.gz',
      size: tarball.length,
      sha256: createHash('sha256').update(tarball).digest('hex'),
      downloadUrl: downloadUrl('hello-linux-amd64.tar.gz'),
    });
    expect(JSON.stringify(body)).not.toContain('timeoutMinutes');
  });

  it('answers 404 in JSON for an unknown commit', async () => {
    const response = await app.request(`/api/v1/repos/acme/hello/commits/${'0'.repeat(40)}/builds`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: 'not-found' });
  });

  it('logs a failure and answers 500 without internals', async () => {
    const broken = createPortalApp({
      db: database.db,
      storage: bucket.client,
      bucket: 'crossdock-no-such-bucket',
      portalUrl: BASE,
      log,
    });
    const response = await broken.request(path(downloadUrl('hello-linux-amd64.tar.gz')));
    expect(response.status).toBe(500);
    const html = await response.text();
    expect(html).toContain('Something went wrong');
    expect(html).not.toMatch(/bucket|stack|Error:/i);
    expect(logLines.some((line) => line.includes('"msg":"request failed"'))).toBe(true);
  });
});

describe('fileNameInPath', () => {
  it.each([
    ['/artifacts/1/download/a.tar.gz', 'a.tar.gz'],
    ['/artifacts/1/download/dist/a%20b.zip', 'dist/a b.zip'],
    ['/artifacts/1/download/%E2%9C%93.deb', '✓.deb'],
    ['/artifacts/1/download/%2e%2e%2fa', undefined],
    ['/artifacts/1/download/..', undefined],
    ['/artifacts/1/download/a//b', undefined],
    ['/artifacts/1/download/%ff', undefined],
    ['/artifacts/1/download/', undefined],
  ])('reads %s as %s', (pathname, name) => {
    expect(fileNameInPath(pathname, 4)).toBe(name);
  });
});

describe('attachmentDisposition', () => {
  it.each([
    ['dist/hello-1.0.tar.gz', 'attachment; filename="hello-1.0.tar.gz"'],
    [
      'say "hi"\\.txt',
      `attachment; filename="say _hi__.txt"; filename*=UTF-8''say%20%22hi%22%5C.txt`,
    ],
    [
      'héllo (1).deb',
      `attachment; filename="h_llo (1).deb"; filename*=UTF-8''h%C3%A9llo%20%281%29.deb`,
    ],
    [
      'a\r\nSet-Cookie: x',
      `attachment; filename="a__Set-Cookie: x"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x`,
    ],
  ])('names %s safely', (name, header) => {
    expect(attachmentDisposition(name)).toBe(header);
  });
});

describe('stripAnsi', () => {
  it.each([
    ['\x1b[1;31mred\x1b[0m', 'red'],
    ['\x1b]0;title\x07text', 'text'],
    ['\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\', 'link'],
    ['a\r\nb', 'a\nb'],
    ['50%\x1b[K', '50%'],
  ])('strips %j', (input, output) => {
    expect(stripAnsi(input)).toBe(output);
  });
});
