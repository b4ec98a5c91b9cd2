import type { WebClient } from '@slack/web-api';
import { parseRepoName, type Command, type RepoName } from '../../core/command';
import { CrossdockError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { RECIPE_FILE, parseRecipe } from '../../core/recipe';
import type { Database } from '../../db/client';
import {
  getBuild,
  listRecentBuilds,
  markBuildReported,
  setBuildNotify,
  type BuildWithJobs,
} from '../../db/queries/builds';
import { cancelBuild } from '../../db/queries/jobs';
import {
  createSlackHold,
  decideSlackHold,
  getChannelRepo,
  getSlackHold,
  recordRefusal,
  reopenSlackHold,
  setChannelRepo,
  setDirectMessages,
  setHoldBuild,
  setHoldMessage,
  wantsDirectMessages,
} from '../../db/queries/slack';
import { listWorkers, queueDepth } from '../../db/queries/workers';
import { FINAL_BUILD_STATES, UNSUCCESSFUL_JOB_STATES } from '../../db/schema';
import { loadBuildView, type BuildView } from '../build-view';
import { planBuild, resolvedRefOf, storeBuild, type BuildPlan } from '../request-build';
import type { SourceDirectory } from '../sources/directory';
import { repoLabel } from '../sources/source-host';
import { portalUrls } from '../../core/urls';
import {
  escapeMrkdwn,
  renderBuildList,
  renderBuildMessage,
  renderHeldMessage,
  renderHelp,
  renderHome,
  renderTargets,
  renderText,
  renderWorkers,
  type SlackMessage,
} from './messages';
import type { SlackAction, SlackPermissions } from './permissions';

/** An answer to the person who typed a command or clicked a button. */
export interface SlackReply extends SlackMessage {
  /** `ephemeral` (default): only they see it; `in_channel`: everyone in the channel does. */
  visibility?: 'ephemeral' | 'in_channel';
}

export interface SlackServiceOptions {
  db: Database;
  sources: SourceDirectory;
  /** Slack's Web API as the bot (chat.postMessage, chat.update, views.publish). */
  client: WebClient;
  permissions: SlackPermissions;
  portalUrl: string;
  /** Channel id → owner/repo from the configuration; `/build use` overrides it per channel. */
  channelRepos: Record<string, string>;
  defaultRepo?: string;
  log: Logger;
  /** Called after a build's message is posted showing `view`, so its changes are reported. */
  onBuildPosted?: (view: BuildView) => void;
}

/** Who asked, and where: a slash command's or a button click's context. */
export interface SlackRequester {
  userId: string;
  channelId: string;
  /** Slack's trigger_id of the command or click: replays of one request share it. */
  requestId: string;
}

/** Slack's error code of a failed Web API call (e.g. `not_in_channel`), or `unknown`. */
export function slackError(error: unknown): string {
  return (error as { data?: { error?: string } }).data?.error ?? 'unknown';
}

/**
 * What Crossdock does for Slack, behind Bolt's handlers (bot/slack/app.ts): runs parsed
 * commands and button clicks and returns what to answer. Throws CrossdockError for a user's
 * mistake or a refusal (the caller answers with its message); refusals (`no-permission`) are
 * recorded in `refusals` first.
 */
export function createSlackService(options: SlackServiceOptions) {
  const { db, sources, client, permissions, portalUrl, log } = options;
  const requesterOf = (userId: string) => `slack:${userId}`;

  /** Throws `no-permission` (recorded) unless `userId` may do `action` on `repo`. */
  const authorize = async (
    who: SlackRequester | string,
    action: SlackAction,
    repo: string,
    what: string = action,
  ) => {
    const userId = typeof who === 'string' ? who : who.userId;
    try {
      await permissions.check(userId, action, repo);
    } catch (error) {
      if (error instanceof CrossdockError)
        await recordRefusal(db, {
          frontEnd: 'slack',
          actor: requesterOf(userId),
          action: what,
          repo,
          reason: error.message,
        });
      throw error;
    }
  };

  const channelRepo = async (channelId: string): Promise<RepoName | undefined> => {
    const name =
      (await getChannelRepo(db, channelId)) ??
      options.channelRepos[channelId] ??
      options.defaultRepo;
    return name ? parseRepoName(name) : undefined;
  };

  const findBuild = async (buildId: number) => {
    const found = await getBuild(db, buildId);
    if (!found)
      throw new CrossdockError(
        'not-found',
        `There is no build #${buildId}. \`/build list\` shows recent ones.`,
      );
    return found;
  };

  /**
   * Records that message `ts` in `channelId` shows build `view` (for `userId`), for the notifier
   * to edit. A build that is already final (its jobs reused an identical build's outcome) is left
   * for the notifier to finish: its thread logs and direct message.
   */
  const attachMessage = async (view: BuildView, channelId: string, ts: string, userId: string) => {
    await setBuildNotify(db, view.build.id, { slack: { channel: channelId, ts, user: userId } });
    if (!FINAL_BUILD_STATES.includes(view.build.state))
      await markBuildReported(db, view.build.id, view.build.state);
    options.onBuildPosted?.(view);
  };

  /**
   * Posts a new build's message in `channelId` and records it for the notifier to edit. If Slack
   * refuses the post (e.g. the bot is not in a private channel), the build still runs: the
   * answer says so and where to follow it. Returns that answer, or undefined when posted.
   */
  const postBuildMessage = async (
    buildId: number,
    channelId: string,
    userId: string,
  ): Promise<SlackReply | undefined> => {
    const view = (await loadBuildView(db, buildId))!;
    let posted;
    try {
      posted = await client.chat.postMessage({
        channel: channelId,
        ...renderBuildMessage(view, portalUrl),
      });
    } catch (error) {
      log.warn({ err: error, buildId, channel: channelId }, 'posting the build message failed');
      return renderText(
        `Build #${buildId} is queued, but I cannot post in this channel (${slackError(error)}): invite me with \`/invite @Crossdock\`, and follow it at ${portalUrls.build(portalUrl, buildId)}.`,
      );
    }
    await attachMessage(view, posted.channel ?? channelId, posted.ts!, userId);
    return undefined;
  };

  /** The answer to a click on a request someone already decided. */
  const alreadyDecided = async (holdId: number) => {
    const held = (await getSlackHold(db, holdId))!;
    const by = held.decidedBy?.startsWith('slack:')
      ? `<@${held.decidedBy.slice('slack:'.length)}>`
      : 'Crossdock';
    return renderText(
      `That request was already ${held.state} by ${by}${held.buildId ? ` (build #${held.buildId})` : ''}.`,
    );
  };

  const build = async (
    who: SlackRequester,
    command: Extract<Command, { kind: 'build' }>,
    text: string,
  ): Promise<SlackReply | undefined> => {
    const defaultRepo = command.repo ? undefined : await channelRepo(who.channelId);
    const named = command.repo ?? defaultRepo;
    // Before the source is read, so that nothing of a repository leaks to who may not build it
    // (without a repository, planBuild refuses the command).
    if (named) await authorize(who, 'build', repoLabel(named));
    const plan = await planBuild({ db, sources }, { text, defaultRepo });
    const repo = repoLabel(plan.repo);
    if (plan.resolved.tag) await authorize(who, 'release', repo);
    if (!plan.resolved.trusted && !(await permissions.allows(who.userId, 'approve', repo)))
      return hold(who, plan, text);
    const stored = await storeBuild({ db, sources }, plan, {
      text,
      trigger: 'slack',
      requester: requesterOf(who.userId),
      deliveryId: who.requestId,
    });
    log.info({ buildId: stored.build.id, created: stored.created }, 'build requested');
    if (!stored.created) return renderText(`That request is already build #${stored.build.id}.`);
    return postBuildMessage(stored.build.id, who.channelId, who.userId);
  };

  /** Holds a request for a fork's code: a message with Approve, for those who may approve. */
  const hold = async (who: SlackRequester, plan: BuildPlan, text: string) => {
    const request = {
      text,
      repo: repoLabel(plan.repo),
      userId: who.userId,
      resolved: plan.resolved,
      targets: plan.targets,
    };
    const held = await createSlackHold(db, {
      requestId: who.requestId,
      channelId: who.channelId,
      request,
    });
    if (!held.created) return renderText('That request is already waiting for approval.');
    let posted;
    try {
      posted = await client.chat.postMessage({
        channel: who.channelId,
        ...renderHeldMessage(held.id, request, 'held'),
      });
    } catch (error) {
      // Nobody could approve a request without its message: drop it, and say why.
      await decideSlackHold(db, held.id, 'dismissed', 'crossdock');
      log.warn({ err: error, holdId: held.id }, 'posting the held request failed');
      return renderText(
        `I cannot post in this channel (${slackError(error)}), so nobody could approve your request: invite me with \`/invite @Crossdock\` and ask again.`,
      );
    }
    await setHoldMessage(db, held.id, posted.ts!);
    log.info({ holdId: held.id, repo: request.repo }, 'build request held for approval');
    return renderText(
      `${plan.resolved.sha.slice(0, 12)} is a fork's code: your request waits for someone who may approve fork builds of ${request.repo}.`,
    );
  };

  const cancel = async (who: SlackRequester, buildId: number): Promise<SlackReply> => {
    const found = await findBuild(buildId);
    if (found.build.requester !== requesterOf(who.userId)) {
      await authorize(who, 'build', repoLabel(found.repo), 'cancel');
      if (found.build.tag) await authorize(who, 'release', repoLabel(found.repo), 'cancel');
    }
    const result = await cancelBuild(db, buildId, requesterOf(who.userId));
    const stopped = (result?.canceled ?? 0) + (result?.stopping ?? 0);
    log.info({ buildId, ...result }, 'build canceled');
    return renderText(
      stopped > 0
        ? `Canceling build #${buildId}: ${result!.canceled} queued jobs canceled, ${result!.stopping} running jobs stopping.`
        : `Nothing to cancel: build #${buildId} is ${found.build.state}.`,
    );
  };

  /**
   * Builds again the failed, timed-out and canceled targets of a build, at the same commit. One
   * retry per build (repeated clicks find it): retry the retry to go again.
   */
  const retry = async (who: SlackRequester, buildId: number): Promise<SlackReply | undefined> => {
    const found = await findBuild(buildId);
    const repo = repoLabel(found.repo);
    await authorize(who, 'build', repo, 'retry');
    if (found.build.tag) await authorize(who, 'release', repo, 'retry');
    const failed = found.jobs.filter((job) => UNSUCCESSFUL_JOB_STATES.includes(job.state));
    if (failed.length === 0)
      throw new CrossdockError(
        'bad-command',
        found.build.state === 'queued' || found.build.state === 'running'
          ? `Build #${buildId} is still ${found.build.state}; retry it once it ends.`
          : `Build #${buildId} has nothing to retry: no target failed or was canceled. To build again anyway: \`/build <targets> ${found.build.ref} --force\`.`,
      );
    const text = `${failed.map((job) => job.target).join(',')} ${found.build.ref} in ${repo} --force`;
    const plan = await planBuild({ db, sources }, { text, resolved: resolvedRefOf(found.build) });
    const stored = await storeBuild({ db, sources }, plan, {
      text,
      trigger: 'slack',
      requester: requesterOf(who.userId),
      deliveryId: `retry-of:${buildId}`,
    });
    if (!stored.created)
      return renderText(
        `Build #${buildId} was already retried as build #${stored.build.id}; to go again, retry that one.`,
      );
    log.info({ buildId: stored.build.id, retryOf: buildId }, 'build retried');
    return postBuildMessage(stored.build.id, who.channelId, who.userId);
  };

  const status = async (who: SlackRequester, buildId?: number): Promise<SlackReply> => {
    let id = buildId;
    if (id === undefined) {
      const [latest] = await listRecentBuilds(db, {
        requester: requesterOf(who.userId),
        limit: 1,
      });
      if (!latest)
        throw new CrossdockError(
          'not-found',
          'You have no builds yet: start one with `/build <targets> <ref>`, or ask about one with `/build status 42`.',
        );
      id = latest.build.id;
    }
    const view = await loadBuildView(db, id);
    if (!view)
      throw new CrossdockError(
        'not-found',
        `There is no build #${id}. \`/build list\` shows recent ones.`,
      );
    await authorize(who, 'build', repoLabel(view.repo), 'status');
    return renderBuildMessage(view, portalUrl);
  };

  /** The builds of `rows` whose repositories `userId` may build (and so see). */
  const visible = async (userId: string, rows: BuildWithJobs[]) => {
    const kept: BuildWithJobs[] = [];
    for (const row of rows)
      if (await permissions.allows(userId, 'build', repoLabel(row.repo))) kept.push(row);
    return kept;
  };

  const list = async (who: SlackRequester, mine: boolean): Promise<SlackReply> => {
    if (mine)
      return renderBuildList(
        await listRecentBuilds(db, { requester: requesterOf(who.userId), limit: 15 }),
        'Your recent builds',
        portalUrl,
      );
    const repo = await channelRepo(who.channelId);
    const label = repo ? repoLabel(repo) : undefined;
    return renderBuildList(
      await visible(who.userId, await listRecentBuilds(db, { repo: label, limit: 15 })),
      label ? `Recent builds of ${label}` : 'Recent builds',
      portalUrl,
    );
  };

  const targets = async (who: SlackRequester, named?: RepoName): Promise<SlackReply> => {
    const repo = named ?? (await channelRepo(who.channelId));
    if (!repo)
      throw new CrossdockError(
        'bad-command',
        "Which repository? Write `/build targets acme/widget`, or set this channel's with `/build use acme/widget`.",
      );
    await authorize(who, 'build', repoLabel(repo), 'targets');
    const source = await sources.forRepo(repo);
    const branch = await source.defaultBranch(repo);
    const resolved = await source.resolveRef(repo, { kind: 'name', name: branch });
    const text = await source.readFile(repo, resolved.sha, RECIPE_FILE);
    if (text === undefined)
      throw new CrossdockError(
        'recipe-missing',
        `${repoLabel(repo)} has no ${RECIPE_FILE} on ${branch}; add one (see docs/recipe.md) to build it.`,
      );
    const recipe = parseRecipe(text);
    return renderTargets(
      repoLabel(repo),
      branch,
      Object.entries(recipe.targets).map(([name, target]) => ({
        name,
        platform: target.platform,
        toolchains: target.toolchains,
      })),
    );
  };

  const use = async (who: SlackRequester, repo: RepoName): Promise<SlackReply> => {
    const label = repoLabel(repo);
    await authorize(who, 'build', label, 'use');
    const source = await sources.forRepo(repo);
    const branch = await source.defaultBranch(repo);
    await setChannelRepo(db, who.channelId, label, requesterOf(who.userId));
    return {
      ...renderText(
        `<@${who.userId}> set this channel's repository to *${escapeMrkdwn(label)}* (default branch \`${escapeMrkdwn(branch)}\`): \`/build <targets> <ref>\` builds it here.`,
      ),
      visibility: 'in_channel',
    };
  };

  /** Publishes `userId`'s App Home tab (views.publish): only builds they may see. */
  const publishHome = async (userId: string): Promise<void> => {
    const [mine, running, fleet, queue, directMessages] = await Promise.all([
      listRecentBuilds(db, { requester: requesterOf(userId), limit: 10 }),
      listRecentBuilds(db, { active: true, limit: 10 }),
      listWorkers(db),
      queueDepth(db),
      wantsDirectMessages(db, userId),
    ]);
    await client.views.publish({
      user_id: userId,
      view: renderHome(
        { mine, running: await visible(userId, running), workers: fleet, queue, directMessages },
        portalUrl,
      ),
    });
  };

  const workers = async (): Promise<SlackReply> => {
    const fleet = await listWorkers(db);
    return renderWorkers(fleet, await queueDepth(db, fleet), portalUrl);
  };

  return {
    /**
     * Runs a parsed command typed by `who`; resolves to the answer, or undefined when the answer
     * is the build's channel message. `text` is the command as typed (after `/build`).
     */
    async command(
      who: SlackRequester,
      command: Command,
      text: string,
    ): Promise<SlackReply | undefined> {
      switch (command.kind) {
        case 'build':
          return build(who, command, text);
        case 'cancel':
          return cancel(who, command.buildId!);
        case 'retry':
          return retry(who, command.buildId!);
        case 'status':
          return status(who, command.buildId);
        case 'list':
          return list(who, command.mine);
        case 'targets':
          return targets(who, command.repo);
        case 'use':
          return use(who, command.repo);
        case 'workers':
          return workers();
        case 'help':
          return renderHelp();
      }
    },

    /** The Cancel button of build `buildId`'s message. */
    cancel,
    /** The Retry button of build `buildId`'s message: the retry gets its own message. */
    retry,

    /**
     * The Approve button of held request `holdId`: builds exactly the held commit, for its
     * requester, and turns the held message into the build's message. Once: a repeated click is
     * told who approved it.
     */
    async approve(who: SlackRequester, holdId: number): Promise<SlackReply | undefined> {
      const held = await getSlackHold(db, holdId);
      if (!held) throw new CrossdockError('not-found', `There is no held request #${holdId}.`);
      await authorize(who, 'approve', held.request.repo);
      const decided = await decideSlackHold(db, holdId, 'approved', requesterOf(who.userId));
      if (!decided) return alreadyDecided(holdId);
      const { request } = held;
      let stored;
      try {
        const plan = await planBuild(
          { db, sources },
          {
            text: request.text,
            defaultRepo: parseRepoName(request.repo),
            resolved: request.resolved,
          },
        );
        stored = await storeBuild({ db, sources }, plan, {
          text: request.text,
          trigger: 'slack',
          requester: requesterOf(request.userId),
          deliveryId: `hold:${holdId}`,
        });
      } catch (error) {
        // Not built (the recipe changed, the source is down): it can be approved again.
        await reopenSlackHold(db, holdId);
        throw error;
      }
      await setHoldBuild(db, holdId, stored.build.id);
      log.info({ holdId, buildId: stored.build.id, approvedBy: who.userId }, 'held build approved');
      const done = `Approved: build #${stored.build.id} of ${request.resolved.sha.slice(0, 12)} is queued.`;
      const view = (await loadBuildView(db, stored.build.id))!;
      if (!held.messageTs)
        return (
          (await postBuildMessage(stored.build.id, held.channelId, request.userId)) ??
          renderText(done)
        );
      try {
        await client.chat.update({
          channel: held.channelId,
          ts: held.messageTs,
          ...renderBuildMessage(view, portalUrl),
        });
      } catch (error) {
        log.warn(
          { err: error, buildId: stored.build.id },
          "turning the held message into the build's failed",
        );
        return (
          (await postBuildMessage(stored.build.id, held.channelId, request.userId)) ??
          renderText(done)
        );
      }
      await attachMessage(view, held.channelId, held.messageTs, request.userId);
      return renderText(done);
    },

    /** The Dismiss button of a held request: for its requester and those who may approve. */
    async dismiss(who: SlackRequester, holdId: number): Promise<SlackReply | undefined> {
      const held = await getSlackHold(db, holdId);
      if (!held) throw new CrossdockError('not-found', `There is no held request #${holdId}.`);
      if (held.request.userId !== who.userId)
        await authorize(who, 'approve', held.request.repo, 'dismiss');
      const decided = await decideSlackHold(db, holdId, 'dismissed', requesterOf(who.userId));
      if (!decided) return alreadyDecided(holdId);
      if (held.messageTs)
        await client.chat.update({
          channel: held.channelId,
          ts: held.messageTs,
          ...renderHeldMessage(holdId, held.request, 'dismissed', who.userId),
        });
      return undefined;
    },

    /** Publishes `userId`'s App Home tab. */
    publishHome,

    /** The Home tab's switch: turns direct messages on or off, then shows the new state. */
    async setDirectMessages(userId: string, on: boolean): Promise<void> {
      await setDirectMessages(db, userId, on);
      await publishHome(userId);
    },
  };
}
