import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactKey } from '../../core/storage';
import { portalUrls } from '../../core/urls';
import { createBuild, type NewBuild, type NewJob } from '../../db/queries/builds';
import { claimJob, completeJob, type NewArtifact } from '../../db/queries/jobs';
import { appendLogChunk } from '../../db/queries/logs';
import {
  downloadFromAddress,
  downloadOf,
  launchChromium,
  screenshot,
  visibleText,
  type TestBrowser,
} from '../support/browser';
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../support/services';
import { createTestPortal, portalBuildRequest } from '../support/portal-builds';

/**
 * The portal in a real browser (issue 7): Debian's headless Chromium, driven by playwright-core,
 * against the portal served on 127.0.0.1 over a fresh database and bucket. A release manager
 * downloads a tag's installers and checks their sha256; a job's log page follows the job as it
 * runs; hostile names are shown as text. Screenshots of each step are kept in
 * test-output/screenshots/.
 */

const OWNER = 'acme';
const REPO = 'widget';
const CLAIMER = {
  workerId: 'worker-a',
  platforms: ['linux/amd64', 'linux/arm64'],
  leaseSeconds: 600,
};
const job = (target: string, platform: string): NewJob => ({
  target,
  platform,
  image: 'crossdock/builder-debian:bookworm',
  spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
});

let builds = 0;
/** A build request of acme/widget at a commit of its own. */
const request = (overrides: Partial<NewBuild>): NewBuild => {
  builds += 1;
  return portalBuildRequest(REPO, builds.toString(16).padStart(40, 'e'), {
    branch: 'main',
    jobs: [job('amd64', 'linux/amd64')],
    ...overrides,
  });
};

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('the portal in a browser', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let server: ServerType | undefined;
  let browser: TestBrowser | undefined;
  let portalUrl: string;

  /**
   * Stores `input` and runs each of its jobs to success as a worker would: uploads the job's
   * files (by target) to the bucket and records them as its artifacts. Returns the build's id.
   */
  const succeededBuild = async (input: NewBuild, files: Record<string, Record<string, Buffer>>) => {
    const { db } = database;
    const { build } = await createBuild(db, input);
    for (;;) {
      const claimed = await claimJob(db, CLAIMER);
      if (!claimed) break;
      const fence = { jobId: claimed.job.id, attempt: claimed.job.attempt };
      const artifacts: NewArtifact[] = [];
      for (const [file, content] of Object.entries(files[claimed.job.target] ?? {})) {
        const objectKey = artifactKey({
          owner: OWNER,
          repo: REPO,
          sha: input.sha,
          target: claimed.job.target,
          ...fence,
          file,
        });
        await bucket.client.putObject(bucket.storage.bucket, objectKey, content, content.length);
        artifacts.push({ name: file, objectKey, size: content.length, sha256: sha256(content) });
      }
      expect(await completeJob(db, fence, { state: 'succeeded', exitCode: 0, artifacts })).toBe(
        true,
      );
    }
    return build.id;
  };

  /** A new tab, closed again by the test's `finally`. */
  const newPage = async () => {
    const page = await browser!.context.newPage();
    page.setDefaultTimeout(15_000);
    return page;
  };

  beforeAll(async () => {
    [database, bucket, browser] = await Promise.all([
      createTestDatabase(),
      createTestBucket(),
      launchChromium(),
    ]);
    // The portal's links start with its URL, known once it listens: route to the app made then.
    let portalFetch = (_request: Request): Response | Promise<Response> =>
      new Response('starting', { status: 503 });
    server = serve({
      fetch: (incoming) => portalFetch(incoming),
      hostname: '127.0.0.1',
      port: 0,
    });
    await new Promise((resolve) => server!.once('listening', resolve));
    portalUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const app = createTestPortal(database, bucket, { portalUrl });
    portalFetch = (incoming) => app.fetch(incoming);
  });

  afterAll(async () => {
    // The browser first: it holds connections (a live log's stream) the server would wait for.
    await browser?.close();
    if (server) {
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise((resolve) => server!.close(resolve));
    }
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  it('a release manager downloads an installer of tag v1.4.0 and checks its sha256', async () => {
    const installers = {
      amd64: 'widget-1.4.0-amd64.deb',
      arm64: 'widget-1.4.0-arm64.deb',
    };
    const bytes = {
      amd64: Buffer.concat([Buffer.from('!<arch>\namd64\n'), randomBytes(300_000)]),
      arm64: Buffer.concat([Buffer.from('!<arch>\narm64\n'), randomBytes(280_000)]),
    };
    await succeededBuild(
      request({
        ref: 'v1.4.0',
        branch: undefined,
        tag: 'v1.4.0',
        trigger: 'tag',
        trusted: true,
        jobs: [job('amd64', 'linux/amd64'), job('arm64', 'linux/arm64')],
      }),
      {
        amd64: { [installers.amd64]: bytes.amd64 },
        arm64: { [installers.arm64]: bytes.arm64 },
      },
    );

    const page = await newPage();
    try {
      // The repository lists the tag that was built.
      await page.goto(portalUrls.repo(portalUrl, OWNER, REPO));
      await page.getByText('v1.4.0', { exact: true }).first().waitFor();
      await screenshot(page, 'release-manager-1-repository');

      // The newest release is where …/releases/latest leads.
      await page.goto(portalUrls.latestRelease(portalUrl, OWNER, REPO));
      await page.getByRole('heading', { name: 'widget v1.4.0' }).waitFor();
      expect(page.url()).toBe(portalUrls.release(portalUrl, OWNER, REPO, 'v1.4.0'));
      await screenshot(page, 'release-manager-2-release-page');
      // The style sheet, a file of its own, was allowed and applied (the header's rule).
      expect(
        await page.evaluate("getComputedStyle(document.querySelector('header')).display"),
      ).toBe('flex');

      const link = page.getByRole('link', { name: installers.arm64, exact: true });
      const downloaded = await downloadOf(page, browser!.downloadDir, () => link.click());
      expect(downloaded.name).toBe(installers.arm64);
      expect(downloaded.bytes.equals(bytes.arm64)).toBe(true);
      const digest = sha256(downloaded.bytes);

      // The sha256 the page shows beside the file, in the same row.
      const row = page.getByRole('row').filter({ has: link });
      const shown = (await row.innerText()).match(/\b[0-9a-f]{64}\b/g);
      expect(shown).toEqual([digest]);

      // The release's SHA256SUMS, through the page's link, has the same line for it.
      const sums = await downloadOf(page, browser!.downloadDir, () =>
        page.getByRole('link', { name: 'SHA256SUMS', exact: true }).click(),
      );
      const lines = sums.bytes.toString('utf8').trimEnd().split('\n');
      expect(lines).toContain(`${digest}  ${installers.arm64}`);
      expect(lines).toContain(`${sha256(bytes.amd64)}  ${installers.amd64}`);
      expect(lines).toHaveLength(2);

      // The stable URL of the newest release serves the same bytes.
      const latest = await downloadFromAddress(
        page,
        browser!.downloadDir,
        portalUrls.latestReleaseDownload(portalUrl, OWNER, REPO, installers.arm64),
      );
      expect(latest.name).toBe(installers.arm64);
      expect(sha256(latest.bytes)).toBe(digest);
      expect(browser!.offsiteRequests).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("a running job's log page shows new lines as they come, then that the job finished", async () => {
    const { db } = database;
    await createBuild(db, request({ ref: 'main', branch: 'main' }));
    const claimed = await claimJob(db, CLAIMER);
    expect(claimed?.job.state).toBe('running');
    const fence = { jobId: claimed!.job.id, attempt: claimed!.job.attempt };
    let seq = 0;
    const append = async (data: string) =>
      expect(await appendLogChunk(db, { ...fence, seq: seq++, data })).toBe(true);

    await append('==> cloning acme/widget\n');
    const page = await newPage();
    try {
      await page.goto(portalUrls.jobLog(portalUrl, fence.jobId));
      await page.getByText('==> cloning acme/widget').first().waitFor();
      expect(await visibleText(page)).toMatch(/\brunning\b/);
      await screenshot(page, 'live-log-1-running');

      // Lines written while the page is open appear without the test reloading it.
      await append('cc -O2 -o widget widget.c\n');
      await append('\u001b[31merror: red text\u001b[0m\n');
      await page.getByText('error: red text').first().waitFor();
      await page.getByText('cc -O2 -o widget widget.c').first().waitFor();
      const text = await visibleText(page);
      expect(text).not.toContain('[31m');
      expect(text).not.toContain('\u001b');
      await screenshot(page, 'live-log-2-new-lines');

      // The last line, then the job's end: the page says it succeeded and lost no line.
      await append('==> uploaded 1 artifact\n');
      expect(await completeJob(db, fence, { state: 'succeeded', exitCode: 0 })).toBe(true);
      await expect
        .poll(() => visibleText(page), { timeout: 15_000, interval: 250 })
        .toMatch(/\bsucceeded\b/);
      const finished = await visibleText(page);
      for (const line of [
        '==> cloning acme/widget',
        'cc -O2 -o widget widget.c',
        'error: red text',
        '==> uploaded 1 artifact',
      ])
        expect(finished).toContain(line);
      expect(finished).not.toContain('[31m');
      await screenshot(page, 'live-log-3-finished');
      expect(browser!.offsiteRequests).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('pages carry a Content-Security-Policy and show hostile names as text', async () => {
    const branch = 'feature/<script>alert("branch")</script>';
    const file = '<script>alert("file")</script>.deb';
    const buildId = await succeededBuild(request({ ref: branch, branch }), {
      amd64: { [file]: Buffer.from('not an installer\n') },
    });

    const page = await newPage();
    const dialogs: string[] = [];
    const policyViolations: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) policyViolations.push(message.text());
    });
    try {
      const response = await page.goto(portalUrls.build(portalUrl, buildId));
      expect(response?.status()).toBe(200);
      const policy = (await response!.headerValue('content-security-policy')) ?? '';
      expect(policy).not.toBe('');
      // Scripts, whatever the page needs of them, never come inline nor from anywhere at all.
      const directives = new Map(
        policy
          .split(';')
          .map((directive) => directive.trim().split(/\s+/))
          .filter(([name]) => name)
          .map(([name, ...sources]) => [name!.toLowerCase(), sources] as const),
      );
      const scriptSources = directives.get('script-src') ?? directives.get('default-src');
      expect(scriptSources).toBeDefined();
      expect(scriptSources).not.toContain("'unsafe-inline'");
      expect(scriptSources).not.toContain('*');

      await page.getByText(file).first().waitFor();
      const text = await visibleText(page);
      expect(text).toContain(branch);
      expect(text).toContain(file);
      await screenshot(page, 'security-1-hostile-names');

      // The repository page lists the branch too.
      await page.goto(portalUrls.repo(portalUrl, OWNER, REPO));
      expect(await visibleText(page)).toContain(branch);
      await screenshot(page, 'security-2-repository');

      expect(dialogs).toEqual([]);
      expect(policyViolations).toEqual([]);
      expect(browser!.offsiteRequests).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
