import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuild, type NewJob } from '../../db/queries/builds';
import { waitFor } from '../fakes/http';
import { createTestDatabase, type TestDatabase } from '../support/services';
import { stopProcess } from '../support/processes';

const ROOT = new URL('../../', import.meta.url).pathname;
const JOBS = 500;
const WORKERS = 4;

describe('the queue under load', () => {
  let database: TestDatabase;
  let dir: string;
  const workers: ChildProcess[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'crossdock-load-'));
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => stopProcess(worker)));
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`runs ${JOBS} no-op jobs queued in one burst on ${WORKERS} worker processes exactly once each`, async () => {
    const spec = { script: 'true', artifacts: [], env: {}, network: false, timeoutMinutes: 1 };
    for (let index = 0; index < WORKERS; index++) {
      const worker = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'test/support/noop-worker.ts')],
        {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH,
            DATABASE_URL: database.url,
            WORKER_ID: `noop-${index}`,
            WORKER_SLOTS: '2',
            NOOP_OUTPUT: join(dir, `noop-${index}.txt`),
          },
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      workers.push(worker);
    }
    await waitFor('every worker to register', async () => {
      const [row] = await database.db.execute<{ n: number }>(
        sql`select count(*)::int as n from workers`,
      );
      return row!.n === WORKERS ? true : undefined;
    });
    // 50 builds of 10 jobs in one burst, once every worker is registered: a worker that came up
    // after the others had drained the queue would take no part, failing the check below.
    for (let build = 0; build < JOBS / 10; build++) {
      await createBuild(database.db, {
        repo: { owner: 'load', name: 'test', cloneUrl: '/nowhere.git', source: 'git' },
        sha: build.toString(16).padStart(40, '0'),
        ref: 'main',
        trigger: 'api',
        requester: 'test',
        recipeDigest: 'r',
        jobs: Array.from({ length: 10 }, (_, index): NewJob => ({
          target: `t${index}`,
          platform: 'linux/amd64',
          toolchains: ['native'],
          image: 'none',
          spec,
        })),
      });
    }
    await waitFor(
      'every job to finish',
      async () => {
        const [row] = await database.db.execute<{ open: number }>(
          sql`select count(*)::int as open from jobs where state <> 'succeeded'`,
        );
        return row!.open === 0 ? true : undefined;
      },
      120_000,
    );
    await Promise.all(workers.map((worker) => stopProcess(worker)));

    const completions = Array.from({ length: WORKERS }, (_, index) =>
      readFileSync(join(dir, `noop-${index}.txt`), 'utf8')
        .split('\n')
        .filter(Boolean),
    );
    const all = completions.flat();
    expect(all).toHaveLength(JOBS);
    expect(new Set(all).size).toBe(JOBS);
    // Every worker took part, and no job was claimed more than once.
    for (const done of completions) expect(done.length).toBeGreaterThan(0);
    const [attempts] = await database.db.execute<{ max: number; min: number }>(
      sql`select max(attempt)::int as max, min(attempt)::int as min from jobs`,
    );
    expect(attempts).toEqual({ max: 1, min: 1 });
    const [builds] = await database.db.execute<{ succeeded: number }>(
      sql`select count(*)::int as succeeded from builds where state = 'succeeded'`,
    );
    expect(builds!.succeeded).toBe(JOBS / 10);
  });
});
