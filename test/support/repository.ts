import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A local git repository for workers to fetch from, as makeRepository makes it. */
export interface LocalRepository {
  /** The working clone, where commits are made. */
  workDir: string;
  /** Its bare clone: what builds name as their clone URL. */
  cloneUrl: string;
  /** The first commit. */
  sha: string;
  /** Adds an empty commit, pushes it to the bare clone and returns its sha. */
  newCommit(): string;
}

/**
 * Makes a one-commit git repository under `dir` (`repo/`, and its bare clone `repo.git/`) with
 * `files` (path → content, default a README), so that each test or benchmark fetches from a
 * repository of its own. `newCommit()` gives a new sha, e.g. so that a worker caching fetched
 * commits still fetches one per build.
 */
export function makeRepository(
  dir: string,
  files: Record<string, string> = { README: 'a repository for worker tests\n' },
): LocalRepository {
  const workDir = join(dir, 'repo');
  const cloneUrl = join(dir, 'repo.git');
  const git = (...args: string[]) =>
    execFileSync(
      'git',
      ['-C', workDir, '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', ...args],
      { encoding: 'utf8' },
    ).trim();
  execFileSync('git', ['init', '--quiet', '-b', 'main', workDir]);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(workDir, path)), { recursive: true });
    writeFileSync(join(workDir, path), content);
  }
  git('add', '.');
  git('commit', '--quiet', '-m', 'initial');
  execFileSync('git', ['clone', '--quiet', '--bare', workDir, cloneUrl]);
  let commits = 0;
  return {
    workDir,
    cloneUrl,
    sha: git('rev-parse', 'HEAD'),
    newCommit() {
      commits += 1;
      git('commit', '--quiet', '--allow-empty', '-m', `commit ${commits}`);
      git('push', '--quiet', cloneUrl, 'main');
      return git('rev-parse', 'HEAD');
    },
  };
}
