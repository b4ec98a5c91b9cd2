import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CrossdockError } from '../core/errors';
import { git, gitStream } from '../core/git';

/** A fetched commit, ready to be archived into a container. */
export interface FetchedSource {
  /** A tar stream of the commit's tree under `src/` (git archive; every mtime is the commit's). */
  archive(): Readable;
}

/**
 * The worker's cache of fetched commits: one bare repository per clone URL under `dir`. A commit
 * already there is not fetched again. It is a cache, not state: deleting `dir` (worker stopped)
 * only costs the next fetches. Fetches of one repository take turns within the process.
 */
export class SourceCache {
  private readonly turns = new Map<string, Promise<unknown>>();

  constructor(private readonly dir: string) {}

  /**
   * Makes exactly commit `sha` of the repository at `cloneUrl` available: a shallow fetch by sha
   * first, then every ref (refs/pull/* included) if the server refuses to serve a sha. The commit
   * is kept under refs/crossdock/<sha>. Throws CrossdockError `source-unavailable` if the commit
   * cannot be had.
   */
  async fetch(cloneUrl: string, sha: string): Promise<FetchedSource> {
    const repoDir = join(
      this.dir,
      `${createHash('sha256').update(cloneUrl).digest('hex').slice(0, 24)}.git`,
    );
    const previous = this.turns.get(repoDir) ?? Promise.resolve();
    const turn = previous.catch(() => {}).then(() => this.ensureCommit(repoDir, cloneUrl, sha));
    this.turns.set(repoDir, turn);
    try {
      await turn;
    } finally {
      if (this.turns.get(repoDir) === turn) this.turns.delete(repoDir);
    }
    return {
      archive: () =>
        gitStream(['archive', '--format=tar', '--prefix=src/', sha], repoDir) as Readable,
    };
  }

  private async ensureCommit(repoDir: string, cloneUrl: string, sha: string): Promise<void> {
    const present = () =>
      git(['cat-file', '-e', `${sha}^{commit}`], repoDir).then(
        () => true,
        () => false,
      );
    try {
      await mkdir(repoDir, { recursive: true });
      await git(['init', '--quiet', '--bare', repoDir]);
      if (await present()) return;
      try {
        await git(['fetch', '--quiet', '--depth=1', cloneUrl, sha], repoDir);
      } catch {
        await git(['fetch', '--quiet', cloneUrl, '+refs/*:refs/remotes/origin/*'], repoDir);
      }
      await git(['cat-file', '-e', `${sha}^{commit}`], repoDir);
      await git(['update-ref', `refs/crossdock/${sha}`, sha], repoDir);
    } catch (error) {
      throw new CrossdockError(
        'source-unavailable',
        `cannot fetch commit ${sha}: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}
