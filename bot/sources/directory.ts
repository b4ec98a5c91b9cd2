import type { RepoName } from '../../core/command';
import { CrossdockError } from '../../core/errors';
import type { Database } from '../../db/client';
import { findRepo } from '../../db/queries/repos';
import type { GitHubOptions } from '../config';
import { GitHubSource } from './github';
import { GitSource } from './git';
import { repoLabel, type SourceHost } from './source-host';

/** Picks the source host of a repository: its registered plain git server, else GitHub. */
export interface SourceDirectory {
  /** Throws CrossdockError `unknown-repo` when the repository can be read from nowhere. */
  forRepo(repo: RepoName): Promise<SourceHost>;
}

export function createSourceDirectory(options: {
  db: Database;
  /** Omitted when GitHub is not configured: then only registered plain git repositories build. */
  github?: GitHubOptions;
  /** Where bare mirrors of plain git repositories are kept. */
  gitCacheDir: string;
}): SourceDirectory {
  const github = options.github ? new GitHubSource(options.github) : undefined;
  const gitSources = new Map<string, GitSource>();
  return {
    async forRepo(repo) {
      const row = await findRepo(options.db, repo.owner, repo.name);
      if (row?.source === 'git') {
        let source = gitSources.get(row.cloneUrl);
        if (!source)
          gitSources.set(row.cloneUrl, (source = new GitSource(row.cloneUrl, options.gitCacheDir)));
        return source;
      }
      if (github) return github;
      throw new CrossdockError(
        'unknown-repo',
        `${repoLabel(repo)} is not registered and GitHub is not configured. Register it with ` +
          `\`crossdock repo add ${repoLabel(repo)} --git-url <clone URL>\`.`,
      );
    },
  };
}
