import type { RefSpec, RepoName } from '../../core/command';

/** A ref resolved to one commit, with what kind of ref it was. */
export interface ResolvedRef {
  /** Full 40-hex commit sha. */
  sha: string;
  pullNumber?: number;
  branch?: string;
  tag?: string;
  /**
   * Whether the commit is the repository's own: false for a pull request whose head branch is not
   * in the repository (a fork's), and for a bare sha no branch or tag of the repository contains.
   * Builds of untrusted commits get no secrets and their own caches (builds.trusted).
   */
  trusted: boolean;
}

/**
 * Where a repository's refs and files are read from when a build is requested: GitHub's REST API
 * or a plain git server. Errors: CrossdockError `unknown-ref` for a ref that does not exist,
 * `source-unavailable` when the host cannot be reached or answers with an error.
 */
export interface SourceHost {
  readonly kind: 'github' | 'git';
  /** Where workers clone the repository from. */
  cloneUrl(repo: RepoName): string;
  resolveRef(repo: RepoName, ref: RefSpec): Promise<ResolvedRef>;
  /**
   * The repository's default branch (e.g. `main`). Throws `unknown-repo` when there is no such
   * repository, `source-unavailable` when the host cannot be asked.
   */
  defaultBranch(repo: RepoName): Promise<string>;
  /** The file at `path` in commit `sha` as UTF-8 text, or undefined if there is none. */
  readFile(repo: RepoName, sha: string, path: string): Promise<string | undefined>;
}

export const repoLabel = (repo: RepoName) => `${repo.owner}/${repo.name}`;
