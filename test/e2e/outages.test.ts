import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { readLog } from '../../db/queries/logs';
import { waitFor } from '../fakes/http';
import { startFleet, type Fleet } from '../support/fleet';
import { startPrivateMinio, startPrivatePostgres } from '../support/private-services';

/** Polls `check` like waitFor, treating a thrown error (the database is restarting) as "not yet". */
function waitThrough<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000) {
  return waitFor(what, () => check().catch(() => undefined), timeoutMs);
}

describe('outages of PostgreSQL and MinIO while workers run', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function logOf(fleet: Fleet, jobId: number): Promise<string> {
    return (await readLog(fleet.db, jobId)).text;
  }

  it('loses no job and claims none twice when PostgreSQL restarts; workers carry on', async () => {
    const postgres = await startPrivatePostgres();
    cleanups.push(() => postgres.stop());
    const fleet = await startFleet({ databaseUrl: postgres.url });
    cleanups.push(() => fleet.close());
    const workers = [
      fleet.spawnWorker({ WORKER_SLOTS: '2' }),
      fleet.spawnWorker({ WORKER_SLOTS: '2' }),
    ];
    const target = {
      script: 'sleep 0.5\necho "$CROSSDOCK_JOB_ID" > /out/id.txt',
      artifacts: ['id.txt'],
    };
    const targets = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`t${i}`, target]));
    for (let build = 0; build < 3; build++) await fleet.queue(targets, { ref: `b${build}` });
    const count = async (where: ReturnType<typeof sql>) => {
      const [row] = await fleet.db.execute<{ n: number }>(
        sql`select count(*)::int as n from jobs where ${where}`,
      );
      return row!.n;
    };
    await waitThrough('some jobs to succeed', async () =>
      (await count(sql`state = 'succeeded'`)) >= 5 ? true : undefined,
    );
    const restartedAt = new Date();
    postgres.restart();
    await waitThrough('every job to succeed', async () =>
      (await count(sql`state <> 'succeeded'`)) === 0 ? true : undefined,
    );
    // On failure, the workers' warnings say why a job ran again (a lost lease, an infrastructure
    // failure such as a fetch that raced another worker's).
    const warnings = workers.flatMap((worker) =>
      worker
        .output()
        .split('\n')
        .filter((line) => /"level":[4-6]0/.test(line)),
    );
    expect(await count(sql`attempt <> 1`), warnings.join('\n')).toBe(0);
    const artifacts = await listArtifactsForJobs(
      fleet.db,
      (await fleet.db.execute<{ id: string }>(sql`select id from jobs`)).map((row) =>
        Number(row.id),
      ),
    );
    // Each job's file, SHA256SUMS and provenance, once each.
    expect(artifacts).toHaveLength(24 * 3);
    expect(new Set(artifacts.map((artifact) => artifact.jobId)).size).toBe(24);
    expect(artifacts.filter((artifact) => artifact.name === 'SHA256SUMS')).toHaveLength(24);
    expect(await fleet.bucket.keys('artifacts/')).toHaveLength(24 * 3);
    // Both workers, never restarted, went on claiming after the restart.
    for (const worker of workers) {
      expect(worker.exitCode).toBeNull();
      const after = await fleet.db.execute<{ n: number }>(
        sql`select count(*)::int as n from jobs where worker_id = ${worker.workerId} and started_at > ${restartedAt.toISOString()}`,
      );
      expect(after[0]!.n).toBeGreaterThan(0);
    }
  });

  /** Kills MinIO as soon as a multipart upload is in progress in its data directory. */
  async function killDuringUpload(minio: Awaited<ReturnType<typeof startPrivateMinio>>) {
    const multipart = join(minio.dir, '.minio.sys', 'multipart');
    await waitFor(
      'a multipart upload to begin',
      () => {
        try {
          return readdirSync(multipart).length > 0 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      60_000,
    );
    await minio.kill();
  }

  const bigArtifact = {
    script: 'head -c 200000000 /dev/urandom > /out/big.bin\necho written',
    artifacts: ['big.bin'],
  };

  it('retries an upload cut off by a MinIO outage with backoff, and succeeds once MinIO is back', async () => {
    const minio = await startPrivateMinio();
    cleanups.push(() => minio.stop());
    const fleet = await startFleet({ storage: minio.storage });
    cleanups.push(() => fleet.close());
    fleet.spawnWorker({ WORKER_UPLOAD_RETRIES: '5', WORKER_UPLOAD_RETRY_DELAY_MS: '500' });
    const { build, jobs } = await fleet.queue({ amd64: bigArtifact });
    await killDuringUpload(minio);
    await waitFor('a retry to be logged', async () =>
      (await logOf(fleet, jobs[0]!.id)).includes('trying again') ? true : undefined,
    );
    await minio.start();
    const done = await fleet.waitForBuild(build.id, 'the build to finish', (b) =>
      ['succeeded', 'failed'].includes(b.build.state),
    );
    expect(done.jobs[0]).toMatchObject({ state: 'succeeded', attempt: 1, infraFailures: 0 });
    const artifact = (await listArtifactsForJobs(fleet.db, [jobs[0]!.id])).find(
      (row) => row.name === 'big.bin',
    );
    expect(artifact!.size).toBe(200_000_000);
    const object = await fleet.bucket.client.getObject(
      fleet.bucket.storage.bucket,
      artifact!.objectKey,
    );
    const hash = createHash('sha256');
    for await (const chunk of object) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(artifact!.sha256);
    expect(await logOf(fleet, jobs[0]!.id)).toMatch(
      /uploading big\.bin failed \(try 1: .*\); trying again/,
    );
  });

  it('fails clearly when MinIO stays down, leaving no object and no artifact row', async () => {
    const minio = await startPrivateMinio();
    cleanups.push(() => minio.stop());
    const fleet = await startFleet({ storage: minio.storage });
    cleanups.push(() => fleet.close());
    fleet.spawnWorker({ WORKER_UPLOAD_RETRIES: '2', WORKER_UPLOAD_RETRY_DELAY_MS: '300' });
    const { build, jobs } = await fleet.queue({ amd64: { ...bigArtifact, maxInfraFailures: 1 } });
    await killDuringUpload(minio);
    const done = await fleet.waitForBuild(build.id, 'the build to fail', (b) =>
      ['succeeded', 'failed'].includes(b.build.state),
    );
    expect(done.jobs[0]!.state).toBe('failed');
    expect(done.jobs[0]!.error).toMatch(
      /^infrastructure failure on 1 attempts; the last: object storage failed 3 times uploading artifact big\.bin: /,
    );
    expect(await listArtifactsForJobs(fleet.db, [jobs[0]!.id])).toEqual([]);
    await minio.start();
    expect(await fleet.bucket.keys()).toEqual([]);
  });
});
