import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portalUrls } from '../core/urls';
import { createBuild } from '../db/queries/builds';
import { claimJob, completeJob, type Fence } from '../db/queries/jobs';
import { appendLogChunk } from '../db/queries/logs';
import { portalBuildRequest } from '../test/support/portal-builds';
// The layer rule forbids app code to import test/; this test file needs the shared services.
import { createTestDatabase, type TestDatabase } from '../test/support/services';
import { createPortalApp } from './app';

const BASE = 'http://portal.test';

interface ServerEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Reads Server-Sent Events from `response` as they come (the WHATWG HTML event stream format:
 * `field: value` lines, events separated by a blank line).
 */
function eventReader(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    /** The next event; undefined once the stream has ended. */
    async next(): Promise<ServerEvent | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: ServerEvent = { event: 'message', data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            const [field, ...rest] = line.split(': ');
            const value = rest.join(': ');
            if (field === 'event') event.event = value;
            else if (field === 'data') data.push(value);
            else if (field === 'id') event.id = value;
          }
          event.data = data.join('\n');
          return event;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
    cancel: () => reader.cancel(),
  };
}

describe('live log over Server-Sent Events', () => {
  let database: TestDatabase;
  let app: ReturnType<typeof createPortalApp>;
  let fence: Fence;
  let seq = 0;
  const append = (data: string) =>
    appendLogChunk(database.db, { ...fence, seq: seq++, data }).then((stored) =>
      expect(stored).toBe(true),
    );
  const events = (after: number | undefined, headers: Record<string, string> = {}) => {
    const url = portalUrls.jobLogEvents(BASE, fence.jobId, fence.attempt, after ?? 0);
    return app.request(url.slice(BASE.length), { headers });
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    await createBuild(database.db, portalBuildRequest('live', 'e'.repeat(40), { branch: 'main' }));
    const claimed = await claimJob(database.db, {
      workerId: 'worker-a',
      platforms: ['linux/amd64'],
      leaseSeconds: 60,
    });
    fence = { jobId: claimed!.job.id, attempt: claimed!.job.attempt };
    app = createPortalApp({
      db: database.db,
      storage: undefined as never,
      bucket: 'unused',
      portalUrl: BASE,
      log: pino({ level: 'silent' }),
      liveLog: { pollMs: 20 },
    });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('streams numbered lines as they are written, the state, and the end', async () => {
    await append('line one\nline t');
    const response = await events(0);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const stream = eventReader(response);
    // A line is sent once it is complete; the state at once.
    expect(await stream.next()).toEqual({
      event: 'lines',
      id: '1',
      data: '<span class="line" id="L1"><a class="ln" href="#L1">1</a>line one</span>',
    });
    expect(await stream.next()).toEqual({ event: 'state', data: 'running' });

    await append('wo <b> \x1b[31mred\x1b[0m\n');
    await append('third\nlast, without a line end');
    // Lines 2 and 3 come in one event, or two if a poll fell between the two writes.
    const later: string[] = [];
    for (let id = '1'; id !== '3';) {
      const event = await stream.next();
      expect(event).toMatchObject({ event: 'lines' });
      id = event!.id!;
      later.push(...event!.data.split('\n'));
    }
    expect(later).toEqual([
      '<span class="line" id="L2"><a class="ln" href="#L2">2</a>line two &lt;b&gt; <span style="color:rgb(187,0,0)">red</span></span>',
      '<span class="line" id="L3"><a class="ln" href="#L3">3</a>third</span>',
    ]);

    // Once the job is finished, the unended last line comes, then the end.
    await completeJob(database.db, fence, { state: 'succeeded', exitCode: 0 });
    expect(await stream.next()).toEqual({
      event: 'lines',
      id: '4',
      data: '<span class="line" id="L4"><a class="ln" href="#L4">4</a>last, without a line end</span>',
    });
    expect(await stream.next()).toEqual({ event: 'state', data: 'succeeded' });
    expect(await stream.next()).toEqual({ event: 'done', data: 'succeeded' });
    expect(await stream.next()).toBeUndefined();
  });

  it('resumes after the line a reconnecting browser got last (Last-Event-ID)', async () => {
    const stream = eventReader(await events(0, { 'last-event-id': '3' }));
    const sent: ServerEvent[] = [];
    for (let event = await stream.next(); event; event = await stream.next()) sent.push(event);
    expect(sent.map((event) => [event.event, event.id ?? ''])).toEqual([
      ['lines', '4'],
      ['state', ''],
      ['done', ''],
    ]);
    // The page's own count works the same way.
    const fromPage = eventReader(await events(4));
    expect(await fromPage.next()).toEqual({ event: 'state', data: 'succeeded' });
  });

  it('refuses a bad position and an unknown job or attempt', async () => {
    expect((await events(0, { 'last-event-id': 'x' })).status).toBe(400);
    expect((await app.request(`/jobs/${fence.jobId}/log/events?after=-1`)).status).toBe(400);
    expect((await app.request('/jobs/999999/log/events')).status).toBe(404);
    expect(
      (await app.request(`/jobs/${fence.jobId}/log/events?attempt=${fence.attempt + 1}`)).status,
    ).toBe(404);
  });
});
