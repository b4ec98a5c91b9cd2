import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { CrossdockError } from '../core/errors';
import { git, gitStream } from '../core/git';

/** A fetched commit, ready to be archived into a container. Call `dispose` when done. */
export interface FetchedSource {
  /** A tar stream of the commit's tree under `src/` (git archive; every mtime is the commit's). */
  archive(): Readable;
  dispose(): Promise<void>;
}

/**
 * Fetches exactly commit `sha` of the repository at `cloneUrl` into a fresh bare repository
 * under `workDir`: a shallow fetch by sha first, then every ref (refs/pull/* included) if the
 * server refuses to serve a sha. Throws CrossdockError `source-unavailable` if the commit
 * cannot be had.
 */
export async function fetchSource(
  cloneUrl: string,
  sha: string,
  workDir: string,
): Promise<FetchedSource> {
  const dir = await mkdtemp(join(workDir, 'src-'));
  try {
    await git(['init', '--quiet', '--bare', dir]);
    try {
      await git(['fetch', '--quiet', '--depth=1', cloneUrl, sha], dir);
    } catch {
      await git(['fetch', '--quiet', cloneUrl, '+refs/*:refs/remotes/origin/*'], dir);
    }
    await git(['cat-file', '-e', `${sha}^{commit}`], dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw new CrossdockError(
      'source-unavailable',
      `cannot fetch commit ${sha}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return {
    archive() {
      return gitStream(['archive', '--format=tar', '--prefix=src/', sha], dir) as Readable;
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
