import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lock } from 'proper-lockfile';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeRepository } from '../test/support/repository';
import { SourceCache } from './source';

describe('the repository cache', () => {
  let dir: string;
  let cloneUrl: string;
  let sha: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crossdock-source-'));
    ({ cloneUrl, sha } = makeRepository(
      dir,
      Object.fromEntries(Array.from({ length: 20 }, (_, file) => [`f${file}.txt`, `${file}\n`])),
    ));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A fresh checkout directory. */
  let checkouts = 0;
  function into(): string {
    const path = join(dir, `checkout-${checkouts++}`);
    mkdirSync(path);
    return path;
  }

  it('is shared by workers on one work directory: their first fetches of a repository at once all succeed', async () => {
    // Each SourceCache is what one worker process has: only the lock on disk is shared. Without
    // it, two `git init`s or shallow fetches into one new repository at once fail ("File
    // exists", shallow.lock): a job's attempt lost to a race of its neighbours.
    for (let round = 0; round < 5; round++) {
      const cacheDir = join(dir, `cache-${round}`);
      const caches = Array.from({ length: 4 }, () => new SourceCache(cacheDir));
      const paths = caches.map(() => into());
      await Promise.all(caches.map((cache, i) => cache.checkout(cloneUrl, sha, paths[i]!)));
      for (const path of paths) expect(readFileSync(join(path, 'f19.txt'), 'utf8')).toBe('19\n');
    }
  });

  it('waits while another process holds the lock, and takes over a lock its dead holder left', async () => {
    const cacheDir = join(dir, 'cache');
    const cache = new SourceCache(cacheDir);
    const path = into();
    await cache.checkout(cloneUrl, sha, path);
    const repoDir = join(cacheDir, execFileSync('ls', [cacheDir], { encoding: 'utf8' }).trim());
    expect(repoDir).toMatch(/\.git$/);

    const release = await lock(repoDir, { lockfilePath: `${repoDir}.lock`, realpath: false });
    let done = false;
    const waiting = new SourceCache(cacheDir)
      .checkout(cloneUrl, sha, into())
      .then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(done).toBe(false);
    await release();
    await waiting;
    expect(done).toBe(true);

    // A process that died holding it: the lock directory stays, no longer refreshed.
    mkdirSync(`${repoDir}.lock`);
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(`${repoDir}.lock`, minuteAgo, minuteAgo);
    const again = into();
    await new SourceCache(cacheDir).checkout(cloneUrl, sha, again);
    expect(readFileSync(join(again, 'f0.txt'), 'utf8')).toBe('0\n');
  });
});
