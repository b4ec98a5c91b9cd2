import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { Probot, createNodeMiddleware, type Context } from 'probot';
import { COMMANDS, formatRef, parseCommand, type RepoName } from '../../core/command';
import { CrossdockError, reportError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import type { Database } from '../../db/client';
import { cancelBuild } from '../../db/queries/jobs';
import {
  approve,
  findJobByCheckRun,
  holdRequest,
  isApproved,
  listHolds,
  listPullBuilds,
  releaseHold,
  saveRelease,
  setHoldCheckRun,
  setPullNotice,
  upsertGitHubRepo,
  type Hold,
} from '../../db/queries/github';
import { UNSUCCESSFUL_JOB_STATES, type HeldRequest, type Trigger } from '../../db/schema';
import type { GitHubAppOptions } from '../config';
import { requestBuild, resolvedRefOf, type BuildRequest } from '../request-build';
import { GitHubSource, httpStatus } from '../sources/github';
import type { ResolvedRef } from '../sources/source-host';
import { commentCommands, labelTargets, targetsText } from './commands';
import { escapeMarkdown, renderApprovalCheckRun } from './render';
import type { GitHubClient, GitHubReporter } from './reporter';

export interface GitHubAppDeps {
  db: Database;
  log: Logger;
  /** Clone URLs are `${cloneBaseUrl}/owner/name.git`. */
  cloneBaseUrl: string;
  /** GitHub's REST API base URL (a fake's in tests). */
  apiUrl: string;
  portalUrl: string;
  /** Set once the reporter runs (it needs the Probot instance made here). */
  reporter: () => GitHubReporter | undefined;
}

/** The commands a pull request comment takes, as help lists them. */
const PULL_COMMANDS = COMMANDS.filter((command) => command.frontEnds.includes('github'))
  .map((command) => command.syntax)
  .join(', ');
/** A pull request as the triggers need it, from a webhook payload or pulls.get. */
interface PullInfo {
  number: number;
  sha: string;
  branch: string;
  author: string;
  /** The head is in another repository than the base. */
  fork: boolean;
}

/** GitHub's legacy permission levels that may start builds (maintain reads as write). */
const WRITERS = new Set(['admin', 'write']);

const pullInfo = (pull: {
  number: number;
  head: { sha: string; ref: string; repo: { full_name: string } | null };
  base: { repo: { full_name: string } };
  user: { login: string } | null;
}): PullInfo => ({
  number: pull.number,
  sha: pull.head.sha,
  branch: pull.head.ref,
  author: pull.user?.login ?? 'ghost',
  fork: pull.head.repo?.full_name !== pull.base.repo.full_name,
});

/**
 * The GitHub front end: a Probot app (webhook signatures verified with the App's secret, by
 * @octokit/webhooks) that turns pull request labels and pushes, `/build` comments, tag pushes,
 * published releases and check run re-runs into builds. Handlers are awaited before the webhook
 * is answered, so they only check, store and enqueue; the reporter talks back to GitHub.
 * Returns the Probot instance and an http listener for `options.webhookPath`.
 */
export async function createGitHubApp(
  options: GitHubAppOptions,
  deps: GitHubAppDeps,
): Promise<{
  probot: Probot;
  middleware: (request: IncomingMessage, response: ServerResponse) => Promise<boolean>;
}> {
  const probot = new Probot({
    appId: options.appId,
    privateKey: options.privateKey,
    secret: options.webhookSecret,
    baseUrl: deps.apiUrl,
    // Probot logs a failed delivery with its whole payload (err.event): its id and name suffice.
    log: deps.log.child(
      { frontEnd: 'github' },
      {
        serializers: {
          err: (error: Error & { event?: { id?: string; name?: string } }) => {
            const { type, message, stack } = pino.stdSerializers.err(error);
            const event = error.event && { id: error.event.id, name: error.event.name };
            return { type, message, stack, event };
          },
          event: (event: { id?: string; name?: string }) => ({ id: event.id, name: event.name }),
        },
      },
    ) as never,
  });
  const handler = await createNodeMiddleware((app) => registerHandlers(app, options, deps), {
    probot,
    webhooksPath: options.webhookPath ?? '/api/github/webhooks',
  });
  return {
    probot,
    middleware: async (request, response) => {
      let handled = true;
      await handler(request, response, () => {
        handled = false;
      });
      return handled;
    },
  };
}

function registerHandlers(app: Probot, options: GitHubAppOptions, deps: GitHubAppDeps) {
  const { db } = deps;

  /** What every handler needs of an event: the repository (stored), the client, who sent it. */
  const begin = async (context: Context) => {
    const payload = context.payload as {
      installation?: { id: number };
      repository: { owner: { login: string }; name: string };
      sender: { login: string };
    };
    const installationId = payload.installation?.id;
    if (installationId === undefined)
      throw new Error('webhook without an installation: is it from this GitHub App?');
    const name: RepoName = { owner: payload.repository.owner.login, name: payload.repository.name };
    const repo = await upsertGitHubRepo(
      db,
      {
        owner: name.owner,
        name: name.name,
        cloneUrl: `${deps.cloneBaseUrl}/${name.owner}/${name.name}.git`,
        source: 'github',
      },
      installationId,
    );
    const log = deps.log.child({
      delivery: context.id,
      event: context.name,
      repo: `${name.owner}/${name.name}`,
    });
    if (!repo) {
      log.warn('repository registered as plain git: its GitHub webhooks are ignored');
      return undefined;
    }
    const octokit = context.octokit as unknown as GitHubClient;
    // Refs and files read through this installation's client.
    const source = new GitHubSource(deps, octokit);
    return { installationId, name, repo, octokit, source, sender: payload.sender.login, log };
  };
  type Event = NonNullable<Awaited<ReturnType<typeof begin>>>;

  const canWrite = async (event: Event, login: string) => {
    try {
      const { data } = await event.octokit.rest.repos.getCollaboratorPermissionLevel({
        owner: event.name.owner,
        repo: event.name.name,
        username: login,
      });
      return WRITERS.has(data.permission);
    } catch (error) {
      if (httpStatus(error) === 404) return false;
      throw error;
    }
  };

  const request = (event: Event, fields: Omit<BuildRequest, 'notify'>) =>
    requestBuild(
      { db, sources: { forRepo: async () => event.source } },
      {
        ...fields,
        defaultRepo: event.name,
        notify: { github: { installationId: event.installationId } },
      },
    );

  const notice = async (event: Event, pullNumber: number, text: string) => {
    await setPullNotice(db, event.repo.id, pullNumber, text);
    deps.reporter()?.refreshPull(event.repo.id, pullNumber);
  };

  const holdKey = (event: Event, pull: PullInfo, trigger: Trigger, text: string, id: string) =>
    createHash('sha256')
      .update(['hold', event.repo.id, pull.number, pull.sha, trigger, text, id].join('\n'))
      .digest('hex');

  /**
   * Builds `text` (targets, maybe `--force`) of the pull request's head, or holds it when the head
   * is a fork's by someone who cannot write to the repository and no maintainer approved it.
   */
  const requestPullBuild = async (
    event: Event,
    pull: PullInfo,
    fields: {
      text: string;
      trigger: Trigger;
      deliveryId: string;
      dedupe: 'delivery' | 'request';
      cancelSuperseded?: boolean;
      /** Who pushed the head (synchronize): they must be able to write too, or it is held. */
      pusher?: string;
    },
  ) => {
    const resolved: ResolvedRef = {
      sha: pull.sha,
      pullNumber: pull.number,
      branch: pull.branch,
      trusted: !pull.fork,
    };
    const held =
      pull.fork &&
      !(await isApproved(db, event.repo.id, pull.number, pull.sha)) &&
      (!(await canWrite(event, pull.author)) ||
        (fields.pusher !== undefined && !(await canWrite(event, fields.pusher))));
    if (held) {
      const heldRequest: HeldRequest = {
        text: fields.text,
        trigger: fields.trigger,
        requester: `github:${event.sender}`,
        dedupe: fields.dedupe,
        deliveryId: fields.deliveryId,
        requestKey: holdKey(
          event,
          pull,
          fields.trigger,
          fields.text,
          fields.dedupe === 'delivery' ? fields.deliveryId : '',
        ),
        installationId: event.installationId,
        cancelSuperseded: fields.cancelSuperseded,
      };
      const { hold, created } = await holdRequest(db, {
        repoId: event.repo.id,
        pullNumber: pull.number,
        sha: pull.sha,
        request: heldRequest,
      });
      if (created) {
        const others = await listHolds(db, event.repo.id, pull.number, pull.sha);
        const shown = others.find((other) => other.checkRunId !== null);
        const checkRunId =
          shown?.checkRunId ??
          (
            await event.octokit.rest.checks.create({
              owner: event.name.owner,
              repo: event.name.name,
              head_sha: pull.sha,
              details_url: deps.portalUrl,
              ...renderApprovalCheckRun(),
            })
          ).data.id;
        await setHoldCheckRun(db, hold.id, checkRunId);
        // An approval that came in while this request was being held: release it now.
        if (await isApproved(db, event.repo.id, pull.number, pull.sha)) {
          await releaseHolds(event, pull, [{ ...hold, checkRunId }], 'a maintainer');
          return undefined;
        }
      }
      await notice(
        event,
        pull.number,
        `Held ${pull.sha.slice(0, 12)}: @${pull.author} opened this pull request from a fork and cannot write to ${event.name.owner}/${event.name.name}. A maintainer comments /ok-to-build to build this commit.`,
      );
      event.log.info({ pullNumber: pull.number, sha: pull.sha }, 'build request held for approval');
      return undefined;
    }
    const result = await request(event, {
      text: fields.text,
      trigger: fields.trigger,
      requester: `github:${event.sender}`,
      deliveryId: fields.deliveryId,
      dedupe: fields.dedupe,
      defaultRef: { kind: 'pull', number: pull.number },
      resolved,
      cancelSuperseded: fields.cancelSuperseded,
    });
    event.log.info(
      { buildId: result.build.id, created: result.created, pullNumber: pull.number },
      'build requested',
    );
    deps.reporter()?.poke();
    return result;
  };

  /** Builds the held requests of an approved head; marks each released. */
  const releaseHolds = async (event: Event, pull: PullInfo, holds: Hold[], approvedBy: string) => {
    for (const hold of holds) {
      let buildId: number | undefined;
      try {
        const result = await request(event, {
          text: hold.request.text,
          trigger: hold.request.trigger,
          requester: hold.request.requester,
          deliveryId: hold.request.deliveryId,
          dedupe: hold.request.dedupe,
          defaultRef: { kind: 'pull', number: pull.number },
          resolved: { sha: hold.sha, pullNumber: pull.number, branch: pull.branch, trusted: false },
          cancelSuperseded: hold.request.cancelSuperseded,
        });
        buildId = result.build.id;
      } catch (error) {
        // A mistake in the request (its recipe, its targets) drops it with a notice; an outage
        // keeps it held, so that the approval can be repeated.
        if (reportError(error).level !== 'info') throw error;
        await notice(event, pull.number, reportError(error).reply);
      }
      await releaseHold(db, hold.id, buildId);
      if (hold.checkRunId !== null)
        await event.octokit.rest.checks.update({
          owner: event.name.owner,
          repo: event.name.name,
          check_run_id: hold.checkRunId,
          ...renderApprovalCheckRun(approvedBy),
        });
    }
    deps.reporter()?.poke();
  };

  /** Runs a trigger; a user's mistake goes to the pull request's comment, a bug is rethrown. */
  const guarded = async (
    event: Event,
    pullNumber: number | undefined,
    action: () => Promise<void>,
  ): Promise<boolean> => {
    try {
      await action();
      return true;
    } catch (error) {
      const report = reportError(error);
      event.log[report.level]({ err: error, code: report.code }, 'webhook trigger refused');
      if (!(error instanceof CrossdockError)) throw error;
      if (pullNumber !== undefined) await notice(event, pullNumber, report.reply);
      return false;
    }
  };

  app.on('pull_request.labeled', async (context) => {
    const targets = labelTargets([context.payload.label?.name ?? '']);
    if (!targets) return;
    const event = await begin(context);
    if (!event) return;
    const pull = pullInfo(context.payload.pull_request);
    await guarded(event, pull.number, async () => {
      if (!(await canWrite(event, event.sender)))
        throw new CrossdockError(
          'no-permission',
          `@${event.sender} added ${context.payload.label?.name} but cannot write to ${event.name.owner}/${event.name.name}; a maintainer must add it.`,
        );
      await requestPullBuild(event, pull, {
        text: targetsText(targets),
        trigger: 'label',
        deliveryId: context.id,
        dedupe: 'request',
      });
    });
  });

  app.on('pull_request.synchronize', async (context) => {
    const targets = labelTargets(context.payload.pull_request.labels.map((label) => label.name));
    if (!targets) return;
    const event = await begin(context);
    if (!event) return;
    const pull = pullInfo(context.payload.pull_request);
    await guarded(event, pull.number, async () => {
      // Holds of older heads are moot: their commits are no longer the pull request's.
      for (const stale of await listHolds(db, event.repo.id, pull.number))
        if (stale.sha !== pull.sha) await releaseHold(db, stale.id, undefined);
      await requestPullBuild(event, pull, {
        text: targetsText(targets),
        trigger: 'label',
        deliveryId: context.id,
        dedupe: 'request',
        cancelSuperseded: true,
        pusher: event.sender,
      });
    });
  });

  app.on('issue_comment.created', async (context) => {
    const { issue, comment } = context.payload;
    if (!issue.pull_request) return;
    const commands = commentCommands(comment.body);
    if (commands.length === 0) return;
    const event = await begin(context);
    if (!event) return;
    const react = (content: '+1' | 'confused') =>
      event.octokit.rest.reactions.createForIssueComment({
        owner: event.name.owner,
        repo: event.name.name,
        comment_id: comment.id,
        content,
      });
    if (!(await canWrite(event, comment.user?.login ?? event.sender))) {
      await notice(
        event,
        issue.number,
        `@${event.sender} cannot start builds here: that needs write access to ${event.name.owner}/${event.name.name}. A maintainer can comment /build or /ok-to-build.`,
      );
      await react('confused');
      event.log.info({ pullNumber: issue.number }, 'comment command refused: no write access');
      return;
    }
    const { data } = await event.octokit.rest.pulls.get({
      owner: event.name.owner,
      repo: event.name.name,
      pull_number: issue.number,
    });
    const pull = pullInfo(data);
    let accepted = true;
    for (const [index, command] of commands.entries()) {
      const deliveryId = `${context.id}#${index}`;
      const ok = await guarded(event, pull.number, async () => {
        if (command.kind === 'ok-to-build') {
          const holds = await listHolds(db, event.repo.id, pull.number, pull.sha);
          await checkApprovedCommit(pull, command.sha, holds, new Date(comment.created_at));
          await approve(db, {
            repoId: event.repo.id,
            pullNumber: pull.number,
            sha: pull.sha,
            approvedBy: event.sender,
          });
          await notice(
            event,
            pull.number,
            `@${event.sender} approved ${pull.sha.slice(0, 12)} for building${holds.length ? '' : ' (nothing was held)'}; a later push needs approval again.`,
          );
          await releaseHolds(event, pull, holds, event.sender);
          return;
        }
        const parsed = parseCommand(command.text, {
          defaultRef: { kind: 'pull', number: pull.number },
        });
        if (parsed.kind === 'help')
          return notice(
            event,
            pull.number,
            `Commands: ${PULL_COMMANDS}, /ok-to-build [sha] (maintainers, to build a fork's head).`,
          );
        if (parsed.kind === 'cancel') return cancelPullBuilds(event, pull.number, parsed.buildId);
        if (parsed.kind === 'retry') return retryPullBuild(event, pull, deliveryId, parsed.buildId);
        if (parsed.kind !== 'build')
          throw new CrossdockError(
            'bad-command',
            `/build ${parsed.kind} works in Slack; in a pull request: ${PULL_COMMANDS}.`,
          );
        if (parsed.repo)
          throw new CrossdockError(
            'bad-command',
            'A pull request comment builds this repository; leave out `in owner/repo`.',
          );
        if (parsed.ref.kind !== 'pull' || parsed.ref.number !== pull.number)
          throw new CrossdockError(
            'bad-command',
            `A pull request comment builds this pull request's head; to build ${formatRef(parsed.ref)}, use Slack or the CLI.`,
          );
        await requestPullBuild(event, pull, {
          text: command.text,
          trigger: 'comment',
          deliveryId,
          dedupe: parsed.force ? 'delivery' : 'request',
        });
      });
      accepted &&= ok;
    }
    await react(accepted ? '+1' : 'confused');
  });

  /**
   * An approval must be of the commit the maintainer saw: the one named (`/ok-to-build <sha>`,
   * which must be the head), or else a head that was already held when the comment was written,
   * so that a push racing the comment is never approved unseen.
   */
  const checkApprovedCommit = async (
    pull: PullInfo,
    named: string | undefined,
    holds: Hold[],
    commentedAt: Date,
  ) => {
    const head = pull.sha.slice(0, 12);
    if (named !== undefined) {
      if (!pull.sha.startsWith(named))
        throw new CrossdockError(
          'bad-command',
          `The head of #${pull.number} is ${head}, not ${named}: review it, then comment /ok-to-build ${head}.`,
        );
      return;
    }
    if (!holds.some((hold) => hold.createdAt <= commentedAt))
      throw new CrossdockError(
        'bad-command',
        `Nothing of ${head} was held when you commented, and the head may have moved since: to approve that commit, comment /ok-to-build ${head}.`,
      );
  };

  const cancelPullBuilds = async (event: Event, pullNumber: number, buildId?: number) => {
    const pullBuilds = await listPullBuilds(db, event.repo.id, pullNumber);
    const chosen =
      buildId === undefined
        ? pullBuilds.filter(({ build }) => ['queued', 'running'].includes(build.state))
        : pullBuilds.filter(({ build }) => build.id === buildId);
    if (buildId !== undefined && chosen.length === 0)
      throw new CrossdockError(
        'not-found',
        `Build #${buildId} is not a build of this pull request (or one of its last 20).`,
      );
    let canceled = 0;
    for (const { build } of chosen) {
      const result = await cancelBuild(db, build.id, `github:${event.sender}`);
      canceled += (result?.canceled ?? 0) + (result?.stopping ?? 0);
    }
    await notice(
      event,
      pullNumber,
      canceled > 0
        ? `@${event.sender} canceled ${canceled} job(s) of build(s) ${chosen.map(({ build }) => `#${build.id}`).join(', ')}.`
        : 'Nothing to cancel: no build of this pull request is queued or running.',
    );
  };

  const retryPullBuild = async (
    event: Event,
    pull: PullInfo,
    deliveryId: string,
    buildId?: number,
  ) => {
    const pullBuilds = await listPullBuilds(db, event.repo.id, pull.number);
    const chosen =
      buildId === undefined ? pullBuilds[0] : pullBuilds.find(({ build }) => build.id === buildId);
    if (!chosen)
      throw new CrossdockError(
        'not-found',
        buildId === undefined
          ? 'Nothing to retry: this pull request has no build yet. Comment `/build <targets>`.'
          : `Build #${buildId} is not a build of this pull request (or one of its last 20).`,
      );
    const failed = chosen.jobs
      .filter((job) => UNSUCCESSFUL_JOB_STATES.includes(job.state))
      .map((job) => job.target);
    if (failed.length === 0)
      throw new CrossdockError(
        'bad-command',
        `Build #${chosen.build.id} has nothing to retry (no target failed or was canceled). To build again anyway: \`/build <targets> --force\`.`,
      );
    await requestPullBuild(
      event,
      { ...pull, sha: chosen.build.sha },
      { text: `${failed.join(',')} --force`, trigger: 'comment', deliveryId, dedupe: 'delivery' },
    );
  };

  app.on('push', async (context) => {
    const { ref, deleted, head_commit: headCommit } = context.payload;
    if (!ref.startsWith('refs/tags/') || deleted) return;
    const tag = ref.slice('refs/tags/'.length);
    const event = await begin(context);
    if (!event) return;
    try {
      const result = await requestTagBuild(event, tag, context.id);
      event.log.info(
        { buildId: result.build.id, tag, created: result.created },
        'release build requested',
      );
      deps.reporter()?.poke();
    } catch (error) {
      if (!(error instanceof CrossdockError) || !headCommit) throw error;
      // No pull request to comment on: the commit's checks say why nothing was built.
      await recipeErrorCheckRun(event, headCommit.id, reportError(error).reply);
      event.log.info({ tag, code: error.code }, 'release build refused');
    }
  });

  /**
   * The release build of `tag`: every target of the commit the tag names (looked up as a tag
   * only, never as a branch, pull request or sha of the same name).
   */
  const requestTagBuild = async (event: Event, tag: string, deliveryId: string) => {
    const resolved = await event.source.resolveTag(event.name, tag);
    if (!resolved)
      throw new CrossdockError(
        'unknown-ref',
        `${event.name.owner}/${event.name.name} has no tag ${tag}.`,
      );
    return request(event, {
      text: 'all',
      trigger: 'tag',
      requester: `github:${event.sender}`,
      deliveryId,
      dedupe: 'request',
      defaultRef: { kind: 'name', name: tag },
      resolved,
    });
  };

  const recipeErrorCheckRun = (event: Event, sha: string, reply: string) =>
    event.octokit.rest.checks.create({
      owner: event.name.owner,
      repo: event.name.name,
      head_sha: sha,
      name: 'crossdock',
      status: 'completed',
      conclusion: 'failure',
      details_url: deps.portalUrl,
      output: { title: 'Nothing was built', summary: escapeMarkdown(reply) },
    });

  app.on('release.published', async (context) => {
    const { release } = context.payload;
    const event = await begin(context);
    if (!event) return;
    await saveRelease(db, {
      releaseId: release.id,
      repoId: event.repo.id,
      tag: release.tag_name,
      uploadUrl: release.upload_url,
      installationId: event.installationId,
    });
    // The tag's release build, if its push has not made it yet (the same request: one build).
    try {
      await requestTagBuild(event, release.tag_name, context.id);
    } catch (error) {
      if (!(error instanceof CrossdockError)) throw error;
      const tag = await event.source.resolveTag(event.name, release.tag_name);
      if (tag) await recipeErrorCheckRun(event, tag.sha, reportError(error).reply);
      event.log.info({ tag: release.tag_name, code: error.code }, 'release build refused');
    }
    deps.reporter()?.refreshRelease(event.repo.id, release.tag_name);
  });

  app.on('check_run.rerequested', async (context) => {
    const { check_run: checkRun } = context.payload;
    if (checkRun.app?.id !== undefined && String(checkRun.app.id) !== String(options.appId)) return;
    const event = await begin(context);
    if (!event) return;
    const found = await findJobByCheckRun(db, checkRun.id);
    if (!found) {
      event.log.info({ checkRunId: checkRun.id }, 're-run of a check run Crossdock did not make');
      return;
    }
    const { job, build } = found;
    await guarded(event, build.pullNumber ?? undefined, async () => {
      if (!(await canWrite(event, event.sender)))
        throw new CrossdockError(
          'no-permission',
          `@${event.sender} cannot re-run builds: that needs write access to ${event.name.owner}/${event.name.name}.`,
        );
      const result = await request(event, {
        text: `${job.target} --force`,
        trigger: 'rerun',
        requester: `github:${event.sender}`,
        deliveryId: context.id,
        defaultRef: { kind: 'name', name: build.ref },
        resolved: resolvedRefOf(build),
      });
      event.log.info({ buildId: result.build.id, target: job.target }, 'check run re-run');
      deps.reporter()?.poke();
    });
  });
}
