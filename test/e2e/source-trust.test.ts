import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitSource } from '../../bot/sources/git';
import { GitHubSource } from '../../bot/sources/github';
import type { SourceHost } from '../../bot/sources/source-host';
import type { RefSpec } from '../../core/command';
import { startFakeGitHub } from '../fakes/github-api';
import { makeHelloRepo } from '../support/stack';

/**
 * Which commits are trusted, through both kinds of source: GitHub's REST API (the fake, answering
 * from a real repository) and plain git. A fork's pull request (head on no branch of the
 * repository) and a bare sha no branch or tag contains are untrusted.
 */
describe('trust of the commits a build request names', () => {
  const root = mkdtempSync(join(tmpdir(), 'crossdock-trust-'));
  const repo = { owner: 'acme', name: 'hello' };
  let shas: ReturnType<typeof makeHelloRepo>;
  let github: Awaited<ReturnType<typeof startFakeGitHub>>;
  let sources: Record<string, SourceHost>;
  beforeAll(async () => {
    shas = makeHelloRepo(join(root, 'github'), repo.owner, repo.name);
    github = await startFakeGitHub({ root: join(root, 'github'), token: 't' });
    sources = {
      github: new GitHubSource({
        apiUrl: github.url,
        token: 't',
        cloneBaseUrl: github.cloneBaseUrl,
      }),
      git: new GitSource(join(root, 'github', 'acme', 'hello.git'), join(root, 'mirrors')),
    };
  });
  afterAll(async () => {
    await github?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const refs: [string, RefSpec, boolean][] = [
    ['branch main', { kind: 'name', name: 'main' }, true],
    ['tag v2.10', { kind: 'name', name: 'v2.10' }, true],
    ["pull request 123 (its branch is the repository's)", { kind: 'pull', number: 123 }, true],
    ["pull request 124 (a fork's)", { kind: 'pull', number: 124 }, false],
  ];
  it.each(['github', 'git'])('through %s', async (kind) => {
    for (const [what, ref, trusted] of refs)
      expect((await sources[kind]!.resolveRef(repo, ref)).trusted, what).toBe(trusted);
    const bySha = async (sha: string) =>
      (await sources[kind]!.resolveRef(repo, { kind: 'sha', sha })).trusted;
    expect(await bySha(shas.main)).toBe(true);
    // The fork's commit is in the repository's objects (GitHub keeps them), on no branch.
    expect(await bySha(shas.pr124)).toBe(false);
  });
});
