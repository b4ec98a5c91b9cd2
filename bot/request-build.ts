import { createHash } from 'node:crypto';
import {
  formatRef,
  parseBuildCommand,
  type BuildCommand,
  type RefSpec,
  type RepoName,
} from '../core/command';
import { CrossdockError } from '../core/errors';
import { RECIPE_FILE, parseRecipe, type Recipe } from '../core/recipe';
import { closestMatch } from '../core/suggest';
import type { Database } from '../db/client';
import { createBuild, type Build, type BuildWithJobs, type NewJob } from '../db/queries/builds';
import type { BuildNotify, Trigger } from '../db/schema';
import type { SourceDirectory } from './sources/directory';
import { repoLabel, type ResolvedRef, type SourceHost } from './sources/source-host';

/** One request for a build, from any front end. */
export interface BuildRequest {
  /** The command text after `/build`, in the grammar of core/command.ts. */
  text: string;
  /** The repository when the command names none (e.g. the Slack channel's default). */
  defaultRepo?: RepoName;
  trigger: Trigger;
  /** Who asked, e.g. `slack:U123` or `cli:alice`. */
  requester: string;
  /** An id of this request from its front end; a replay with the same id attaches to the build. */
  deliveryId?: string;
  /**
   * What makes two requests the same build: `delivery` (default), the same `deliveryId`;
   * `request`, the same repository, commit, ref, targets and trigger (webhooks of labels, pushes
   * and comments: GitHub may send one event twice, or two events mean one thing). `--force` always
   * falls back to `delivery`.
   */
  dedupe?: 'delivery' | 'request';
  /** The ref built when the command names none, e.g. the pull request a comment is on. */
  defaultRef?: RefSpec;
  /**
   * The commit when the front end already knows it (a webhook's head sha): used instead of asking
   * the source host, so the build is of the commit the event was about.
   */
  resolved?: ResolvedRef;
  /** Cancel older builds of the same pull request's targets even if the recipe does not ask. */
  cancelSuperseded?: boolean;
  notify?: BuildNotify;
}

export interface RequestBuildDeps {
  db: Database;
  sources: SourceDirectory;
}

/** A build request checked against its source: what storeBuild stores. */
export interface BuildPlan {
  command: BuildCommand;
  repo: RepoName;
  source: SourceHost;
  resolved: ResolvedRef;
  recipe: Recipe;
  /** The targets to build, in the command's order (every target of the recipe for `all`). */
  targets: string[];
}

/**
 * Parses a build request, resolves its ref to a commit, reads and validates `.crossdock.yml` at
 * that commit, and checks the targets; stores nothing. Throws CrossdockError: `bad-command`,
 * `unknown-repo`, `unknown-ref`, `recipe-missing`, `recipe-invalid`, `unknown-target` (user
 * mistakes: the message says what to type instead), or `source-unavailable`.
 */
export async function planBuild(
  deps: RequestBuildDeps,
  request: Pick<BuildRequest, 'text' | 'defaultRepo' | 'defaultRef' | 'resolved'>,
): Promise<BuildPlan> {
  const command = parseBuildCommand(request.text, { defaultRef: request.defaultRef });
  const repo = command.repo ?? request.defaultRepo;
  if (!repo) {
    throw new CrossdockError(
      'bad-command',
      'Which repository? This channel has no default: add `in owner/repo`, e.g. `/build arm64 pr-123 in acme/widget`, or set one with `/build use acme/widget`.',
    );
  }
  const source = await deps.sources.forRepo(repo);
  const resolved = request.resolved ?? (await source.resolveRef(repo, command.ref));
  const recipeText = await source.readFile(repo, resolved.sha, RECIPE_FILE);
  if (recipeText === undefined) {
    throw new CrossdockError(
      'recipe-missing',
      `${repoLabel(repo)} has no ${RECIPE_FILE} at ${resolved.sha.slice(0, 12)}; add one (see docs/recipe.md) to build it.`,
    );
  }
  const recipe = parseRecipe(recipeText);
  const known = Object.keys(recipe.targets);
  const targets = command.targets === 'all' ? known : command.targets;
  for (const target of targets) {
    if (!recipe.targets[target]) {
      const guess = closestMatch(target, known);
      throw new CrossdockError(
        'unknown-target',
        `Unknown target \`${target}\`${guess ? ` (did you mean \`${guess}\`?)` : ''}. ` +
          `${repoLabel(repo)} at ${resolved.sha.slice(0, 12)} has: ${known.map((t) => `\`${t}\``).join(', ')}.`,
      );
    }
  }
  return { command, repo, source, resolved, recipe, targets };
}

/**
 * Stores a planned build and one queued job per target in one transaction. Returns the build
 * with `created: false` when it is a replay (the same request key: see BuildRequest.dedupe).
 */
export async function storeBuild(
  deps: RequestBuildDeps,
  plan: BuildPlan,
  request: BuildRequest,
): Promise<BuildWithJobs & { created: boolean }> {
  const { command, repo, source, resolved, recipe, targets } = plan;
  const identity =
    request.dedupe === 'request' && !command.force
      ? [repoLabel(repo), resolved.sha, formatRef(command.ref), [...targets].sort().join(',')]
      : request.deliveryId !== undefined
        ? [request.deliveryId]
        : undefined;
  const requestKey = identity
    ? createHash('sha256')
        .update([request.trigger, ...identity].join('\n'))
        .digest('hex')
    : undefined;
  return createBuild(deps.db, {
    repo: {
      owner: repo.owner,
      name: repo.name,
      cloneUrl: source.cloneUrl(repo),
      source: source.kind,
    },
    sha: resolved.sha,
    ref: formatRef(command.ref),
    pullNumber: resolved.pullNumber,
    branch: resolved.branch,
    tag: resolved.tag,
    trigger: request.trigger,
    requester: request.requester,
    recipeDigest: recipe.digest,
    trusted: resolved.trusted,
    requestKey,
    notify: request.notify,
    reuse: !command.force,
    cancelSuperseded: request.cancelSuperseded || recipe.cancelSuperseded,
    jobs: jobsForTargets(recipe, targets),
  });
}

/**
 * planBuild then storeBuild: parses, resolves and checks a build request, then stores the build
 * and its jobs. Returns the build with `created: false` when it is a replay. Throws what planBuild
 * throws; nothing is stored when it throws.
 */
export async function requestBuild(
  deps: RequestBuildDeps,
  request: BuildRequest,
): Promise<BuildWithJobs & { created: boolean }> {
  return storeBuild(deps, await planBuild(deps, request), request);
}

/** The commit and ref a stored build was of, to build it again exactly (a retry, a re-run). */
export function resolvedRefOf(build: Build): ResolvedRef {
  return {
    sha: build.sha,
    pullNumber: build.pullNumber ?? undefined,
    branch: build.branch ?? undefined,
    tag: build.tag ?? undefined,
    trusted: build.trusted,
  };
}

/** The jobs of targets `names` of `recipe` (each must be one of its targets), in that order. */
export function jobsForTargets(recipe: Recipe, names: string[]): NewJob[] {
  return names.map((name) => {
    const target = recipe.targets[name];
    if (!target) throw new Error(`no target ${name} in the recipe`);
    return {
      target: name,
      platform: target.platform,
      toolchains: target.toolchains,
      labels: target.labels,
      spec: {
        script: target.script,
        images: target.images,
        ...(target.dockerfile ? { dockerfile: target.dockerfile } : {}),
        artifacts: target.artifacts,
        env: target.env,
        network: target.network,
        timeoutMinutes: target.timeoutMinutes,
        secrets: target.secrets,
        resources: target.resources,
        caches: target.caches,
      },
    };
  });
}
