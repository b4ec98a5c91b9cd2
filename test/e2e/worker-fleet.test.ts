import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { cancelBuild, getJob } from '../../db/queries/jobs';
import { readLog } from '../../db/queries/logs';
import { explainQueuedJobs, listWorkers } from '../../db/queries/workers';
import { waitFor } from '../fakes/http';
import { containersOf, startFleet, type Fleet } from '../support/fleet';
import { stopProcess } from '../support/processes';

// The fleet's heartbeat in these tests (WORKER_HEARTBEAT_SECONDS in startFleet).
const HEARTBEAT_MS = 3000;

describe('a fleet of worker processes on real dockerd, PostgreSQL and MinIO', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    fleet = await startFleet();
  });
  afterAll(async () => {
    await fleet?.close();
  });
  // No worker outlives its test (it would claim the next test's jobs), and no container or run
  // directory either.
  afterEach(async () => {
    await Promise.all(fleet.workers.map((worker) => stopProcess(worker, 20_000)));
    await waitFor('no containers left behind', () =>
      fleet.leftoverContainers().length === 0 ? true : undefined,
    );
    expect(fleet.leftoverRunDirectories()).toEqual([]);
  });

  async function logOf(jobId: number, attempt?: number): Promise<string> {
    return (await readLog(fleet.db, jobId, { attempt })).text;
  }

  async function waitForLog(jobId: number, text: string): Promise<void> {
    await waitFor(`"${text}" in the log of job ${jobId}`, async () =>
      (await logOf(jobId)).includes(text) ? true : undefined,
    );
  }

  async function waitForWorker(workerId: string): Promise<void> {
    await waitFor(`worker ${workerId} to register`, async () =>
      (await listWorkers(fleet.db)).some((worker) => worker.id === workerId && worker.live)
        ? true
        : undefined,
    );
  }

  it('finishes the job of a worker killed with SIGKILL on another worker', async () => {
    const doomed = fleet.spawnWorker();
    const { build, jobs } = await fleet.queue({
      amd64: {
        script: [
          'echo "attempt $CROSSDOCK_ATTEMPT started"',
          'if [ "$CROSSDOCK_ATTEMPT" = 1 ]; then echo partial > /out/result.txt; sleep 300; fi',
          'echo "built by attempt $CROSSDOCK_ATTEMPT" > /out/result.txt',
        ].join('\n'),
        artifacts: ['result.txt'],
      },
    });
    const jobId = jobs[0]!.id;
    await waitForLog(jobId, 'attempt 1 started');
    const survivor = fleet.spawnWorker();
    await waitForWorker(survivor.workerId);

    doomed.kill('SIGKILL');
    const killedAt = Date.now();
    const done = await fleet.waitForBuild(build.id, 'the build to finish', (b) =>
      ['succeeded', 'failed'].includes(b.build.state),
    );
    const elapsedMs = Date.now() - killedAt;
    console.info(`kill -9 → job succeeded on another worker in ${elapsedMs} ms`);
    // How soon is bench/recovery.ts's to measure (in heartbeats, over many kills): a bound here
    // would fail whenever the machine is busy.
    expect(done.jobs[0]).toMatchObject({
      state: 'succeeded',
      attempt: 2,
      workerId: survivor.workerId,
      infraFailures: 1,
    });
    const artifacts = await listArtifactsForJobs(fleet.db, [jobId]);
    expect(artifacts.map((artifact) => artifact.name).sort()).toEqual([
      'SHA256SUMS',
      'provenance.intoto.json',
      'result.txt',
    ]);
    // Only the second attempt's objects exist.
    const objects = await fleet.bucket.keys('artifacts/');
    expect(objects.sort()).toEqual(artifacts.map((artifact) => artifact.objectKey).sort());
    expect(objects.every((key) => key.includes(`/${jobId}.2/`))).toBe(true);
    const result = artifacts.find((artifact) => artifact.name === 'result.txt')!;
    const stored = await fleet.bucket.client.getObject(
      fleet.bucket.storage.bucket,
      result.objectKey,
    );
    expect(Buffer.concat(await stored.toArray()).toString()).toBe('built by attempt 2\n');
    // What the dead attempt printed before it died was kept.
    expect(await logOf(jobId, 1)).toContain('attempt 1 started');
    // The dead worker's container, still running its sleep, and its run directory are removed
    // at a survivor heartbeat.
    await waitFor(
      "the dead worker's container and run directory to be removed",
      () =>
        containersOf([doomed.workerId]).length === 0 && fleet.leftoverRunDirectories().length === 0
          ? true
          : undefined,
      10 * HEARTBEAT_MS,
    );
  });

  it('cancels a running build whose script ignores SIGTERM: SIGKILL after the grace, container removed', async () => {
    fleet.spawnWorker();
    const { build, jobs } = await fleet.queue({
      amd64: { script: 'trap "" TERM\necho ready\nsleep 300' },
    });
    await waitForLog(jobs[0]!.id, 'ready');
    const canceledAt = Date.now();
    expect(await cancelBuild(fleet.db, build.id, 'test:operator')).toEqual({
      canceled: 0,
      stopping: 1,
    });
    const done = await fleet.waitForBuild(
      build.id,
      'the build to be canceled',
      (b) => b.build.state === 'canceled',
      20_000,
    );
    console.info(`cancel → canceled in ${Date.now() - canceledAt} ms (grace 10 s)`);
    expect(done.jobs[0]).toMatchObject({ state: 'canceled', error: 'canceled by test:operator' });
    expect(await logOf(jobs[0]!.id)).toContain('canceled; the container was stopped');
    expect(fleet.leftoverRunDirectories()).toEqual([]);
  });

  it('ends a job that passes its timeout as timed_out', async () => {
    fleet.spawnWorker();
    const { build, jobs } = await fleet.queue({
      amd64: { script: 'echo started\nsleep 300', timeoutMinutes: 0.05 },
    });
    const done = await fleet.waitForBuild(build.id, 'the job to time out', (b) =>
      ['failed', 'succeeded'].includes(b.build.state),
    );
    expect(done.build.state).toBe('failed');
    expect(done.jobs[0]).toMatchObject({ state: 'timed_out', error: 'timed out after 0.05 min' });
    expect(await logOf(jobs[0]!.id)).toContain('timed out after 0.05 min');
  });

  it('keeps a job no worker serves queued with its reason, until a worker serving it starts', async () => {
    const amd64 = fleet.spawnWorker();
    await waitForWorker(amd64.workerId);
    const { build, jobs } = await fleet.queue({
      riscv64: { script: 'echo "on $CROSSDOCK_PLATFORM"', platform: 'linux/riscv64' },
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const job = (await getJob(fleet.db, jobs[0]!.id))!;
    expect(job.state).toBe('queued');
    expect((await explainQueuedJobs(fleet.db, [job])).get(job.id)).toBe(
      'no worker serves linux/riscv64',
    );
    const riscv = fleet.spawnWorker({ WORKER_PLATFORMS: 'linux/riscv64' });
    const done = await fleet.waitForBuild(build.id, 'the riscv64 job to run', (b) =>
      ['succeeded', 'failed'].includes(b.build.state),
    );
    expect(done.jobs[0]).toMatchObject({ state: 'succeeded', workerId: riscv.workerId });
  });

  it('on SIGTERM finishes its running job and claims no more; on a second signal hands jobs back', async () => {
    const worker = fleet.spawnWorker();
    const first = await fleet.queue({
      amd64: { script: 'echo go\nsleep 3\necho done > /out/done.txt', artifacts: ['done.txt'] },
    });
    await waitForLog(first.jobs[0]!.id, 'go');
    worker.kill('SIGTERM');
    const second = await fleet.queue({ amd64: { script: 'true' } });
    await new Promise((resolve) => worker.once('exit', resolve));
    expect((await getJob(fleet.db, first.jobs[0]!.id))!.state).toBe('succeeded');
    expect((await getJob(fleet.db, second.jobs[0]!.id))!.state).toBe('queued');
    await cancelBuild(fleet.db, second.build.id, 'test');

    const impatient = fleet.spawnWorker();
    const third = await fleet.queue({ amd64: { script: 'echo go\nsleep 300' } });
    await waitForLog(third.jobs[0]!.id, 'go');
    impatient.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    impatient.kill('SIGTERM');
    await new Promise((resolve) => impatient.once('exit', resolve));
    expect(await getJob(fleet.db, third.jobs[0]!.id)).toMatchObject({
      state: 'queued',
      attempt: 1,
      infraFailures: 0,
    });
    expect(await logOf(third.jobs[0]!.id, 1)).toContain('is shutting down; the job goes back');
    await cancelBuild(fleet.db, third.build.id, 'test');
  });

  it('masks configured secrets in the log, raw and base64-encoded, also when split across chunks', async () => {
    const secret = 's3cr3t-Token-value-42';
    const secretsFile = join(tmpdir(), `crossdock-secrets-${process.pid}.env`);
    writeFileSync(secretsFile, `DEPLOY_TOKEN=${secret}\n`, { mode: 0o600 });
    fleet.spawnWorker({ WORKER_SECRETS_FILE: secretsFile });
    const { build, jobs } = await fleet.queue({
      amd64: {
        secrets: ['DEPLOY_TOKEN'],
        script: [
          'echo "length ${#DEPLOY_TOKEN}"',
          'echo "raw: $DEPLOY_TOKEN"',
          'printf "%s" "$DEPLOY_TOKEN" | base64 -w0; echo',
          'printf "x%s" "$DEPLOY_TOKEN" | base64 -w0; echo',
          'printf "xy%s" "$DEPLOY_TOKEN" | base64 -w0; echo',
          'printf "split: %s" "${DEPLOY_TOKEN:0:7}"; sleep 1.5; printf "%s end\\n" "${DEPLOY_TOKEN:7}"',
        ].join('\n'),
      },
      missing: { secrets: ['NOT_CONFIGURED'], script: 'true' },
    });
    const done = await fleet.waitForBuild(build.id, 'the build to finish', (b) =>
      b.jobs.every((job) => !['queued', 'running'].includes(job.state)),
    );
    const job = done.jobs.find((row) => row.target === 'amd64')!;
    expect(job.state).toBe('succeeded');
    const log = await logOf(job.id);
    expect(log).toContain(`length ${secret.length}`);
    expect(log).toContain('raw: ***');
    expect(log).toContain('split: *** end');
    for (const prefix of ['', 'x', 'xy']) {
      const encoded = Buffer.from(prefix + secret).toString('base64');
      expect(log).not.toContain(encoded.slice(2, -2));
    }
    expect(log).not.toContain(secret);
    expect(log).not.toContain(secret.slice(0, 12));
    const missing = done.jobs.find((row) => row.target === 'missing')!;
    expect(missing.state).toBe('failed');
    expect(missing.error).toMatch(/secret\(s\) NOT_CONFIGURED are not configured on worker/);
    expect(jobs).toHaveLength(2);
  });

  it('refuses artifacts that are not regular files: links out of /out, a fifo, a device; uploads nothing', async () => {
    const objectsBefore = await fleet.bucket.keys('artifacts/');
    fleet.spawnWorker();
    const { build } = await fleet.queue({
      passwd: { script: 'ln -s /etc/passwd /out/passwd', artifacts: ['passwd'] },
      'outside-dir': {
        script: 'echo fine > /out/fine.txt\nln -s /etc /out/config',
        artifacts: ['*.txt', 'config/**'],
      },
      fifo: { script: 'mkfifo /out/pipe', artifacts: ['pipe'] },
      // Builds may not make devices (no CAP_MKNOD): artifacts.test.ts covers a device in /out.
      device: { script: 'mknod /out/disk b 8 0', artifacts: ['**'] },
      failing: { script: 'echo partial > /out/partial.txt\nexit 3', artifacts: ['*.txt'] },
      'no-match': { script: 'ln -s /etc/passwd /out/ignored\ntouch /out/other', artifacts: ['a'] },
    });
    const done = await fleet.waitForBuild(build.id, 'the jobs to finish', (b) =>
      b.jobs.every((job) => !['queued', 'running'].includes(job.state)),
    );
    const errors = Object.fromEntries(done.jobs.map((job) => [job.target, job.error]));
    expect(done.jobs.map((job) => job.state)).toEqual(done.jobs.map(() => 'failed'));
    expect(errors).toEqual({
      passwd:
        'artifact passwd is a symbolic link (to /etc/passwd); only regular files under /out are collected: copy the file itself there',
      'outside-dir':
        'artifact config is a symbolic link (to /etc); only regular files under /out are collected: copy the file itself there',
      fifo: 'artifact pipe is a named pipe (fifo); only regular files under /out are collected: copy the file itself there',
      device: 'script exited with 1',
      failing: 'script exited with 3',
      'no-match':
        'no file in /out matches the target\'s artifacts ["a"]; write the files to /out or fix the globs',
    });
    expect(done.jobs.every((job) => job.infraFailures === 0)).toBe(true);
    expect(
      await listArtifactsForJobs(
        fleet.db,
        done.jobs.map((job) => job.id),
      ),
    ).toEqual([]);
    expect(await fleet.bucket.keys('artifacts/')).toEqual(objectsBefore);
    expect(fleet.leftoverRunDirectories()).toEqual([]);
  });

  it('runs builds unprivileged: no new privileges, few capabilities, a pids limit, no network', async () => {
    fleet.spawnWorker();
    const { build, jobs } = await fleet.queue({
      probe: {
        script: [
          "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status",
          // cgroup v2, or v1's pids controller
          'echo "pids.max $(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"',
          'echo "interfaces $(ls /sys/class/net | xargs)"',
          'mknod /tmp/disk b 8 0 2>/dev/null || echo "mknod refused"',
        ].join('\n'),
      },
    });
    await fleet.waitForBuild(
      build.id,
      'the probe to succeed',
      (b) => b.build.state === 'succeeded',
    );
    const log = await logOf(jobs[0]!.id);
    // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7 (capability.h).
    expect(log).toMatch(/CapEff:\s+00000000000000fb/);
    expect(log).toMatch(/CapBnd:\s+00000000000000fb/);
    expect(log).toMatch(/NoNewPrivs:\s+1/);
    expect(log).toContain('pids.max 4096');
    expect(log).toContain('interfaces lo\n');
    expect(log).toContain('mknod refused');
  });

  it('retries a Docker daemon failure as an infrastructure failure, up to the limit', async () => {
    fleet.spawnWorker({ DOCKER_SOCKET: '/nonexistent/docker.sock' });
    const { build } = await fleet.queue({ amd64: { script: 'true', maxInfraFailures: 2 } });
    const done = await fleet.waitForBuild(build.id, 'the job to fail', (b) =>
      ['failed', 'succeeded'].includes(b.build.state),
    );
    expect(done.jobs[0]).toMatchObject({ state: 'failed', attempt: 2, infraFailures: 2 });
    expect(done.jobs[0]!.error).toMatch(
      /^infrastructure failure on 2 attempts; the last: the Docker daemon failed to inspect .*ENOENT/,
    );
  });
});
