import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import { CrossdockError } from '../core/errors';
import { git, gitPipe } from '../core/git';
import type { CloneCredentials } from './github-token';

/**
 * How a process waits for another's fetch into the same repository: polls of the lock, 50 ms
 * apart at first and at most 1 s, for as long as that fetch takes (node-retry's `forever`).
 */
const LOCK_RETRIES = { forever: true, minTimeout: 50, maxTimeout: 1000, factor: 1.5 };

/**
 * A lock not refreshed for this long (ms) belongs to a process that died holding it, and is
 * taken over; its holder refreshes it every half of it (proper-lockfile).
 */
const LOCK_STALE_MS = 20_000;

/**
 * The worker's cache of fetched commits: one bare repository per clone URL under `dir`. A commit
 * already there is not fetched again. It is a cache, not state: deleting `dir` (worker stopped)
 * only costs the next fetches. Fetches of one repository take turns within the process and
 * across the processes that share `dir` (several workers on one host with one WORKER_WORK_DIR):
 * a lock directory `<repository>.lock` next to it (proper-lockfile: mkdir is atomic, and a lock
 * left by a dead process goes stale), since two `git init`s or two shallow fetches into one
 * repository at once fail.
 */
export class SourceCache {
  private readonly turns = new Map<string, Promise<unknown>>();
  /**
   * Repositories this process has initialised, so that `git init` runs once for each (under the
   * lock: on a repository another process made, it only completes what an interrupted one left).
   */
  private readonly initialised = new Set<string>();

  constructor(private readonly dir: string) {}

  /**
   * Writes exactly commit `sha` of the repository at `cloneUrl` into `into`, an existing empty
   * directory: `git archive | tar -x`, so there is no `.git` and every mtime is the commit's.
   * GNU tar refuses member names with `..` and makes symbolic links only after every file, so a
   * crafted tree cannot write outside `into`. `credentials` are asked for only when the commit
   * must be fetched, and revoked right after the fetch (a private repository's token). Throws CrossdockError `source-unavailable` if the
   * commit cannot be had, and a plain Error if it cannot be written out.
   */
  async checkout(
    cloneUrl: string,
    sha: string,
    into: string,
    credentials?: () => Promise<CloneCredentials>,
  ): Promise<void> {
    const repoDir = join(
      this.dir,
      `${createHash('sha256').update(cloneUrl).digest('hex').slice(0, 24)}.git`,
    );
    const previous = this.turns.get(repoDir) ?? Promise.resolve();
    const turn = previous
      .catch(() => {})
      .then(() =>
        this.whileLocked(repoDir, () => this.ensureCommit(repoDir, cloneUrl, sha, credentials)),
      );
    this.turns.set(repoDir, turn);
    try {
      await turn;
    } finally {
      if (this.turns.get(repoDir) === turn) this.turns.delete(repoDir);
    }
    const tree = `${sha}^{commit}`;
    await gitPipe(['archive', '--format=tar', tree], repoDir, 'tar', ['-x', '-f', '-', '-C', into]);
  }

  /**
   * Runs `work` holding the cross-process lock of `repoDir`. Throws CrossdockError
   * `source-unavailable` if the lock cannot be taken (e.g. `dir` is not writable).
   */
  private async whileLocked<T>(repoDir: string, work: () => Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    const release = await lock(repoDir, {
      lockfilePath: `${repoDir}.lock`,
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: LOCK_RETRIES,
      // Held so long unrefreshed that another process may have taken it over: git's own lock
      // files keep the repository whole, and at worst one of the two fetches fails (an
      // infrastructure failure: the job runs again). proper-lockfile's default would throw
      // from a timer and end the worker.
      onCompromised: () => {},
    }).catch((error: unknown) => {
      throw new CrossdockError(
        'source-unavailable',
        `cannot lock the repository cache ${repoDir}: ${(error as Error).message}`,
        { cause: error },
      );
    });
    try {
      return await work();
    } finally {
      await release().catch(() => {
        // Compromised (see above): the lock is another process's now.
      });
    }
  }

  /**
   * Makes the commit available: a shallow fetch by sha first, then every ref (refs/pull/*
   * included) if the server refuses to serve a sha. The commit is kept under refs/crossdock/<sha>.
   */
  private async ensureCommit(
    repoDir: string,
    cloneUrl: string,
    sha: string,
    credentials?: () => Promise<CloneCredentials>,
  ): Promise<void> {
    const present = () =>
      git(['cat-file', '-e', `${sha}^{commit}`], repoDir).then(
        () => true,
        () => false,
      );
    let noToken = '';
    try {
      if (!this.initialised.has(repoDir)) {
        await git(['init', '--quiet', '--bare', repoDir]);
        this.initialised.add(repoDir);
      }
      if (await present()) return;
      // Without a token (the App cannot mint one) a public repository still fetches; a private
      // one fails, and the error says why there was no token.
      const auth = await credentials?.().catch((error: Error) => {
        noToken = ` (no clone token: ${error.message})`;
        return undefined;
      });
      try {
        // Into the ref at once: a fetch that succeeds has the commit, no check needed.
        await git(
          ['fetch', '--quiet', '--depth=1', cloneUrl, `${sha}:refs/crossdock/${sha}`],
          repoDir,
          auth?.env,
        );
      } catch {
        await git(
          ['fetch', '--quiet', cloneUrl, '+refs/*:refs/remotes/origin/*'],
          repoDir,
          auth?.env,
        );
        await git(['cat-file', '-e', `${sha}^{commit}`], repoDir);
        await git(['update-ref', `refs/crossdock/${sha}`, sha], repoDir);
      } finally {
        await auth?.revoke().catch(() => {
          // It expires within the hour; nothing else can be done about it here.
        });
      }
    } catch (error) {
      throw new CrossdockError(
        'source-unavailable',
        `cannot fetch commit ${sha}: ${(error as Error).message}${noToken}`,
        { cause: error },
      );
    }
  }
}
