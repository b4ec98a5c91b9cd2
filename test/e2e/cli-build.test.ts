import { join } from 'node:path';
import { desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { builds, jobs, repos } from '../../db/schema';
import { makeHelloRepo, startStack } from '../support/stack';

/**
 * The quick start's path as a story: a plain git repository (no GitHub) is registered with the
 * CLI, and `crossdock build amd64 main in demo/hello --wait` builds it natively, follows it to
 * the end and prints the download URLs, which serve the x86-64 binary.
 */
describe('the crossdock CLI with a plain git repository', () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let shas: ReturnType<typeof makeHelloRepo>;
  const cli = (args: string[]) => stack.cli(args);

  beforeAll(async () => {
    stack = await startStack();
    shas = makeHelloRepo(stack.gitRoot, 'demo', 'hello');
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('registers the repository, builds main for amd64 and prints working download URLs', async () => {
    const cloneUrl = join(stack.gitRoot, 'demo', 'hello.git');
    const added = await cli(['repo', 'add', 'demo/hello', '--git-url', cloneUrl]);
    expect(added.stdout).toContain('registered demo/hello');
    const [repo] = await stack.db.select().from(repos).where(eq(repos.name, 'hello'));
    expect(repo).toMatchObject({ owner: 'demo', source: 'git', cloneUrl });

    const { stdout } = await cli(['build', 'amd64', 'main', 'in', 'demo/hello', '--wait']);
    expect(stdout).toMatch(/build #\d+ queued: amd64 \(linux\/amd64, native\) of demo\/hello/);
    expect(stdout).toContain(`${stack.portalUrl}/demo/hello/commit/${shas.main}`);
    const [build] = await stack.db.select().from(builds);
    expect(build).toMatchObject({
      sha: shas.main,
      branch: 'main',
      trigger: 'cli',
      requester: 'cli:bob',
      state: 'succeeded',
    });
    const [job] = await stack.db.select().from(jobs).where(eq(jobs.buildId, build!.id));
    const binary = (await listArtifactsForJobs(stack.db, [job!.id])).find(
      (a) => a.name === 'hello-linux-amd64',
    )!;
    const url = /(http:\S+\/download\/hello-linux-amd64)\n/.exec(stdout)?.[1];
    expect(url).toBeDefined();
    const bytes = Buffer.from(await (await fetch(url!)).arrayBuffer());
    expect(bytes.readUInt16LE(18)).toBe(62); // e_machine EM_X86_64
    expect(bytes.length).toBe(binary.size);
  }, 300_000); // compiles GNU hello: minutes if the machine is busy with other builds

  it('attaches a repeated request to the finished build; --force builds again', async () => {
    const [first] = await stack.db.select().from(jobs).where(eq(jobs.target, 'amd64'));
    const again = await cli(['build', 'amd64', 'main', 'in', 'demo/hello', '--wait']);
    expect(again.stdout).toMatch(/build #\d+ succeeded \(amd64: succeeded\)/);
    const reused = (await stack.db.select().from(jobs).where(eq(jobs.target, 'amd64'))).find(
      (job) => job.id !== first!.id,
    )!;
    expect(reused).toMatchObject({ state: 'succeeded', reuseOfJobId: first!.id, attempt: 0 });
    const [original] = await listArtifactsForJobs(stack.db, [first!.id]);
    const [copy] = await listArtifactsForJobs(stack.db, [reused.id]);
    expect(copy).toMatchObject({ objectKey: original!.objectKey, sha256: original!.sha256 });

    const forced = await cli(['build', 'amd64', 'main', 'in', 'demo/hello', '--force', '--wait']);
    expect(forced.stdout).toMatch(/build #\d+ succeeded/);
    const [rebuilt] = await stack.db
      .select()
      .from(jobs)
      .where(eq(jobs.target, 'amd64'))
      .orderBy(desc(jobs.id))
      .limit(1);
    expect(rebuilt).toMatchObject({ state: 'succeeded', reuseOfJobId: null, attempt: 1 });
  }, 300_000);

  it('lists the workers and the queue, and cancels a build', async () => {
    const workers = await cli(['workers']);
    expect(workers.stdout).toMatch(
      new RegExp(`^${stack.worker.workerId}  live  \\S+  linux/amd64.*  0/1 slots`, 'm'),
    );
    const queued = await cli(['build', 'riscv64', 'main', 'in', 'demo/hello']).then(
      () => undefined,
      (error: { stderr: string }) => error.stderr,
    );
    // The example recipe has no riscv64 target: the CLI says which targets exist.
    expect(queued).toContain('Unknown target `riscv64`');
    const { stdout } = await cli(['build', 'arm64', 'main', 'in', 'demo/hello', '--force']);
    const buildId = /build #(\d+) queued/.exec(stdout)![1]!;
    const canceled = await cli(['cancel', buildId]);
    expect(canceled.stdout).toMatch(
      new RegExp(
        `^build #${buildId}: [01] queued job\\(s\\) canceled, [01] running job\\(s\\) being stopped`,
      ),
    );
    const [build] = await stack.db
      .select()
      .from(builds)
      .where(eq(builds.id, Number(buildId)));
    await expect
      .poll(
        async () =>
          (await stack.db.select().from(builds).where(eq(builds.id, build!.id)))[0]!.state,
        { timeout: 30_000, interval: 200 },
      )
      .toBe('canceled');
    const queue = await cli(['queue']);
    expect(queue.stdout).toBe('nothing is queued or running\n');
    const missing = await cli(['cancel', '999999']).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(missing).toMatchObject({ code: 2, stderr: 'crossdock: There is no build #999999.\n' });
  });

  it('exits 2 with the reason for an unknown ref, and queues nothing', async () => {
    const before = (await stack.db.select().from(builds)).length;
    const failure = await cli(['build', 'amd64', 'no-such-branch', 'in', 'demo/hello']).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toContain(
      '`no-such-branch` is not a branch, tag or commit of demo/hello.',
    );
    expect((await stack.db.select().from(builds)).length).toBe(before);
  });

  it('makes a repository private in the portal, and public again', async () => {
    const page = `${stack.portalUrl}/demo/hello`;
    expect((await fetch(page)).status).toBe(200);
    const hidden = await cli(['repo', 'visibility', 'demo/hello', 'private']);
    expect(hidden.stdout).toBe('demo/hello is now private in the portal\n');
    expect((await fetch(page)).status).toBe(404);
    await cli(['repo', 'visibility', 'demo/hello', 'public']);
    expect((await fetch(page)).status).toBe(200);
    const wrong = await cli(['repo', 'visibility', 'demo/hello', 'secret']).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(wrong).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('`public` or `private`'),
    });
  });
});
