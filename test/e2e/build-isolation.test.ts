import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { readLog } from '../../db/queries/logs';
import { BUILDER_IMAGE, startFleet, type Fleet } from '../support/fleet';
import { stopProcess } from '../support/processes';

/** The docker volumes whose label io.crossdock.target is `target`. */
const volumesOf = (target: string) =>
  execFileSync(
    'docker',
    ['volume', 'ls', '-q', '--filter', `label=io.crossdock.target=${target}`],
    { encoding: 'utf8' },
  )
    .split('\n')
    .filter(Boolean)
    .sort();

describe('build isolation and attestation: caches by trust, secrets, limits, SHA256SUMS, provenance', () => {
  let fleet: Fleet;
  // Cache volumes outlive builds: a target name of this run's own keeps runs apart.
  const cached = `cached-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    fleet = await startFleet();
  });
  afterAll(async () => {
    await fleet?.close();
    const volumes = volumesOf(cached);
    if (volumes.length) execFileSync('docker', ['volume', 'rm', ...volumes]);
  });
  afterEach(async () => {
    await Promise.all(fleet.workers.map((worker) => stopProcess(worker, 20_000)));
  });

  const logOf = async (jobId: number) => (await readLog(fleet.db, jobId)).text;
  const finished = (buildId: number) =>
    fleet.waitForBuild(buildId, 'the build to finish', (b) =>
      b.jobs.every((job) => !['queued', 'running'].includes(job.state)),
    );

  it('keeps caches of trusted builds only: untrusted ones get empty scratch volumes', async () => {
    fleet.spawnWorker();
    const probe = {
      caches: ['ccache', '/root/.cache/tool'],
      script: [
        'echo "CCACHE_DIR=$CCACHE_DIR"',
        'echo "seen: $(find /cache/ccache /root/.cache/tool -type f -printf "%f\\n" | sort | xargs)"',
        'echo x > "/cache/ccache/$MARK" && echo x > "/root/.cache/tool/$MARK-tool"',
      ].join('\n'),
    };
    const run = async (mark: string, options: { trusted?: boolean; pullNumber?: number }) => {
      const { build, jobs } = await fleet.queue(
        { [cached]: { ...probe, env: { MARK: mark } } },
        options,
      );
      const done = await finished(build.id);
      expect(done.jobs[0]!.state).toBe('succeeded');
      return logOf(jobs[0]!.id);
    };
    const first = await run('trusted-1', {});
    expect(first).toContain('CCACHE_DIR=/cache/ccache');
    expect(first).toContain('seen: \n');
    // A fork's pull request: empty scratch volumes; it cannot see or touch the trusted ones, and
    // what it writes is gone with its container (no fork can poison another build's cache).
    const fork = await run('untrusted-1', { trusted: false, pullNumber: 9 });
    expect(fork).toContain('seen: \n');
    expect(fork).toContain('an empty scratch volume (untrusted code keeps no cache)');
    const forkAgain = await run('untrusted-2', { trusted: false, pullNumber: 9 });
    expect(forkAgain).toContain('seen: \n');
    const second = await run('trusted-2', {});
    expect(second).toContain('seen: trusted-1 trusted-1-tool\n');
    // Only the trusted build's two volumes exist: the scratch ones were removed.
    const volumes = volumesOf(cached);
    expect(volumes).toHaveLength(2);
    expect(volumes.filter((name) => name.includes('-untrusted-'))).toHaveLength(0);
    expect(volumes.every((name) => name.startsWith(`crossdock-cache-test-fleet-${cached}-`))).toBe(
      true,
    );
  });

  it('gives secrets to trusted builds only, and says so', async () => {
    const secret = `s3cr3t-${randomBytes(6).toString('hex')}`;
    const secretsFile = join(tmpdir(), `crossdock-secrets-${process.pid}-trust.env`);
    writeFileSync(secretsFile, `DEPLOY_TOKEN=${secret}\n`, { mode: 0o600 });
    fleet.spawnWorker({ WORKER_SECRETS_FILE: secretsFile });
    const target = { secrets: ['DEPLOY_TOKEN'], script: 'echo "token length ${#DEPLOY_TOKEN}"' };
    const fork = await fleet.queue({ deploy: target }, { trusted: false, pullNumber: 12 });
    const own = await fleet.queue({ deploy: target });
    const [forkDone, ownDone] = [await finished(fork.build.id), await finished(own.build.id)];
    expect(forkDone.jobs[0]).toMatchObject({ state: 'failed', infraFailures: 0 });
    expect(forkDone.jobs[0]!.error).toBe(
      `target deploy asks for secret(s) DEPLOY_TOKEN, but build ${fork.build.id} is of untrusted code (pull request #12 from a fork); secrets go only into trusted builds. Build it from a branch of the repository, or drop the secrets from targets that pull requests build`,
    );
    expect(await logOf(forkDone.jobs[0]!.id)).not.toContain('token length');
    expect(ownDone.jobs[0]!.state).toBe('succeeded');
    expect(await logOf(ownDone.jobs[0]!.id)).toContain(`token length ${secret.length}`);
  });

  it('limits CPU and memory: the recipe asks, the worker caps and defaults', async () => {
    fleet.spawnWorker({ WORKER_JOB_MEMORY: '256m' });
    // cgroup v2 files, else v1's.
    const script = [
      'echo "cpu $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)")"',
      'echo "memory $(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"',
    ].join('\n');
    const { build, jobs } = await fleet.queue({
      asked: { script, resources: { cpus: 0.5, memoryBytes: 64 * 2 ** 20 } },
      defaults: { script },
      greedy: { script, resources: { cpus: 999, memoryBytes: 2 ** 50 } },
    });
    await finished(build.id);
    const [asked, defaults, greedy] = await Promise.all(jobs.map((job) => logOf(job.id)));
    expect(asked).toMatch(/cpu 50000 100000\n/);
    expect(asked).toContain(`memory ${64 * 2 ** 20}\n`);
    expect(defaults).toContain(`memory ${256 * 2 ** 20}\n`);
    const cpus = Number(execFileSync('nproc', { encoding: 'utf8' }));
    expect(greedy).toMatch(new RegExp(`cpu ${cpus * 100000} 100000\\n`));
    expect(greedy).toContain(`memory ${Math.floor(totalmem() / 4096) * 4096}\n`);
    expect(greedy).toContain('resources capped at this worker');
  });

  it('adds SHA256SUMS and SLSA v1 provenance to every job, and refuses artifacts named like them', async () => {
    fleet.spawnWorker();
    const { build, jobs } = await fleet.queue({
      amd64: {
        script: 'mkdir /out/bin && echo hello > /out/bin/hello && echo notes > /out/NOTES.md',
        artifacts: ['**'],
      },
      clash: { script: 'echo mine > /out/SHA256SUMS', artifacts: ['*'] },
    });
    const done = await finished(build.id);
    const [job, clash] = [done.jobs[0]!, done.jobs[1]!];
    expect(clash).toMatchObject({ target: 'clash', state: 'failed' });
    expect(clash.error).toBe(
      "artifact SHA256SUMS: the name is Crossdock's (it adds SHA256SUMS and provenance.intoto.json to every job); rename yours or leave it out of the artifact globs",
    );
    expect(job.state).toBe('succeeded');
    const artifacts = await listArtifactsForJobs(fleet.db, [job.id]);
    expect(artifacts.map((artifact) => artifact.name).sort()).toEqual([
      'NOTES.md',
      'SHA256SUMS',
      'bin/hello',
      'provenance.intoto.json',
    ]);
    const read = async (name: string) => {
      const artifact = artifacts.find((row) => row.name === name)!;
      const body = await text(
        await fleet.bucket.client.getObject(fleet.bucket.storage.bucket, artifact.objectKey),
      );
      expect(createHash('sha256').update(body).digest('hex')).toBe(artifact.sha256);
      return body;
    };
    const sha256 = (content: string) => createHash('sha256').update(content).digest('hex');
    expect(await read('SHA256SUMS')).toBe(
      `${sha256('notes\n')}  NOTES.md\n${sha256('hello\n')}  bin/hello\n`,
    );
    const statement = JSON.parse(await read('provenance.intoto.json'));
    expect(statement).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      predicateType: 'https://slsa.dev/provenance/v1',
      subject: [
        { name: 'NOTES.md', digest: { sha256: sha256('notes\n') } },
        { name: 'bin/hello', digest: { sha256: sha256('hello\n') } },
      ],
      predicate: {
        buildDefinition: {
          externalParameters: {
            repository: 'test/fleet',
            commit: fleet.sha,
            target: 'amd64',
            recipe: { digest: { sha256: build.recipeDigest } },
          },
          internalParameters: { toolchain: 'native', image: BUILDER_IMAGE, trusted: true },
          resolvedDependencies: [
            { digest: { gitCommit: fleet.sha } },
            {
              uri: `docker-image:${BUILDER_IMAGE}`,
              digest: { sha256: job.imageDigest!.replace('sha256:', '') },
            },
          ],
        },
        runDetails: {
          builder: { id: `crossdock-worker:${job.workerId}` },
          metadata: { invocationId: `crossdock:build/${build.id}/job/${jobs[0]!.id}/attempt/1` },
        },
      },
    });
    const { startedOn, finishedOn } = statement.predicate.runDetails.metadata;
    expect(Date.parse(startedOn)).toBeLessThanOrEqual(Date.parse(finishedOn));
    expect(Date.parse(startedOn)).toBeGreaterThanOrEqual(job.startedAt!.getTime());
    expect(Date.parse(finishedOn)).toBeLessThanOrEqual(job.finishedAt!.getTime());
  });
});
