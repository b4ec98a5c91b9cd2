import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { count, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builds, jobs, workers } from '../../db/schema';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { waitFor } from '../fakes/http';
import { postSlashCommand, slackSession } from '../support/slack';
import { CHANNEL, SIGNING_SECRET, makeHelloRepo, startStack } from '../support/stack';

const run = promisify(execFile);

/**
 * The walking skeleton as a story: an engineer types `/build arm64 pr-123` in Slack; a separate
 * worker process cross-builds GNU hello (Debian's source package) for linux/arm64 in Docker;
 * the binary lands in MinIO with its sha256; the Slack message is edited with the portal link;
 * the portal lists the artifact and serves its exact bytes.
 */
describe('/build in Slack, end to end', () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let shas: ReturnType<typeof makeHelloRepo>;
  const scratch = mkdtempSync(join(tmpdir(), 'crossdock-recipes-'));

  const buildCount = async () => (await stack.db.select({ n: count() }).from(builds))[0]!.n;
  let session: ReturnType<typeof slackSession>;
  const slashCommand = (text: string) => session.command(text);
  const answer = async (text: string) => (await session.answerTo(await slashCommand(text))).text;
  const finishedBuild = (buildId: number) =>
    waitFor(
      `build ${buildId} to finish`,
      async () => {
        const [build] = await stack.db.select().from(builds).where(eq(builds.id, buildId));
        return build && !['queued', 'running'].includes(build.state) ? build : undefined;
      },
      240_000,
    );

  beforeAll(async () => {
    stack = await startStack();
    shas = makeHelloRepo(stack.gitRoot, 'acme', 'hello');
    session = slackSession({
      url: stack.slackUrl,
      signingSecret: SIGNING_SECRET,
      slack: stack.slack,
      channelId: CHANNEL,
      userId: 'U0ALICE',
    });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('cross-builds pull request 123 for arm64 and serves the binary from the portal', async () => {
    // Acknowledged at once (200 within Slack's 3 s, checked by the session), with nothing to
    // say: the build's channel message is the answer.
    const sent = await slashCommand('arm64 pr-123');
    expect(sent.reply.body).toBe('');
    await waitFor('the build message', () =>
      stack.slack.calls.find((call) => call.method === 'chat.postMessage'),
    );

    const allBuilds = await stack.db.select().from(builds);
    expect(allBuilds).toHaveLength(1);
    const build = allBuilds[0]!;
    expect(build).toMatchObject({
      sha: shas.pr123,
      pullNumber: 123,
      trigger: 'slack',
      requester: 'slack:U0ALICE',
    });
    const buildJobs = await stack.db.select().from(jobs).where(eq(jobs.buildId, build.id));
    expect(buildJobs).toHaveLength(1);
    expect(buildJobs[0]).toMatchObject({
      target: 'arm64',
      platform: 'linux/arm64',
      toolchains: ['native', 'cross', 'emulated'],
    });

    const finished = await finishedBuild(build.id);
    expect(finished.state).toBe('succeeded');
    const [job] = await stack.db.select().from(jobs).where(eq(jobs.buildId, build.id));
    expect(job!.state).toBe('succeeded');
    // No arm64 worker: the amd64 worker cross-compiled it, and the job says so.
    expect(job!.toolchain).toBe('cross');
    // A separate worker process ran it.
    expect(job!.workerId).toBe(stack.worker.workerId);
    const [worker] = await stack.db
      .select()
      .from(workers)
      .where(eq(workers.id, stack.worker.workerId));
    expect(worker!.pid).toBe(stack.worker.pid);
    expect(worker!.pid).not.toBe(process.pid);
    expect(job!.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // The binary in MinIO is an aarch64 ELF executable whose recorded sha256 matches its bytes.
    const artifacts = await listArtifactsForJobs(stack.db, [job!.id]);
    expect(artifacts.map((artifact) => artifact.name).sort()).toEqual([
      'SHA256SUMS',
      'hello-linux-arm64',
      'hello-linux-arm64.tar.gz',
      'provenance.intoto.json',
    ]);
    const binary = artifacts.find((artifact) => artifact.name === 'hello-linux-arm64')!;
    const chunks: Buffer[] = [];
    for await (const chunk of await stack.bucket.client.getObject(
      stack.bucket.storage.bucket,
      binary.objectKey,
    ))
      chunks.push(chunk);
    const stored = Buffer.concat(chunks);
    expect(stored.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
    expect(stored.readUInt16LE(18)).toBe(183); // e_machine EM_AARCH64
    expect(stored.length).toBe(binary.size);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(binary.sha256);

    // The portal's commit page lists it, and its download link returns the same bytes.
    const page = await (await fetch(`${stack.portalUrl}/acme/hello/commit/${shas.pr123}`)).text();
    expect(page).toContain('hello-linux-arm64');
    expect(page).toContain(binary.sha256);
    const link = /href="([^"]*\/artifacts\/\d+\/download\/hello-linux-arm64)"/.exec(page)?.[1];
    expect(link).toBeDefined();
    const download = await fetch(new URL(link!, stack.portalUrl));
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(stored)).toBe(true);

    // Slack: one message posted in the channel, then edited to the result with the portal link.
    const update = await waitFor('the Slack message edited to succeeded', () =>
      stack.slack.calls.find(
        (call) => call.method === 'chat.update' && String(call.args.text).includes('succeeded'),
      ),
    );
    const posts = stack.slack.calls.filter(
      (call) => call.method === 'chat.postMessage' && call.args.channel === CHANNEL,
    );
    expect(posts).toHaveLength(1);
    expect(posts[0]!.args.channel).toBe(CHANNEL);
    expect(update.args.ts).toBe(`1700000000.000001`);
    expect(String(update.args.text)).toContain(`${stack.portalUrl}/builds/${build.id}`);
    expect(JSON.stringify(update.args.blocks)).toContain(
      `${stack.portalUrl}/artifacts/${binary.id}/download/hello-linux-arm64`,
    );
    expect(stack.slack.unexpected).toEqual([]);
    expect(stack.slack.violations).toEqual([]);
    expect(stack.github.unexpected).toEqual([]);
  }, 300_000); // cross-compiles GNU hello: minutes if the machine is busy with other builds

  it('refuses a forged signature with 401 and queues nothing', async () => {
    const before = await buildCount();
    const reply = await postSlashCommand(
      stack.slackUrl,
      SIGNING_SECRET,
      { command: '/build', text: 'arm64 pr-123', channel_id: CHANNEL, user_id: 'U0ALICE' },
      { forge: true },
    );
    expect(reply.status).toBe(401);
    expect(await buildCount()).toBe(before);
  });

  it('answers an unknown target with the valid ones and queues nothing', async () => {
    const before = await buildCount();
    const text = await answer('arm46 pr-123');
    expect(text).toContain('Unknown target `arm46`');
    expect(text).toContain('did you mean `arm64`');
    expect(text).toContain('`amd64`, `arm64`');
    expect(await buildCount()).toBe(before);
  });

  it('answers an unknown ref and an invalid recipe clearly and queues nothing', async () => {
    const before = await buildCount();
    const unknownRef = await answer('arm64 pr-999');
    expect(unknownRef).toBe('Pull request #999 does not exist in acme/hello.');
    const badRecipe = join(scratch, 'bad.yml');
    writeFileSync(
      badRecipe,
      'targets:\n  arm64:\n    platform: arm64\n    image: x\n    script: make\n',
    );
    makeHelloRepo(stack.gitRoot, 'acme', 'bad-recipe', badRecipe);
    const invalid = await answer('arm64 main in acme/bad-recipe');
    expect(invalid).toBe(
      '.crossdock.yml line 3, targets.arm64.platform: must be an OCI platform such as linux/arm64',
    );
    expect(await buildCount()).toBe(before);
  });

  it('ends a build whose script exits 1 as a failed job and shows its log', async () => {
    const recipe = join(scratch, 'failing.yml');
    writeFileSync(
      recipe,
      [
        'targets:',
        '  broken:',
        '    platform: linux/amd64',
        '    image: crossdock/builder-debian:bookworm',
        '    script: |',
        '      echo "checking for libfrobnicate..."',
        '      echo "error: libfrobnicate-dev is missing" >&2',
        '      exit 1',
        '    artifacts: ["*"]',
        '',
      ].join('\n'),
    );
    makeHelloRepo(stack.gitRoot, 'acme', 'failing', recipe);
    const before = await buildCount();
    await slashCommand('broken main in acme/failing');
    const buildId = await waitFor('the new build', async () => {
      const [newest] = await stack.db.select().from(builds).orderBy(desc(builds.id)).limit(1);
      return (await buildCount()) > before ? newest!.id : undefined;
    });
    const finished = await finishedBuild(buildId);
    expect(finished.state).toBe('failed');
    const [job] = await stack.db.select().from(jobs).where(eq(jobs.buildId, buildId));
    expect(job).toMatchObject({ state: 'failed', exitCode: 1, error: 'script exited with 1' });
    expect(await listArtifactsForJobs(stack.db, [job!.id])).toEqual([]);

    const log = await (await fetch(`${stack.portalUrl}/jobs/${job!.id}/log`)).text();
    expect(log).toContain('error: libfrobnicate-dev is missing');
    const update = await waitFor('the Slack message edited to failed', () =>
      stack.slack.calls.find(
        (call) =>
          call.method === 'chat.update' &&
          String(call.args.text).includes(`Build #${buildId}`) &&
          String(call.args.text).includes('failed'),
      ),
    );
    expect(JSON.stringify(update.args.blocks)).toContain('script exited with 1');
    // The log's last lines go in the message's thread.
    const reply = await waitFor('the log in the thread', () =>
      stack.slack.calls.find((call) => call.args.thread_ts === update.args.ts),
    );
    expect(JSON.stringify(reply.args.blocks)).toContain('error: libfrobnicate-dev is missing');
  });

  it("leaves none of its worker's containers behind", async () => {
    const { stdout } = await run('docker', [
      'ps',
      '--all',
      '--quiet',
      '--filter',
      `label=io.crossdock.worker=${stack.worker.workerId}`,
    ]);
    expect(stdout.trim()).toBe('');
  });
});
