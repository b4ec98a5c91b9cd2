import { Octokit } from '@octokit/rest';
import type { RefSpec, RepoName } from '../../core/command';
import { CrossdockError } from '../../core/errors';
import type { GitHubOptions } from '../config';
import { repoLabel, type ResolvedRef, type SourceHost } from './source-host';

/** The HTTP status of an Octokit RequestError, or undefined for other errors. */
export const httpStatus = (error: unknown) => (error as { status?: number }).status;
const quiet = () => {};

/**
 * Reads refs and files through GitHub's REST API (docs.github.com/rest: pulls, branches, git
 * refs and tags, commits, repository contents).
 */
export class GitHubSource implements SourceHost {
  readonly kind = 'github' as const;

  /**
   * `octokit`: a client already authenticated (a GitHub App installation's, from Probot);
   * otherwise one is made from `options.apiUrl` and `options.token`.
   */
  constructor(
    private readonly options: Pick<GitHubOptions, 'cloneBaseUrl'> & Partial<GitHubOptions>,
    private readonly octokit: Pick<Octokit, 'rest'> = new Octokit({
      baseUrl: options.apiUrl,
      auth: options.token,
      log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    }),
  ) {}

  cloneUrl(repo: RepoName): string {
    return `${this.options.cloneBaseUrl}/${repo.owner}/${repo.name}.git`;
  }

  async resolveRef(repo: RepoName, ref: RefSpec): Promise<ResolvedRef> {
    const base = { owner: repo.owner, repo: repo.name };
    return this.call(repo, async () => {
      if (ref.kind === 'pull') {
        const pull = await this.orUndefined(
          this.octokit.rest.pulls.get({ ...base, pull_number: ref.number }),
        );
        if (!pull)
          throw new CrossdockError(
            'unknown-ref',
            `Pull request #${ref.number} does not exist in ${repoLabel(repo)}.`,
          );
        // A fork's head repository differs from the base's (null when the fork was deleted).
        const own = pull.data.head.repo?.full_name === pull.data.base.repo.full_name;
        return {
          sha: pull.data.head.sha,
          pullNumber: ref.number,
          branch: pull.data.head.ref,
          trusted: own,
        };
      }
      if (ref.kind === 'name') {
        const branch = await this.orUndefined(
          this.octokit.rest.repos.getBranch({ ...base, branch: ref.name }),
        );
        if (branch) return { sha: branch.data.commit.sha, branch: ref.name, trusted: true };
        const tag = await this.findTag(repo, ref.name);
        if (tag) return tag;
        if (!/^[0-9a-f]{7,40}$/.test(ref.name)) {
          throw new CrossdockError(
            'unknown-ref',
            `\`${ref.name}\` is neither a branch nor a tag of ${repoLabel(repo)}.`,
          );
        }
      }
      const commitRef = ref.kind === 'sha' ? ref.sha : ref.kind === 'name' ? ref.name : '';
      const commit = await this.orUndefined(
        this.octokit.rest.repos.getCommit({ ...base, ref: commitRef }),
      );
      if (!commit)
        throw new CrossdockError(
          'unknown-ref',
          `No commit \`${commitRef}\` in ${repoLabel(repo)}.`,
        );
      // GitHub serves a fork's commits from the parent too: a bare sha is trusted only if the
      // default branch contains it (compare: the branch is ahead of it, or identical).
      const repository = await this.octokit.rest.repos.get(base);
      const comparison = await this.octokit.rest.repos.compareCommitsWithBasehead({
        ...base,
        basehead: `${commit.data.sha}...${repository.data.default_branch}`,
      });
      const trusted = ['ahead', 'identical'].includes(comparison.data.status);
      return { sha: commit.data.sha, trusted };
    });
  }

  async defaultBranch(repo: RepoName): Promise<string> {
    return this.call(repo, async () => {
      const found = await this.orUndefined(
        this.octokit.rest.repos.get({ owner: repo.owner, repo: repo.name }),
      );
      if (!found)
        throw new CrossdockError(
          'unknown-repo',
          `${repoLabel(repo)} does not exist on GitHub, or Crossdock cannot see it.`,
        );
      return found.data.default_branch;
    });
  }

  /**
   * Tag `name` resolved to its commit (an annotated tag peeled), or undefined when there is no
   * such tag: only tags, whatever branches are called.
   */
  async resolveTag(repo: RepoName, name: string): Promise<ResolvedRef | undefined> {
    return this.call(repo, () => this.findTag(repo, name));
  }

  private async findTag(repo: RepoName, name: string): Promise<ResolvedRef | undefined> {
    const base = { owner: repo.owner, repo: repo.name };
    const tag = await this.orUndefined(
      this.octokit.rest.git.getRef({ ...base, ref: `tags/${name}` }),
    );
    if (!tag) return undefined;
    let sha = tag.data.object.sha;
    if (tag.data.object.type === 'tag') {
      sha = (await this.octokit.rest.git.getTag({ ...base, tag_sha: sha })).data.object.sha;
    }
    return { sha, tag: name, trusted: true };
  }

  async readFile(repo: RepoName, sha: string, path: string): Promise<string | undefined> {
    return this.call(repo, async () => {
      const response = await this.orUndefined(
        this.octokit.rest.repos.getContent({ owner: repo.owner, repo: repo.name, path, ref: sha }),
      );
      if (!response) return undefined;
      const data = response.data;
      if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return undefined;
      return Buffer.from(data.content, 'base64').toString('utf8');
    });
  }

  /** Resolves to undefined on 404 (and 422, GitHub's answer to a malformed sha). */
  private async orUndefined<T>(request: Promise<T>): Promise<T | undefined> {
    try {
      return await request;
    } catch (error) {
      if (httpStatus(error) === 404 || httpStatus(error) === 422) return undefined;
      throw error;
    }
  }

  private async call<T>(repo: RepoName, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (error instanceof CrossdockError) throw error;
      const code = httpStatus(error);
      throw new CrossdockError(
        'source-unavailable',
        `GitHub could not be asked about ${repoLabel(repo)}${code ? ` (HTTP ${code})` : ''}; try again in a minute.`,
        { cause: error },
      );
    }
  }
}
