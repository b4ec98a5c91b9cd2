import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalUrls } from '../core/urls';
import { createBuild, type NewBuild, type NewJob } from '../db/queries/builds';
import { cancelBuild, claimJob, completeJob, retryJob, type Claimer } from '../db/queries/jobs';
import { appendLogChunk } from '../db/queries/logs';
import { markWorkerStopped, registerWorker, type WorkerRegistration } from '../db/queries/workers';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import {
  createTestBucket,
  createTestDatabase,
  type TestBucket,
  type TestDatabase,
} from '../test/support/services';
import { createTestPortal } from '../test/support/portal-builds';
import { workerRegistration } from '../test/support/queue';
import { createPortalApp } from './app';
import { PORTAL_SCRIPT, PORTAL_STYLE } from './assets';
import { attemptSummary } from './build-details';
import { workerState } from '../db/queries/workers';
import { parseLogQuery } from './job-log';
import { age } from './views';

/**
 * The portal for operators: the fleet and the queue, why queued jobs wait, retries and cancels
 * on the build page, and a log followed live, by page reloads and by the JSON tail.
 */

const BASE = 'http://portal.test';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const IMAGE = 'crossdock/builder-debian:bookworm';
const REFRESH = '<noscript><meta http-equiv="refresh" content="3"/></noscript>';
const LIVE = 'live — refreshes every 3 s';

const path = (url: string) => url.slice(BASE.length);

const job = (target: string, runPlatform: string, extra: Partial<NewJob> = {}): NewJob => ({
  target,
  platform: runPlatform,
  toolchains: ['native'],
  image: IMAGE,
  spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
  ...extra,
});

const build = (jobs: NewJob[], overrides: Partial<NewBuild> = {}): NewBuild => ({
  repo: { owner: 'acme', name: 'fleet', cloneUrl: '/srv/git/fleet.git', source: 'git' },
  sha: SHA,
  ref: 'main',
  branch: 'main',
  trigger: 'cli',
  requester: 'alice',
  recipeDigest: 'sha256:1',
  reuse: false,
  jobs,
  ...overrides,
});

const worker = (id: string, overrides: Partial<WorkerRegistration> = {}): WorkerRegistration =>
  workerRegistration(id, { host: `${id}.example`, pid: 4242, version: '0.1.0', ...overrides });

/** The table row of `id` (e.g. `job-12`, `worker-a`) in a page, up to its end. */
function row(html: string, id: string): string {
  const start = html.indexOf(`id="${id}"`);
  expect(start, `no element with id ${id}`).toBeGreaterThan(-1);
  return html.slice(start, html.indexOf('</tr>', start));
}

interface LogAnswer {
  jobId: number;
  attempt: number;
  state: string;
  text: string;
  nextSeq: number;
  done: boolean;
}

describe('portal for operators', () => {
  let database: TestDatabase;
  let bucket: TestBucket;
  let app: ReturnType<typeof createPortalApp>;
  const ids = {
    mainBuild: 0,
    running: 0,
    unserved: 0,
    emulated: 0,
    retryBuild: 0,
    retried: 0,
    cancelingBuild: 0,
    canceling: 0,
    canceledBuild: 0,
    canceled: 0,
    timedOutBuild: 0,
    timedOut: 0,
    flakyBuild: 0,
    flaky: 0,
    reuseBuild: 0,
    reusing: 0,
  };

  beforeAll(async () => {
    [database, bucket] = await Promise.all([createTestDatabase(), createTestBucket()]);
    const { db } = database;
    await registerWorker(
      db,
      worker('w-live', {
        emulatedPlatforms: ['linux/arm64'],
        labels: ['kvm'],
        slots: 2,
        images: { [IMAGE]: 'sha256:feedface' },
      }),
    );
    await registerWorker(db, worker('w-lost', { heartbeatSeconds: 0.05, host: '<b>lost</b>' }));
    await registerWorker(db, worker('w-stopped', { platforms: ['linux/arm64'] }));
    await markWorkerStopped(db, 'w-stopped');
    const live: Claimer = { workerId: 'w-live', platforms: ['linux/amd64'], leaseSeconds: 600 };
    /** Claims the next amd64 job as `claimer` and checks it is `jobId`. */
    const claim = async (jobId: number, claimer: Claimer = live) => {
      const claimed = await claimJob(db, claimer);
      expect(claimed?.job.id).toBe(jobId);
      return { jobId, attempt: claimed!.job.attempt };
    };

    // One running job with a log; one no worker serves; one waiting for the busy emulator.
    const main = await createBuild(
      db,
      build([
        job('amd64', 'linux/amd64'),
        job('riscv64', 'linux/riscv64'),
        job('arm64', 'linux/arm64', { toolchains: ['emulated'] }),
      ]),
    );
    ids.mainBuild = main.build.id;
    const jobId = (target: string) => main.jobs.find((entry) => entry.target === target)!.id;
    ids.running = jobId('amd64');
    ids.unserved = jobId('riscv64');
    ids.emulated = jobId('arm64');
    const running = await claim(ids.running);
    await appendLogChunk(db, { ...running, seq: 0, data: '\x1b[32mstep 1\x1b[0m\r\n' });
    await appendLogChunk(db, { ...running, seq: 1, data: 'step 2\n' });

    // Lost by its first worker, succeeded on the second attempt.
    const retry = await createBuild(db, build([job('retried', 'linux/amd64')]));
    ids.retryBuild = retry.build.id;
    ids.retried = retry.jobs[0]!.id;
    const first = await claim(ids.retried, { ...live, workerId: 'w-lost' });
    await appendLogChunk(db, { ...first, seq: 0, data: 'first attempt\n' });
    expect(
      await retryJob(db, first, { reason: 'Docker daemon not responding', infrastructure: true }),
    ).toBe('queued');
    const second = await claim(ids.retried);
    await appendLogChunk(db, { ...second, seq: 0, data: 'second attempt\n' });
    await completeJob(db, second, { state: 'succeeded', exitCode: 0 });

    // Running when someone asked to cancel it.
    const canceling = await createBuild(db, build([job('canceling', 'linux/amd64')]));
    ids.cancelingBuild = canceling.build.id;
    ids.canceling = canceling.jobs[0]!.id;
    await claim(ids.canceling);
    await cancelBuild(db, ids.cancelingBuild, 'slack:U42');

    // Canceled while queued.
    const canceled = await createBuild(db, build([job('canceled', 'linux/amd64')]));
    ids.canceledBuild = canceled.build.id;
    ids.canceled = canceled.jobs[0]!.id;
    await cancelBuild(db, ids.canceledBuild, 'cli:bob');

    // Ran out of time. Claimed by w-lost so that w-live keeps exactly two running jobs.
    const timedOut = await createBuild(db, build([job('slow', 'linux/amd64')]));
    ids.timedOutBuild = timedOut.build.id;
    ids.timedOut = timedOut.jobs[0]!.id;
    const slow = await claim(ids.timedOut, { ...live, workerId: 'w-lost' });
    await appendLogChunk(db, { ...slow, seq: 0, data: 'still compiling\n' });
    await completeJob(db, slow, {
      state: 'timed_out',
      exitCode: 137,
      error: 'timed out after 30 min',
    });

    // Lost once, running its second attempt (on w-lost, whose lease has not run out yet).
    const flaky = await createBuild(db, build([job('flaky', 'linux/amd64')]));
    ids.flakyBuild = flaky.build.id;
    ids.flaky = flaky.jobs[0]!.id;
    const lostOnce = await claim(ids.flaky, { ...live, workerId: 'w-lost' });
    await appendLogChunk(db, { ...lostOnce, seq: 0, data: 'flaky 1\n' });
    await retryJob(db, lostOnce, { reason: 'lease expired', infrastructure: true });
    const again = await claim(ids.flaky, { ...live, workerId: 'w-lost' });
    await appendLogChunk(db, { ...again, seq: 0, data: 'flaky 2\n' });

    // The same request again: attached to the running amd64 job.
    const reuse = await createBuild(
      db,
      build([job('amd64', 'linux/amd64')], { reuse: true, requester: 'carol' }),
    );
    ids.reuseBuild = reuse.build.id;
    ids.reusing = reuse.jobs[0]!.id;
    expect(reuse.jobs[0]!.reuseOfJobId).toBe(ids.running);

    // w-lost heartbeats every 50 ms: after two missed heartbeats it counts as lost.
    await new Promise((resolve) => setTimeout(resolve, 300));
    app = createTestPortal(database, bucket, { portalUrl: BASE });
  });

  afterAll(async () => {
    await Promise.all([database?.drop(), bucket?.remove()]);
  });

  const page = async (url: string) => {
    const response = await app.request(url);
    expect(response.status, url).toBe(200);
    return { response, html: await response.text() };
  };
  const logJson = async (query = '', jobId = ids.running) => {
    const response = await app.request(`/api/v1/jobs/${jobId}/log${query}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    return (await response.json()) as LogAnswer;
  };

  describe('the fleet', () => {
    it('links the workers page from every page', async () => {
      for (const url of ['/', path(portalUrls.build(BASE, ids.mainBuild))]) {
        expect((await page(url)).html).toContain(`href="${BASE}/workers"`);
      }
    });

    it('lists live workers first, then lost and stopped ones, with what each serves', async () => {
      const { html, response } = await page('/workers');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(html.indexOf('id="worker-w-live"')).toBeLessThan(html.indexOf('id="worker-w-lost"'));
      expect(html.indexOf('id="worker-w-lost"')).toBeLessThan(
        html.indexOf('id="worker-w-stopped"'),
      );

      const live = row(html, 'worker-w-live');
      expect(live).toContain('<span class="worker-live">live</span>');
      expect(live).toContain('w-live.example');
      expect(live).toContain('<code>linux/amd64</code>');
      expect(live).toContain('emulated: <code>linux/arm64</code>');
      expect(live).toContain('kvm');
      expect(live).toContain('<td>2/2</td>');
      expect(live).toMatch(/\d+ s ago · every 60 s/);
      expect(live).toContain(`href="${portalUrls.jobLog(BASE, ids.running)}"`);
      expect(live).toContain(`href="${portalUrls.jobLog(BASE, ids.canceling)}"`);
      expect(live).toContain('sha256:feedface');

      const lost = row(html, 'worker-w-lost');
      expect(lost).toContain('<span class="worker-lost">lost</span>');
      expect(lost).toContain('<td>1/1</td>');
      expect(lost).toContain(`href="${portalUrls.jobLog(BASE, ids.flaky)}"`);
      expect(lost).toContain('&lt;b&gt;lost&lt;/b&gt;');
      expect(lost).not.toContain('<b>');

      const stopped = row(html, 'worker-w-stopped');
      expect(stopped).toContain('<span class="worker-stopped">stopped</span>');
    });

    it('shows the queue per run platform with the live capacity serving it', async () => {
      const { html } = await page('/workers');
      const cells = (platform: string) =>
        [...row(html, `queue-${platform}`).matchAll(/<td>(\d+)<\/td>/g)].map((match) =>
          Number(match[1]),
        );
      // queued, running, live workers, free slots; the attached amd64 job never runs itself.
      expect(cells('linux/amd64')).toEqual([0, 3, 1, 0]);
      expect(cells('linux/arm64')).toEqual([1, 0, 1, 0]);
      expect(cells('linux/riscv64')).toEqual([1, 0, 0, 0]);
      expect(row(html, 'queue-linux/riscv64')).toContain('no live worker serves it');
      expect(row(html, 'queue-linux/arm64')).not.toContain('no live worker serves it');
    });

    it('gives the fleet as JSON', async () => {
      const response = await app.request('/api/v1/workers');
      expect(response.status).toBe(200);
      const body = (await response.json()) as { workers: Record<string, unknown>[] };
      expect(body.workers.map((entry) => [entry.id, entry.state])).toEqual([
        ['w-live', 'live'],
        ['w-lost', 'lost'],
        ['w-stopped', 'stopped'],
      ]);
      const live = body.workers[0]!;
      expect(live).toMatchObject({
        host: 'w-live.example',
        platforms: ['linux/amd64'],
        emulatedPlatforms: ['linux/arm64'],
        labels: ['kvm'],
        slots: 2,
        slotsUsed: 2,
        heartbeatSeconds: 60,
        stoppedAt: null,
        images: { [IMAGE]: 'sha256:feedface' },
      });
      expect(live.runningJobs).toEqual(
        [ids.running, ids.canceling]
          .sort((a, b) => a - b)
          .map((id) => ({ id, logUrl: portalUrls.jobLog(BASE, id) })),
      );
      expect(Date.parse(live.lastHeartbeatAt as string)).toBeGreaterThan(Date.now() - 60_000);
      expect(body.workers[2]!.stoppedAt).toEqual(expect.any(String));
    });

    it('gives the queue as JSON', async () => {
      const response = await app.request('/api/v1/queue');
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        queue: [
          {
            runPlatform: 'linux/amd64',
            queued: 0,
            running: 3,
            workers: 1,
            freeSlots: 0,
            unserved: false,
          },
          {
            runPlatform: 'linux/arm64',
            queued: 1,
            running: 0,
            workers: 1,
            freeSlots: 0,
            unserved: false,
          },
          {
            runPlatform: 'linux/riscv64',
            queued: 1,
            running: 0,
            workers: 0,
            freeSlots: 0,
            unserved: true,
          },
        ],
      });
    });
  });

  describe('the build page', () => {
    it('says why each queued job waits', async () => {
      const { html } = await page(path(portalUrls.build(BASE, ids.mainBuild)));
      expect(row(html, `job-${ids.unserved}`)).toContain(
        '<li class="waiting">no worker serves linux/riscv64</li>',
      );
      expect(row(html, `job-${ids.emulated}`)).toContain(
        '<li class="waiting">waiting for a free slot: 1 worker(s) serve linux/arm64 with 2 slot(s)',
      );
      expect(row(html, `job-${ids.running}`)).not.toContain('class="waiting"');
      expect(row(html, `job-${ids.running}`)).toContain('attempt 1<');
    });

    it('shows the attempt and the infrastructure retries', async () => {
      const { html } = await page(path(portalUrls.build(BASE, ids.retryBuild)));
      expect(row(html, `job-${ids.retried}`)).toContain('attempt 2 (1 infrastructure retry)');
      const flaky = (await page(path(portalUrls.build(BASE, ids.flakyBuild)))).html;
      expect(row(flaky, `job-${ids.flaky}`)).toContain('attempt 2 (1 infrastructure retry)');
    });

    it('shows who asked to cancel a running job, and who canceled a job', async () => {
      const canceling = (await page(path(portalUrls.build(BASE, ids.cancelingBuild)))).html;
      expect(row(canceling, `job-${ids.canceling}`)).toContain('cancel requested by slack:U42');
      const canceled = (await page(path(portalUrls.build(BASE, ids.canceledBuild)))).html;
      const canceledRow = row(canceled, `job-${ids.canceled}`);
      expect(canceledRow).toContain('canceled by cli:bob');
      // Said once: the error column does not repeat it.
      expect(canceledRow.split('canceled by cli:bob')).toHaveLength(2);
      expect(canceledRow).not.toContain('cancel requested');
    });

    it('styles a timed-out job like a failed one', async () => {
      const { html } = await page(path(portalUrls.build(BASE, ids.timedOutBuild)));
      expect(row(html, `job-${ids.timedOut}`)).toContain(
        '<span class="state state-timed_out">timed out</span>',
      );
      expect(PORTAL_STYLE.body).toMatch(
        /\.state-failed,\s*\.state-timed_out\s*\{\s*color: #cf222e;\s*\}/,
      );
      expect(html).toContain('<span class="state state-failed">failed</span>');
    });

    it('links a job that reuses another to that job’s log', async () => {
      const { html } = await page(path(portalUrls.build(BASE, ids.reuseBuild)));
      const reusing = row(html, `job-${ids.reusing}`);
      expect(reusing).toContain(
        `reused from <a href="${portalUrls.jobLog(BASE, ids.running)}">job ${ids.running}</a>`,
      );
      expect(reusing).toContain(`<li class="waiting">attached to job ${ids.running},`);
    });

    it('gives the same in the builds JSON', async () => {
      const response = await app.request(`/api/v1/repos/acme/fleet/commits/${SHA}/builds`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { builds: { jobs: Record<string, unknown>[] }[] };
      const jobs = new Map(
        body.builds.flatMap((entry) => entry.jobs).map((entry) => [entry.id as number, entry]),
      );
      expect(jobs.get(ids.unserved)).toMatchObject({
        state: 'queued',
        attempt: 0,
        waitingReason: 'no worker serves linux/riscv64',
        reuseOfJobId: null,
        reuseOfLogUrl: null,
      });
      expect(jobs.get(ids.running)).toMatchObject({
        waitingReason: null,
        logApiUrl: `${BASE}/api/v1/jobs/${ids.running}/log`,
      });
      expect(jobs.get(ids.retried)).toMatchObject({
        state: 'succeeded',
        attempt: 2,
        infraFailures: 1,
        maxInfraFailures: 3,
      });
      expect(jobs.get(ids.canceling)).toMatchObject({
        state: 'running',
        canceledBy: 'slack:U42',
        cancelRequestedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      expect(jobs.get(ids.canceled)).toMatchObject({ state: 'canceled', canceledBy: 'cli:bob' });
      expect(jobs.get(ids.timedOut)).toMatchObject({ state: 'timed_out', exitCode: 137 });
      expect(jobs.get(ids.reusing)).toMatchObject({
        reuseOfJobId: ids.running,
        reuseOfLogUrl: portalUrls.jobLog(BASE, ids.running),
      });
      expect(JSON.stringify(body)).not.toMatch(/timeoutMinutes|leaseExpiresAt|"spec"/);
    });
  });

  describe('logs', () => {
    it('follows the log of a running job: by its event stream, or a reload every 3 s without a script', async () => {
      const { html, response } = await page(path(portalUrls.jobLog(BASE, ids.running)));
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(html).toContain(REFRESH);
      expect(html).toContain(LIVE);
      expect(html).toContain(`<script src="${PORTAL_SCRIPT.url(BASE)}" defer=""></script>`);
      // Its two lines, numbered and linkable; the stream goes on after line 2.
      expect(html).toContain(
        '<span class="line" id="L1"><a class="ln" href="#L1">1</a><span style="color:rgb(0,187,0)">step 1</span></span>\n<span class="line" id="L2"><a class="ln" href="#L2">2</a>step 2</span>',
      );
      expect(html).toContain(
        `data-events="${portalUrls.jobLogEvents(BASE, ids.running, 1, 2).replace('&', '&amp;')}"`,
      );
      // The page shows the whole attempt whatever `from` says.
      const whole = (await page(`${path(portalUrls.jobLog(BASE, ids.running))}?from=1`)).html;
      expect(whole).toContain(
        'step 1</span></span>\n<span class="line" id="L2"><a class="ln" href="#L2">2</a>step 2</span>',
      );
    });

    it('reloads the page of a queued job that has not started, and says why it waits', async () => {
      const { html } = await page(path(portalUrls.jobLog(BASE, ids.unserved)));
      expect(html).toContain(REFRESH);
      expect(html).toContain('The job has not started yet.');
      expect(html).toContain('<p class="muted waiting">no worker serves linux/riscv64</p>');
    });

    it('does not reload the log page of a finished job', async () => {
      const { html } = await page(path(portalUrls.jobLog(BASE, ids.timedOut)));
      expect(html).toContain('still compiling');
      expect(html).toMatch(/<span class="state state-timed_out"[^>]*>timed out<\/span>/);
      expect(html).not.toContain('data-events');
      expect(html).not.toContain('http-equiv="refresh"');
      expect(html).not.toContain(LIVE);
    });

    it('links every attempt and shows an older one on request', async () => {
      const logUrl = portalUrls.jobLog(BASE, ids.retried);
      const latest = (await page(path(logUrl))).html;
      expect(latest).toContain('second attempt');
      expect(latest).not.toContain('first attempt');
      expect(latest).toContain(`<a href="${logUrl}?attempt=1">1</a>`);
      expect(latest).toContain('<strong>2</strong>');

      const older = (await page(`${path(logUrl)}?attempt=1`)).html;
      expect(older).toContain('first attempt');
      expect(older).not.toContain('second attempt');
      expect(older).toContain('attempt 1 of 2 (an earlier attempt)');
      expect(older).toContain(`<a href="${logUrl}?attempt=2">2</a>`);
      expect(older).toContain(`href="${logUrl}.txt?attempt=1"`);
      expect(older).not.toContain('http-equiv="refresh"');

      const raw = await app.request(`${path(logUrl)}.txt?attempt=1`);
      expect(await raw.text()).toBe('first attempt\n');
      const rest = await app.request(`${path(logUrl)}.txt?attempt=1&from=1`);
      expect(await rest.text()).toBe('');
    });

    it('points the log page of a job that reuses another to that job’s log', async () => {
      const { html } = await page(path(portalUrls.jobLog(BASE, ids.reusing)));
      expect(html).toContain(`href="${portalUrls.jobLog(BASE, ids.running)}"`);
      expect(html).toContain(`see the log of job ${ids.running}`);
    });

    it.each([
      ['a negative attempt', '?attempt=-1'],
      ['a fractional attempt', '?attempt=1.5'],
      ['an empty attempt', '?attempt='],
      ['a hexadecimal attempt', '?attempt=0x1'],
      ['a huge attempt', '?attempt=99999999999'],
    ])('answers 400 to a log page with %s', async (_what, query) => {
      const response = await app.request(`${path(portalUrls.jobLog(BASE, ids.running))}${query}`);
      expect(response.status).toBe(400);
      const html = await response.text();
      expect(html).toContain('Bad request');
      expect(html).toContain('attempt must be a non-negative integer');
    });

    it('answers 404 to a log page of an attempt not reached yet', async () => {
      const response = await app.request(`${path(portalUrls.jobLog(BASE, ids.running))}?attempt=2`);
      expect(response.status).toBe(404);
    });

    it('tails the log as JSON, from a sequence number on, with ANSI codes removed', async () => {
      expect(await logJson()).toEqual({
        jobId: ids.running,
        attempt: 1,
        state: 'running',
        text: 'step 1\nstep 2\n',
        nextSeq: 2,
        done: false,
      });
      expect(await logJson('?from=2')).toMatchObject({ text: '', nextSeq: 2, done: false });
      await appendLogChunk(database.db, {
        jobId: ids.running,
        attempt: 1,
        seq: 2,
        data: 'step 3\n',
      });
      expect(await logJson('?attempt=1&from=2')).toMatchObject({
        attempt: 1,
        text: 'step 3\n',
        nextSeq: 3,
        done: false,
      });
      expect(await logJson('?from=1')).toMatchObject({ text: 'step 2\nstep 3\n', nextSeq: 3 });
    });

    it('tails an older attempt as done, the latest of a running job and a job that has not started as not done', async () => {
      expect(await logJson('?attempt=1', ids.retried)).toEqual({
        jobId: ids.retried,
        attempt: 1,
        state: 'succeeded',
        text: 'first attempt\n',
        nextSeq: 1,
        done: true,
      });
      expect(await logJson('?attempt=1', ids.flaky)).toMatchObject({
        attempt: 1,
        state: 'running',
        text: 'flaky 1\n',
        done: true,
      });
      expect(await logJson('', ids.flaky)).toMatchObject({
        attempt: 2,
        state: 'running',
        text: 'flaky 2\n',
        done: false,
      });
      expect(await logJson('', ids.unserved)).toEqual({
        jobId: ids.unserved,
        attempt: 0,
        state: 'queued',
        text: '',
        nextSeq: 0,
        done: false,
      });
    });

    it.each([
      ['a negative attempt', '?attempt=-1', 'attempt'],
      ['a word for from', '?from=abc', 'from'],
      ['an empty from', '?attempt=1&from=', 'from'],
      ['an exponent', '?from=1e3', 'from'],
      ['a plus sign', '?from=%2B1', 'from'],
    ])('answers 400 in JSON to a log tail with %s', async (_what, query, name) => {
      const response = await app.request(`/api/v1/jobs/${ids.running}/log${query}`);
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: string; message: string };
      expect(body.error).toBe('bad-request');
      expect(body.message).toContain(`${name} must be a non-negative integer`);
    });

    it.each([
      ['an unknown job', '/api/v1/jobs/999999/log'],
      ['a non-numeric job id', '/api/v1/jobs/abc/log'],
      ['an attempt not reached yet', '/api/v1/jobs/JOB/log?attempt=2'],
    ])('answers 404 in JSON to a log tail of %s', async (_what, url) => {
      const response = await app.request(url.replace('JOB', String(ids.running)));
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: 'not-found' });
    });

    // Changes the scenario: runs last.
    it('stops reloading once the job finishes, and the tail says done', async () => {
      await completeJob(
        database.db,
        { jobId: ids.running, attempt: 1 },
        { state: 'succeeded', exitCode: 0 },
      );
      expect(await logJson('?from=3')).toEqual({
        jobId: ids.running,
        attempt: 1,
        state: 'succeeded',
        text: '',
        nextSeq: 3,
        done: true,
      });
      const { html, response } = await page(path(portalUrls.jobLog(BASE, ids.running)));
      expect(html).not.toContain('http-equiv="refresh"');
      expect(html).not.toContain(LIVE);
      expect(response.headers.get('cache-control')).not.toBe('no-store');

      const reused = (await page(path(portalUrls.jobLog(BASE, ids.reusing)))).html;
      expect(reused).toMatch(/<span class="state state-succeeded"[^>]*>succeeded<\/span>/);
      expect(reused).not.toContain('http-equiv="refresh"');
    });
  });
});

describe('attemptSummary', () => {
  const job = { maxInfraFailures: 3 };
  it.each([
    [{ state: 'queued', attempt: 0, infraFailures: 0 }, undefined],
    [{ state: 'succeeded', attempt: 0, infraFailures: 0 }, undefined],
    [{ state: 'running', attempt: 1, infraFailures: 0 }, 'attempt 1'],
    [{ state: 'succeeded', attempt: 2, infraFailures: 1 }, 'attempt 2 (1 infrastructure retry)'],
    [{ state: 'running', attempt: 3, infraFailures: 2 }, 'attempt 3 (2 infrastructure retries)'],
    [{ state: 'failed', attempt: 2, infraFailures: 1 }, 'attempt 2 (1 infrastructure retry)'],
    [
      { state: 'queued', attempt: 1, infraFailures: 1 },
      'attempt 1 ended; queued for attempt 2 (1 infrastructure retry)',
    ],
    [{ state: 'queued', attempt: 1, infraFailures: 0 }, 'attempt 1 ended; queued for attempt 2'],
    [
      { state: 'failed', attempt: 3, infraFailures: 3 },
      'attempt 3; failed after 3 infrastructure failures (the limit)',
    ],
  ] as const)('says %j as %j', (fields, text) => {
    expect(attemptSummary({ ...job, ...fields })).toBe(text);
  });
});

describe('parseLogQuery', () => {
  it.each([
    [{}, { attempt: undefined, fromSeq: 0 }],
    [{ attempt: '2' }, { attempt: 2, fromSeq: 0 }],
    [
      { attempt: '0', from: '17' },
      { attempt: 0, fromSeq: 17 },
    ],
    [{ from: '007' }, { attempt: undefined, fromSeq: 7 }],
    [{ from: '999999999' }, { attempt: undefined, fromSeq: 999_999_999 }],
  ])('reads %j', (params, query) => {
    expect(parseLogQuery(params)).toEqual(query);
  });

  it.each([
    [{ attempt: '-1' }, 'attempt'],
    [{ attempt: '' }, 'attempt'],
    [{ attempt: ' 1' }, 'attempt'],
    [{ attempt: '1.0' }, 'attempt'],
    [{ from: '1000000000' }, 'from'],
    [{ from: '１' }, 'from'],
    [{ attempt: '1', from: 'x' }, 'from'],
  ])('refuses %j, naming %s', (params, name) => {
    const result = parseLogQuery(params);
    expect(result).toMatchObject({ error: expect.stringContaining(`${name} must be`) });
  });
});

describe('workerState', () => {
  it.each([
    [{ live: true, stoppedAt: null }, 'live'],
    [{ live: false, stoppedAt: new Date() }, 'stopped'],
    [{ live: false, stoppedAt: null }, 'lost'],
  ])('calls %j %s', (worker, state) => {
    expect(workerState(worker)).toBe(state);
  });
});

describe('age', () => {
  const now = new Date('2024-05-01T12:00:00Z');
  it.each([
    ['2024-05-01T12:00:00Z', '0 s ago'],
    ['2024-05-01T11:59:15Z', '45 s ago'],
    ['2024-05-01T11:55:00Z', '5 min ago'],
    ['2024-05-01T09:00:00Z', '3 h ago'],
    ['2024-04-28T12:00:00Z', '3 d ago'],
    ['2024-05-01T12:00:05Z', '0 s ago'],
  ])('says %s as %s', (at, text) => {
    expect(age(new Date(at), now)).toBe(text);
  });
});
