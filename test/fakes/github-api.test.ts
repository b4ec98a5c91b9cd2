import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub } from './github-api';

const run = promisify(execFile);
const APP_ID = 4242;
const INSTALLATION_ID = 77;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** Makes bare repository `<root>/<owner>/<name>.git` with one commit on main, also PR 1's head. */
function makeRepo(root: string, owner: string, name: string) {
  const work = mkdtempSync(join(tmpdir(), 'crossdock-fake-repo-'));
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Crossdock',
    GIT_AUTHOR_EMAIL: 'crossdock@localhost',
    GIT_COMMITTER_NAME: 'Crossdock',
    GIT_COMMITTER_EMAIL: 'crossdock@localhost',
  };
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: work, env, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  writeFileSync(join(work, 'README'), `${owner}/${name}\n`);
  git('add', 'README');
  git('commit', '-q', '-m', 'first');
  const dest = join(root, owner, `${name}.git`);
  mkdirSync(dest, { recursive: true });
  execFileSync('git', ['init', '-q', '--bare', dest]);
  git('push', '-q', dest, 'main', 'main:refs/pull/1/head');
  const sha = git('rev-parse', 'HEAD');
  rmSync(work, { recursive: true, force: true });
  return sha;
}

/** A JWT as a GitHub App makes one (RS256), signed by `privateKey`, with `claims` changed. */
function jwt(privateKey: string, claims: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ alg: 'RS256', typ: 'JWT' })}.${encode({ iat: now - 30, exp: now + 540, iss: APP_ID, ...claims })}`;
  return `${unsigned}.${sign('sha256', Buffer.from(unsigned), privateKey).toString('base64url')}`;
}

const rsaKeys = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

/**
 * The fake of GitHub's REST API refuses what GitHub would: bad JWTs, tokens restricted to other
 * repositories, revoked tokens, private clones without a token, invalid check runs and comments,
 * duplicate release assets, routes it does not know.
 */
describe('fake GitHub API', () => {
  const root = mkdtempSync(join(tmpdir(), 'crossdock-fake-github-'));
  const { publicKey, privateKey } = rsaKeys();
  let github: Awaited<ReturnType<typeof startFakeGitHub>>;
  let sha: string;
  /** An unrestricted installation token, minted through the app endpoint. */
  let token: string;

  const api = (method: string, path: string, auth: string, body?: unknown) =>
    fetch(`${github.url}${path}`, {
      method,
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const appAuth = () =>
    createAppAuth({
      appId: APP_ID,
      privateKey,
      request: request.defaults({ baseUrl: github.url }),
    });
  const lsRemote = (repo: string, basicToken?: string) => {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: root,
      GIT_TERMINAL_PROMPT: '0',
    };
    if (basicToken) {
      const basic = Buffer.from(`x-access-token:${basicToken}`).toString('base64');
      Object.assign(env, {
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'http.extraHeader',
        GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
      });
    }
    return run('git', ['ls-remote', `${github.cloneBaseUrl}/${repo}.git`], { env });
  };

  beforeAll(async () => {
    sha = makeRepo(root, 'acme', 'secret');
    makeRepo(root, 'acme', 'other');
    makeRepo(root, 'acme', 'public');
    github = await startFakeGitHub({
      root,
      app: { appId: APP_ID, publicKey, installationId: INSTALLATION_ID },
      privateRepos: ['acme/secret', 'acme/other'],
      permissions: { alice: 'maintain', bob: 'triage', mallory: 'none' },
      pullAuthors: { 1: 'alice' },
    });
    ({ token } = await appAuth()({ type: 'installation', installationId: INSTALLATION_ID }));
  });
  afterAll(async () => {
    await github?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('mints a restricted token that clones its private repository until it is revoked', async () => {
    const restricted = await appAuth()({
      type: 'installation',
      installationId: INSTALLATION_ID,
      repositoryNames: ['secret'],
      permissions: { contents: 'read' },
    });
    expect(restricted.token).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
    expect(github.tokens.find((t) => t.token === restricted.token)).toMatchObject({
      installationId: INSTALLATION_ID,
      repositories: ['secret'],
      permissions: { contents: 'read' },
      revoked: false,
    });

    expect((await lsRemote('acme/secret', restricted.token)).stdout).toContain(
      `${sha}\trefs/heads/main`,
    );
    await expect(lsRemote('acme/secret')).rejects.toThrow();
    await expect(lsRemote('acme/other', restricted.token)).rejects.toThrow();
    await expect(lsRemote('acme/secret', 'ghs_not-a-token')).rejects.toThrow();
    // Public repositories clone without a token, not with a bad one.
    expect((await lsRemote('acme/public')).stdout).toContain('refs/heads/main');
    await expect(lsRemote('acme/public', 'ghs_not-a-token')).rejects.toThrow();

    const auth = `token ${restricted.token}`;
    expect((await api('GET', '/repos/acme/secret', auth)).status).toBe(200);
    expect((await api('GET', '/repos/acme/other', auth)).status).toBe(404);
    const check = await api('POST', '/repos/acme/secret/check-runs', auth, {
      name: 'build',
      head_sha: sha,
    });
    expect(check.status).toBe(403);

    expect((await api('DELETE', '/installation/token', auth)).status).toBe(204);
    expect(github.tokens.find((t) => t.token === restricted.token)?.revoked).toBe(true);
    await expect(lsRemote('acme/secret', restricted.token)).rejects.toThrow();
    const refused = await api('GET', '/repos/acme/secret', auth);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ message: 'Bad credentials' });
  });

  it('refuses JWTs GitHub would refuse, and tokens for other installations', async () => {
    const path = `/app/installations/${INSTALLATION_ID}/access_tokens`;
    const now = Math.floor(Date.now() / 1000);
    const bad = {
      'signed by another key': jwt(rsaKeys().privateKey),
      'of another app': jwt(privateKey, { iss: APP_ID + 1 }),
      expired: jwt(privateKey, { iat: now - 700, exp: now - 100 }),
      'issued in the future': jwt(privateKey, { iat: now + 120, exp: now + 500 }),
      'not a JWT': 'abc.def',
    };
    for (const [what, token] of Object.entries(bad)) {
      const response = await api('POST', path, `Bearer ${token}`);
      expect(response.status, what).toBe(401);
      expect(await response.json(), what).toEqual({
        message: 'A JSON web token could not be decoded',
      });
    }
    const good = `Bearer ${jwt(privateKey, { iss: String(APP_ID) })}`;
    expect((await api('POST', `/app/installations/1/access_tokens`, good)).status).toBe(404);
    const installation = await api('GET', '/repos/acme/secret/installation', good);
    expect(await installation.json()).toMatchObject({ id: INSTALLATION_ID, app_id: APP_ID });
    // A JWT is not an installation token.
    expect((await api('GET', '/repos/acme/secret', good)).status).toBe(401);
  });

  it('validates check runs and records their history', async () => {
    const auth = `token ${token}`;
    const path = '/repos/acme/secret/check-runs';
    const refusals: [string, object][] = [
      ['no name', { head_sha: sha }],
      ['a short sha', { name: 'build', head_sha: sha.slice(0, 7) }],
      ['an unknown commit', { name: 'build', head_sha: 'f'.repeat(40) }],
      ['completed without conclusion', { name: 'build', head_sha: sha, status: 'completed' }],
      ['an unknown status', { name: 'build', head_sha: sha, status: 'done' }],
      ['output without title', { name: 'build', head_sha: sha, output: { summary: 's' } }],
      [
        'a summary too long',
        { name: 'build', head_sha: sha, output: { title: 't', summary: 'x'.repeat(65536) } },
      ],
    ];
    for (const [what, body] of refusals)
      expect((await api('POST', path, auth, body)).status, what).toBe(422);

    const created = await api('POST', path, auth, { name: 'build', head_sha: sha });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const patch = (body: object) => api('PATCH', `${path}/${id}`, auth, body);
    expect((await patch({ status: 'in_progress' })).status).toBe(200);
    expect((await patch({ status: 'completed' })).status).toBe(422);
    const done = await patch({ conclusion: 'success', output: { title: 'ok', summary: 'built' } });
    expect(await done.json()).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(github.checkRuns.get(id)?.history).toEqual([
      { status: 'queued', conclusion: null },
      { status: 'in_progress', conclusion: null },
      { status: 'completed', conclusion: 'success' },
    ]);
    expect((await api('GET', `/repos/acme/other/check-runs/${id}`, auth)).status).toBe(404);
  });

  it('keeps comments and reactions, refusing bodies too long and unknown comments', async () => {
    const octokit = new Octokit({ baseUrl: github.url, auth: token, log: quiet });
    const base = { owner: 'acme', repo: 'secret' };
    const comment = await octokit.rest.issues.createComment({
      ...base,
      issue_number: 1,
      body: 'a',
    });
    expect(comment.data.user?.login).toBe('crossdock[bot]');
    await octokit.rest.issues.updateComment({ ...base, comment_id: comment.data.id, body: 'b' });
    expect(github.comments.get(comment.data.id)).toEqual({
      issue: 1,
      repo: 'acme/secret',
      body: 'b',
      edits: 1,
      author: 'crossdock[bot]',
    });
    const list = await octokit.rest.issues.listComments({ ...base, issue_number: 1 });
    expect(list.data.map((c) => c.body)).toEqual(['b']);
    await octokit.rest.reactions.createForIssueComment({
      ...base,
      comment_id: comment.data.id,
      content: 'rocket',
    });
    expect(github.reactions).toEqual([{ commentId: comment.data.id, content: 'rocket' }]);

    await expect(
      octokit.rest.issues.createComment({ ...base, issue_number: 1, body: 'x'.repeat(65537) }),
    ).rejects.toMatchObject({ status: 422 });
    await expect(
      octokit.rest.issues.updateComment({ ...base, comment_id: 1, body: 'c' }),
    ).rejects.toMatchObject({ status: 404 });
  });

  it('refuses a second release asset of the same name', async () => {
    const octokit = new Octokit({ baseUrl: github.url, auth: token, log: quiet });
    const upload = () =>
      octokit.rest.repos.uploadReleaseAsset({
        owner: 'acme',
        repo: 'secret',
        release_id: 9,
        name: 'hello.tar.gz',
        data: 'archive bytes' as unknown as string,
        baseUrl: github.uploadsUrl,
        headers: { 'content-type': 'application/gzip', 'content-length': 13 },
      });
    expect((await upload()).data).toMatchObject({ name: 'hello.tar.gz', size: 13 });
    await expect(upload()).rejects.toMatchObject({
      status: 422,
      response: {
        data: { errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] },
      },
    });
    expect(github.releaseAssets.get(9)?.map((asset) => asset.data.toString())).toEqual([
      'archive bytes',
    ]);
    expect(github.calls).toContainEqual({
      method: 'POST',
      path: '/uploads/repos/acme/secret/releases/9/assets',
      body: { size: 13 },
    });
  });

  it('answers roles, pull authors, and records routes it does not know', async () => {
    const auth = `token ${token}`;
    const permission = async (login: string) =>
      (await (
        await api('GET', `/repos/acme/public/collaborators/${login}/permission`, auth)
      ).json()) as {
        permission: string;
        role_name: string;
      };
    expect(await permission('alice')).toMatchObject({ permission: 'write', role_name: 'maintain' });
    expect(await permission('bob')).toMatchObject({ permission: 'read', role_name: 'triage' });
    expect(await permission('carol')).toMatchObject({ permission: 'read' });
    const pull = await (await api('GET', '/repos/acme/public/pulls/1', auth)).json();
    expect(pull).toMatchObject({ user: { login: 'alice' }, labels: [] });

    expect((await api('DELETE', '/repos/acme/public', auth)).status).toBe(500);
    expect(github.unexpected).toEqual([{ method: 'DELETE', path: '/repos/acme/public' }]);
  });
});
