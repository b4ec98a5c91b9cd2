import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBotServer } from '../../bot/server';
import { createLogger } from '../../core/logger';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { builds, githubHolds, jobs } from '../../db/schema';
import { startFakeGitHub } from '../fakes/github-api';
import { waitFor } from '../fakes/http';
import { deliverWebhook, examplePayload, retarget } from '../support/github';
import { spawnWorker, stopProcess, storageEnvOf, type WorkerProcess } from '../support/processes';
import { createTestBucket, createTestDatabase } from '../support/services';
import { makeHelloRepo } from '../support/stack';

const APP_ID = 4242;
const INSTALLATION_ID = 77;
const WEBHOOK_SECRET = 'test-webhook-secret-5a6b7c8d';
const RECIPE = [
  'targets:',
  '  amd64:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: |',
  '      tail -1 NEWS > /out/hello-amd64.txt',
  '    artifacts: [hello-amd64.txt]',
  '  docs:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: cp NEWS /out/NEWS.txt',
  '    artifacts: [NEWS.txt]',
  '  flaky:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: |',
  '      echo "the test suite timed out talking to the license server" >&2',
  '      exit 3',
  '  slow:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: |',
  "      if grep -q 'pull request 123' NEWS; then sleep 300; fi",
  '',
].join('\n');

/**
 * The GitHub App as a story, against PostgreSQL, MinIO, dockerd, a worker process and a fake of
 * GitHub's REST API that answers from a real private repository served over git's smart HTTP
 * (installation tokens required). Webhooks are real payloads from @octokit/webhooks-examples,
 * adjusted to the repository, signed with the App's secret and POSTed to the bot.
 */
describe('the GitHub App', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'crossdock-github-'));
  const log = createLogger({ name: 'github-e2e', level: 'warn' });
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let bucket: Awaited<ReturnType<typeof createTestBucket>>;
  let github: Awaited<ReturnType<typeof startFakeGitHub>>;
  let bot: Awaited<ReturnType<typeof startBotServer>>;
  let worker: WorkerProcess;
  let shas: ReturnType<typeof makeHelloRepo>;
  let webhookUrl: string;
  const gitRoot = join(scratch, 'github');
  const workDir = join(scratch, 'worker');

  const deliver = (
    event: string,
    payload: unknown,
    options?: { deliveryId?: string; forge?: boolean },
  ) => deliverWebhook(webhookUrl, WEBHOOK_SECRET, event, payload, options);
  const repoOf = (sender: string) => ({
    owner: 'acme',
    name: 'hello',
    installationId: INSTALLATION_ID,
    sender,
  });
  const pullPayload = (
    action: 'labeled' | 'synchronize',
    pull: { number: number; sha: string; author: string; fork: boolean },
    labels: string[],
    sender: string,
  ) => {
    const payload = retarget(examplePayload('pull_request', action), repoOf(sender));
    payload.number = pull.number;
    Object.assign(payload.pull_request, {
      number: pull.number,
      user: { ...payload.pull_request.user, login: pull.author },
      labels: labels.map((name) => ({ name })),
    });
    payload.pull_request.head = {
      ...payload.pull_request.head,
      sha: pull.sha,
      ref: pull.fork ? 'patch-1' : 'greeting',
      repo: {
        ...payload.pull_request.head.repo,
        full_name: pull.fork ? `${pull.author}/hello` : 'acme/hello',
      },
    };
    payload.pull_request.base.repo = { ...payload.pull_request.base.repo, full_name: 'acme/hello' };
    if (action === 'labeled') payload.label = { ...payload.label, name: labels.at(-1) };
    return payload;
  };
  const commentPayload = (pullNumber: number, body: string, author: string) => {
    const payload = retarget(examplePayload('issue_comment', 'created'), repoOf(author));
    payload.issue.number = pullNumber;
    // Comments on pull requests come as issue comments whose issue has `pull_request`.
    payload.issue.pull_request = {
      url: `https://api.github.com/repos/acme/hello/pulls/${pullNumber}`,
    };
    payload.comment = {
      ...payload.comment,
      id: github.addComment({ repo: 'acme/hello', issue: pullNumber, body, author }),
      body,
      created_at: new Date().toISOString(),
      user: { ...payload.comment.user, login: author },
    };
    return payload;
  };
  const buildsOf = (sha: string) =>
    database.db.select().from(builds).where(eq(builds.sha, sha)).orderBy(asc(builds.id));
  const finished = (buildId: number) =>
    waitFor(
      `build ${buildId} to finish`,
      async () => {
        const [build] = await database.db.select().from(builds).where(eq(builds.id, buildId));
        return build && !['queued', 'running'].includes(build.state) ? build : undefined;
      },
      180_000,
    );
  const jobOf = async (buildId: number, target: string) =>
    (
      await database.db
        .select()
        .from(jobs)
        .where(and(eq(jobs.buildId, buildId), eq(jobs.target, target)))
    )[0]!;
  const checkRunsOf = (sha: string, name: string) =>
    [...github.checkRuns.values()].filter((run) => run.headSha === sha && run.name === name);
  const commentsOn = (pullNumber: number) =>
    [...github.comments.values()].filter(
      (comment) => comment.issue === pullNumber && comment.author === 'crossdock[bot]',
    );
  /** A new commit on top of `parent` (same tree), set as `refs`; returns its sha. */
  const pushCommit = (parent: string, refs: string[]) => {
    const cwd = join(gitRoot, 'acme', 'hello.git');
    const sha = execFileSync(
      'git',
      ['commit-tree', `${parent}^{tree}`, '-p', parent, '-m', 'push'],
      {
        cwd,
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'someone',
          GIT_AUTHOR_EMAIL: 'someone@example.com',
          GIT_COMMITTER_NAME: 'someone',
          GIT_COMMITTER_EMAIL: 'someone@example.com',
        },
      },
    ).trim();
    for (const ref of refs) execFileSync('git', ['update-ref', ref, sha], { cwd });
    return sha;
  };
  /** Every file under `dir`, recursively. */
  const filesUnder = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
    });

  beforeAll(async () => {
    database = await createTestDatabase();
    bucket = await createTestBucket();
    const recipe = join(scratch, 'crossdock.yml');
    writeFileSync(recipe, RECIPE);
    shas = makeHelloRepo(gitRoot, 'acme', 'hello', recipe);
    github = await startFakeGitHub({
      root: gitRoot,
      app: { appId: APP_ID, publicKey, installationId: INSTALLATION_ID },
      privateRepos: ['acme/hello'],
      permissions: { maintainer: 'write', outsider: 'read', triager: 'triage' },
      pullAuthors: { 123: 'maintainer', 124: 'outsider' },
    });
    bot = await startBotServer(
      {
        slack: {
          signingSecret: 'unused-signing-secret',
          botToken: 'xoxb-unused',
          botId: 'B0CROSSDOCK',
          botUserId: 'U0CROSSDOCK',
          apiUrl: 'http://127.0.0.1:9/api/',
          channelRepos: {},
        },
        github: { apiUrl: github.url, cloneBaseUrl: github.cloneBaseUrl },
        githubApp: { appId: APP_ID, privateKey, webhookSecret: WEBHOOK_SECRET },
        storage: bucket.storage,
        gitCacheDir: join(scratch, 'bot-git'),
        portalUrl: 'http://127.0.0.1:8080',
        host: '127.0.0.1',
        port: 0,
        databaseUrl: database.url,
        logLevel: 'warn',
      },
      { db: database.db, log },
    );
    webhookUrl = `${bot.url}/api/github/webhooks`;
    const keyFile = join(scratch, 'app-key.pem');
    writeFileSync(keyFile, privateKey, { mode: 0o600 });
    worker = spawnWorker({
      DATABASE_URL: database.url,
      ...storageEnvOf(bucket.storage),
      WORKER_PLATFORMS: 'linux/amd64',
      WORKER_HEARTBEAT_SECONDS: '2',
      WORKER_POLL_SECONDS: '1',
      WORKER_WORK_DIR: workDir,
      GITHUB_API_URL: github.url,
      GITHUB_APP_ID: String(APP_ID),
      GITHUB_APP_PRIVATE_KEY_FILE: keyFile,
    });
  });
  afterAll(async () => {
    if (worker) await stopProcess(worker);
    await bot?.close();
    await github?.close();
    await bucket?.remove();
    await database?.drop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a delivery whose signature does not match, and builds nothing', async () => {
    const payload = pullPayload(
      'labeled',
      { number: 123, sha: shas.pr123, author: 'maintainer', fork: false },
      ['build:amd64'],
      'maintainer',
    );
    const forged = await deliver('pull_request', payload, { forge: true });
    expect(forged.status).toBeGreaterThanOrEqual(400);
    expect(forged.status).toBeLessThan(500);
    expect(await database.db.select().from(builds)).toEqual([]);
    expect(github.calls).toEqual([]);
  });

  it('builds a labelled pull request once however often GitHub delivers it, and reports back', async () => {
    const payload = pullPayload(
      'labeled',
      { number: 123, sha: shas.pr123, author: 'maintainer', fork: false },
      ['build:amd64'],
      'maintainer',
    );
    const first = await deliver('pull_request', payload);
    expect(first.status).toBe(200);
    // The same delivery again (GitHub's "Redeliver"), and the same request in a new delivery.
    expect((await deliver('pull_request', payload, { deliveryId: first.deliveryId })).status).toBe(
      200,
    );
    expect((await deliver('pull_request', payload)).status).toBe(200);
    const made = await buildsOf(shas.pr123);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({
      pullNumber: 123,
      branch: 'greeting',
      ref: 'pr-123',
      trigger: 'label',
      requester: 'github:maintainer',
      trusted: true,
      notify: { github: { installationId: INSTALLATION_ID } },
    });
    const build = await finished(made[0]!.id);
    expect(build.state).toBe('succeeded');

    const job = await jobOf(build.id, 'amd64');
    const artifacts = await listArtifactsForJobs(database.db, [job.id]);
    const binary = artifacts.find((artifact) => artifact.name === 'hello-amd64.txt')!;
    expect(binary).toBeDefined();
    const run = await waitFor('the check run to complete', () => {
      const found = checkRunsOf(shas.pr123, 'crossdock/amd64');
      return found.length === 1 && found[0]!.status === 'completed' ? found[0] : undefined;
    });
    const states = run.history.map((entry) => entry.status);
    expect(states[0]).toBe('queued');
    expect(states).toContain('in_progress');
    expect(states.at(-1)).toBe('completed');
    expect(run.conclusion).toBe('success');
    expect(run.externalId).toBe(String(job.id));
    expect(run.detailsUrl).toBe(`http://127.0.0.1:8080/builds/${build.id}`);
    expect(run.output?.summary).toContain('hello-amd64.txt');
    expect(run.output?.summary).toContain(binary.sha256);
    expect(run.output?.summary).toContain(`| ${binary.size} B |`);
    expect(run.output?.summary).toContain(`/artifacts/${binary.id}/download/hello-amd64.txt`);

    // One comment on the pull request, edited in place as the build moved.
    const comment = await waitFor('the pull request comment to show the artifact', () => {
      const found = commentsOn(123);
      return found.length === 1 && found[0]!.body.includes(binary.sha256.slice(0, 16))
        ? found[0]
        : undefined;
    });
    expect(comment.body).toContain('<!-- crossdock:pull-request -->');
    expect(comment.body).toContain(`/artifacts/${binary.id}/download/hello-amd64.txt`);
    const posts = github.calls.filter(
      (call) => call.method === 'POST' && call.path === '/repos/acme/hello/issues/123/comments',
    );
    expect(posts).toHaveLength(1);

    // The worker cloned the private repository with a token of its own: one repository,
    // contents read, revoked after the fetch, and found nowhere in its output or on its disk.
    const cloneTokens = github.tokens.filter((token) => token.repositories?.includes('hello'));
    expect(cloneTokens.length).toBeGreaterThan(0);
    for (const token of cloneTokens) {
      expect(token.repositories).toEqual(['hello']);
      expect(token.permissions).toEqual({ contents: 'read' });
      expect(token.revoked).toBe(true);
      expect(worker.output()).not.toContain(token.token);
    }
    for (const file of filesUnder(workDir)) {
      if (statSync(file).size > 50_000_000) continue;
      const content = readFileSync(file, 'latin1');
      for (const token of github.tokens) expect(content, file).not.toContain(token.token);
    }
  });

  it('holds a fork pull request until a maintainer approves its head, then builds exactly that commit', async () => {
    const fork = { number: 124, sha: shas.pr124, author: 'outsider', fork: true };
    const labelPayload = pullPayload('labeled', fork, ['build:amd64'], 'maintainer');
    const labelled = await deliver('pull_request', labelPayload);
    expect(labelled.status).toBe(200);
    expect(await buildsOf(shas.pr124)).toEqual([]);
    const approval = checkRunsOf(shas.pr124, 'crossdock/approval');
    expect(approval).toHaveLength(1);
    expect(approval[0]).toMatchObject({ status: 'completed', conclusion: 'neutral' });
    await waitFor('the comment to say the build is held', () =>
      commentsOn(124).find((comment) => comment.body.includes('/ok-to-build')),
    );

    // The fork's author cannot start it from a comment.
    await deliver('issue_comment', commentPayload(124, '/build amd64', 'outsider'));
    expect(await buildsOf(shas.pr124)).toEqual([]);
    expect(github.reactions.at(-1)?.content).toBe('confused');

    // Approving a commit that is not the head is refused.
    await deliver('issue_comment', commentPayload(124, '/ok-to-build 0123456', 'maintainer'));
    expect(await buildsOf(shas.pr124)).toEqual([]);
    await waitFor('the notice that the head is another commit', () =>
      commentsOn(124).find((comment) => comment.body.includes('not 0123456')),
    );

    // A maintainer approves: exactly the held request, of exactly that commit, untrusted.
    expect(
      (await deliver('issue_comment', commentPayload(124, '/ok-to-build', 'maintainer'))).status,
    ).toBe(200);
    const approved = await buildsOf(shas.pr124);
    expect(approved).toHaveLength(1);
    expect(approved[0]).toMatchObject({ pullNumber: 124, trusted: false, trigger: 'label' });
    expect(github.checkRuns.get(approval[0]!.id)).toMatchObject({ conclusion: 'success' });
    expect((await finished(approved[0]!.id)).state).toBe('succeeded');
    // Redelivering the label's webhook, or GitHub sending it again, builds nothing more.
    await deliver('pull_request', labelPayload, { deliveryId: labelled.deliveryId });
    await deliver('pull_request', labelPayload);
    expect(await buildsOf(shas.pr124)).toHaveLength(1);

    // A push to the fork's branch is a new commit: held again, nothing built.
    const next = pushCommit(shas.pr124, ['refs/pull/124/head']);
    const pushed = await deliver(
      'pull_request',
      pullPayload('synchronize', { ...fork, sha: next }, ['build:amd64'], 'outsider'),
    );
    expect(pushed.status).toBe(200);
    expect(await buildsOf(next)).toEqual([]);
    const holds = await database.db.select().from(githubHolds).where(eq(githubHolds.sha, next));
    expect(holds).toHaveLength(1);
    expect(checkRunsOf(next, 'crossdock/approval')[0]).toMatchObject({ conclusion: 'neutral' });
  });

  it('cancels and retries from comments, and refuses people without write access', async () => {
    // Two commands in one comment: the build, then its cancellation.
    await deliver(
      'issue_comment',
      commentPayload(123, 'Trying again:\n/build docs --force\n/build cancel', 'maintainer'),
    );
    const [, forced] = await buildsOf(shas.pr123);
    expect(forced).toMatchObject({ trigger: 'comment', requester: 'github:maintainer' });
    const canceled = await finished(forced!.id);
    expect(canceled.state).toBe('canceled');

    await deliver('issue_comment', commentPayload(123, '/build flaky', 'maintainer'));
    const flaky = (await buildsOf(shas.pr123)).at(-1)!;
    expect((await jobOf(flaky.id, 'flaky')).target).toBe('flaky');
    expect((await finished(flaky.id)).state).toBe('failed');
    await deliver('issue_comment', commentPayload(123, '/build retry', 'maintainer'));
    const retried = (await buildsOf(shas.pr123)).at(-1)!;
    expect(retried.id).toBeGreaterThan(flaky.id);
    expect(
      (await database.db.select().from(jobs).where(eq(jobs.buildId, retried.id))).map(
        (job) => job.target,
      ),
    ).toEqual(['flaky']);
    await finished(retried.id);

    // Someone with triage access can comment but not build.
    const before = (await buildsOf(shas.pr123)).length;
    await deliver('issue_comment', commentPayload(123, '/build amd64 --force', 'triager'));
    expect(await buildsOf(shas.pr123)).toHaveLength(before);
    await waitFor('the notice of the refusal', () =>
      commentsOn(123).find((comment) => comment.body.includes('triager cannot start builds')),
    );
    expect(commentsOn(123)).toHaveLength(1);
  });

  it('builds the new head of a labelled pull request and cancels the superseded build', async () => {
    const pull = { number: 123, sha: shas.pr123, author: 'maintainer', fork: false };
    const labels = ['build:amd64', 'build:slow'];
    await deliver('pull_request', pullPayload('labeled', pull, labels, 'maintainer'));
    const old = (await buildsOf(shas.pr123)).at(-1)!;
    const slowJob = await jobOf(old.id, 'slow');
    await waitFor('the slow job to run', async () =>
      (await jobOf(old.id, 'slow')).state === 'running' ? true : undefined,
    );

    const next = pushCommit(shas.pr123, ['refs/pull/123/head', 'refs/heads/greeting']);
    const pushed = await deliver(
      'pull_request',
      pullPayload('synchronize', { ...pull, sha: next }, labels, 'maintainer'),
    );
    expect(pushed.status).toBe(200);
    const [fresh] = await buildsOf(next);
    expect(fresh).toMatchObject({ trigger: 'label', pullNumber: 123 });
    expect(
      (await database.db.select().from(jobs).where(eq(jobs.buildId, fresh!.id))).map(
        (job) => job.target,
      ),
    ).toEqual(['amd64', 'slow']);
    const superseded = await waitFor('the superseded job to end', async () => {
      const job = await jobOf(old.id, 'slow');
      return job.state === 'canceled' ? job : undefined;
    });
    expect(superseded.id).toBe(slowJob.id);
    expect(superseded.canceledBy).toContain('a newer commit');

    // The new head's slow job is stopped from the pull request.
    await deliver('issue_comment', commentPayload(123, '/build cancel', 'maintainer'));
    expect((await finished(fresh!.id)).state).toBe('canceled');
  });

  it('builds a pushed tag and attaches its artifacts to the published release', async () => {
    const push = retarget(
      examplePayload('push', undefined, (payload) => String(payload.ref).startsWith('refs/tags/')),
      repoOf('maintainer'),
    );
    const tagObject = execFileSync('git', ['rev-parse', 'refs/tags/v2.10'], {
      cwd: join(gitRoot, 'acme', 'hello.git'),
      encoding: 'utf8',
    }).trim();
    Object.assign(push, {
      ref: 'refs/tags/v2.10',
      created: true,
      deleted: false,
      after: tagObject,
      head_commit: { ...push.head_commit, id: shas.main },
    });
    expect((await deliver('push', push)).status).toBe(200);
    const [release] = await database.db.select().from(builds).where(eq(builds.tag, 'v2.10'));
    expect(release).toMatchObject({ sha: shas.main, trigger: 'tag', trusted: true });

    const published = retarget(examplePayload('release', 'published'), repoOf('maintainer'));
    const releaseId = 555;
    Object.assign(published.release, {
      id: releaseId,
      tag_name: 'v2.10',
      upload_url: `${github.uploadsUrl}/repos/acme/hello/releases/${releaseId}/assets{?name,label}`,
    });
    expect((await deliver('release', published)).status).toBe(200);
    // The same tag's release build, not a second one.
    expect(await database.db.select().from(builds).where(eq(builds.tag, 'v2.10'))).toHaveLength(1);
    await finished(release!.id);

    const succeededJobs = (
      await database.db.select().from(jobs).where(eq(jobs.buildId, release!.id))
    ).filter((job) => job.state === 'succeeded');
    expect(succeededJobs.map((job) => job.target).sort()).toEqual(['amd64', 'docs', 'slow']);
    const expected = await listArtifactsForJobs(
      database.db,
      succeededJobs.map((job) => job.id),
    );
    const assets = await waitFor('every artifact attached to the release', () => {
      const uploaded = github.releaseAssets.get(releaseId) ?? [];
      return uploaded.length === expected.length ? uploaded : undefined;
    });
    const digests = assets.map((asset) => createHash('sha256').update(asset.data).digest('hex'));
    expect(digests.sort()).toEqual(expected.map((artifact) => artifact.sha256).sort());
    expect(assets.map((asset) => asset.name)).toContain('hello-amd64.txt');
    expect(assets.map((asset) => asset.name)).toContain('docs-SHA256SUMS');

    // A redelivered release uploads nothing twice.
    await deliver('release', published);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const uploads = github.calls.filter(
      (call) => call.method === 'POST' && call.path.startsWith('/uploads/'),
    );
    expect(uploads).toHaveLength(expected.length);
  });

  it("builds a target again from its check run's Re-run", async () => {
    const [labelled] = await buildsOf(shas.pr123);
    const job = await jobOf(labelled!.id, 'amd64');
    const run = checkRunsOf(shas.pr123, 'crossdock/amd64').find(
      (candidate) => candidate.externalId === String(job.id),
    )!;
    const payload = retarget(examplePayload('check_run', 'rerequested'), repoOf('maintainer'));
    Object.assign(payload.check_run, {
      id: run.id,
      head_sha: shas.pr123,
      external_id: String(job.id),
      app: { ...payload.check_run.app, id: APP_ID },
    });
    // Someone without write access cannot re-run it.
    const before = (await buildsOf(shas.pr123)).length;
    const byTriager = structuredClone(payload);
    byTriager.sender = { ...byTriager.sender, login: 'triager' };
    expect((await deliver('check_run', byTriager)).status).toBe(200);
    expect(await buildsOf(shas.pr123)).toHaveLength(before);

    expect((await deliver('check_run', payload)).status).toBe(200);
    const again = (await buildsOf(shas.pr123)).at(-1)!;
    expect(again).toMatchObject({
      trigger: 'rerun',
      pullNumber: 123,
      requester: 'github:maintainer',
    });
    expect(
      (await database.db.select().from(jobs).where(eq(jobs.buildId, again.id))).map(
        (entry) => entry.target,
      ),
    ).toEqual(['amd64']);
    expect((await finished(again.id)).state).toBe('succeeded');
    expect(github.unexpected).toEqual([]);
  });
});
