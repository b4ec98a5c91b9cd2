import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { builds, jobs, repos } from '../../db/schema';
import { makeHelloRepo, startStack } from '../support/stack';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * The quick start's path as a story: a plain git repository (no GitHub) is registered with the
 * CLI, and `crossdock build amd64 main in demo/hello --wait` builds it natively, follows it to
 * the end and prints the download URLs, which serve the x86-64 binary.
 */
describe('the crossdock CLI with a plain git repository', () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let shas: { main: string; pr123: string };
  const cli = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', join(ROOT, 'bot/cli/main.ts'), ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: stack.databaseUrl,
        PORTAL_URL: stack.portalUrl,
        GIT_CACHE_DIR: join(stack.gitRoot, '..', 'cli-git'),
        USER: 'bob',
      },
    });

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
});
