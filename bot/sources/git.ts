import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RefSpec, RepoName } from '../../core/command';
import { CrossdockError } from '../../core/errors';
import { git } from '../../core/git';
import { repoLabel, type ResolvedRef, type SourceHost } from './source-host';

/**
 * A plain git repository (no GitHub): refs and files are read from a bare mirror kept under
 * `cacheDir`, fetched anew (heads, tags and refs/pull/*) by `resolveRef`; `readFile` reads the
 * mirror as that fetch left it, so resolve the ref first.
 */
export class GitSource implements SourceHost {
  readonly kind = 'git' as const;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly repoCloneUrl: string,
    private readonly cacheDir: string,
  ) {}

  cloneUrl(): string {
    return this.repoCloneUrl;
  }

  async resolveRef(repo: RepoName, ref: RefSpec): Promise<ResolvedRef> {
    const mirror = await this.refresh(repo);
    const lookup = async (name: string) => {
      try {
        return (await git(['rev-parse', '--verify', '--quiet', `${name}^{commit}`], mirror)).trim();
      } catch {
        return undefined;
      }
    };
    if (ref.kind === 'pull') {
      const sha = await lookup(`refs/pull/${ref.number}/head`);
      if (!sha)
        throw new CrossdockError(
          'unknown-ref',
          `Pull request #${ref.number} does not exist in ${repoLabel(repo)}.`,
        );
      // A pull request of the repository's own has its head branch here too; a fork's does not.
      return { sha, pullNumber: ref.number, trusted: await containedInRefs(mirror, sha, true) };
    }
    if (ref.kind === 'name') {
      const branch = await lookup(`refs/heads/${ref.name}`);
      if (branch) return { sha: branch, branch: ref.name, trusted: true };
      const tag = await lookup(`refs/tags/${ref.name}`);
      if (tag) return { sha: tag, tag: ref.name, trusted: true };
    }
    const text = ref.kind === 'sha' ? ref.sha : ref.kind === 'name' ? ref.name : '';
    const sha = /^[0-9a-f]{7,40}$/.test(text) ? await lookup(text) : undefined;
    if (!sha)
      throw new CrossdockError(
        'unknown-ref',
        `\`${text}\` is not a branch, tag or commit of ${repoLabel(repo)}.`,
      );
    return { sha, trusted: await containedInRefs(mirror, sha, false) };
  }

  async defaultBranch(repo: RepoName): Promise<string> {
    let out: string;
    try {
      out = await git(['ls-remote', '--symref', this.repoCloneUrl, 'HEAD']);
    } catch (error) {
      throw new CrossdockError(
        'source-unavailable',
        `Cannot reach ${repoLabel(repo)}'s git server; try again in a minute.`,
        { cause: error },
      );
    }
    const branch = /^ref: refs\/heads\/(\S+)\tHEAD$/m.exec(out)?.[1];
    if (!branch)
      throw new CrossdockError('unknown-repo', `${repoLabel(repo)} has no default branch (HEAD).`);
    return branch;
  }

  async readFile(repo: RepoName, sha: string, path: string): Promise<string | undefined> {
    const mirror = this.mirrorDir(repo);
    try {
      return await git(['show', `${sha}:${path}`], mirror);
    } catch {
      return undefined;
    }
  }

  private mirrorDir(repo: RepoName): string {
    const id = createHash('sha256')
      .update(`${repoLabel(repo)} ${this.repoCloneUrl}`)
      .digest('hex')
      .slice(0, 16);
    return join(this.cacheDir, `${repo.owner}-${repo.name}-${id}.git`);
  }

  /** Fetches the mirror, one fetch at a time per repository. */
  private async refresh(repo: RepoName): Promise<string> {
    const dir = this.mirrorDir(repo);
    const previous = this.locks.get(dir) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(async () => {
        const exists = await stat(dir).then(
          () => true,
          () => false,
        );
        if (!exists) {
          await mkdir(this.cacheDir, { recursive: true });
          await git(['init', '--quiet', '--bare', dir]);
        }
        await git(
          [
            'fetch',
            '--quiet',
            '--prune',
            '--force',
            this.repoCloneUrl,
            '+refs/heads/*:refs/heads/*',
            '+refs/tags/*:refs/tags/*',
            '+refs/pull/*:refs/pull/*',
          ],
          dir,
        );
      });
    this.locks.set(dir, next);
    try {
      await next;
    } catch (error) {
      throw new CrossdockError(
        'source-unavailable',
        `Cannot fetch ${repoLabel(repo)} from its git server; try again in a minute.`,
        {
          cause: error,
        },
      );
    }
    return dir;
  }
}

/**
 * Whether a branch of the mirror (or a tag, unless `headsOnly`) points at `sha` (`headsOnly`,
 * a pull request's own branch) or contains it.
 */
async function containedInRefs(mirror: string, sha: string, headsOnly: boolean): Promise<boolean> {
  const refs = headsOnly ? ['refs/heads'] : ['refs/heads', 'refs/tags'];
  const how = headsOnly ? `--points-at=${sha}` : `--contains=${sha}`;
  const found = await git(
    ['for-each-ref', '--count=1', how, '--format=%(refname)', ...refs],
    mirror,
  );
  return found.trim() !== '';
}
