import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { desc, eq } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBotServer } from '../../bot/server';
import { createLogger } from '../../core/logger';
import { builds, refusals } from '../../db/schema';
import { waitFor } from '../fakes/http';
import type { SlackCall } from '../fakes/slack-api';
import {
  appHomeOpenedEvent,
  blockActionPayload,
  eventEnvelope,
  postBlockAction,
  postEvent,
  postSlashCommand,
  slackSession,
} from '../support/slack';
import {
  CHANNEL,
  PRIVATE_CHANNEL,
  SIGNING_SECRET,
  makeHelloRepo,
  startStack,
} from '../support/stack';

const ALICE = 'U0ALICE'; // a developer: may build
const MAINTAINER = 'U0MAINT'; // may build and approve forks' code
const RELEASE_MANAGER = 'U0RM'; // may build and start release builds
const EVE = 'U0EVE'; // in no group: may do nothing

const RECIPE = [
  'targets:',
  '  quick:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: |',
  '      sleep 2',
  '      tail -1 NEWS > /out/quick.txt',
  '    artifacts: [quick.txt]',
  '  broken:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: |',
  '      sleep 2',
  '      echo "checking for libfrobnicate..."',
  '      echo "error: libfrobnicate-dev is missing" >&2',
  '      exit 1',
  '  slow:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: sleep 300',
  '',
].join('\n');

const PERMISSIONS = {
  repositories: {
    'acme/*': { build: ['S0DEVS'], release: ['S0RELEASE'], approve: [MAINTAINER] },
  },
};

/**
 * Chat-ops in Slack as stories: each request gets one channel message, edited as the build
 * moves; buttons cancel, retry and approve; the requester gets a direct message at the end; the
 * Home tab shows their builds; permissions refuse (and record) what a user may not do. Every
 * request is signed as Slack signs it; every payload the bot sends is checked against Block Kit's
 * limits by the fake Slack.
 */
describe('Slack chat-ops, end to end', () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let shas: ReturnType<typeof makeHelloRepo>;
  const scratch = mkdtempSync(join(tmpdir(), 'crossdock-chatops-'));

  let session: ReturnType<typeof slackSession>;
  const command = (...args: Parameters<typeof session.command>) => session.command(...args);
  const answerTo = (sent: Awaited<ReturnType<typeof command>>) => session.answerTo(sent);
  const click = (...args: Parameters<typeof session.click>) => session.click(...args);
  const clickAnswer = (key: string) => session.clickAnswer(key);
  const responsesTo = (key: string) => session.responsesTo(key);

  const newestBuild = async () =>
    (await stack.db.select().from(builds).orderBy(desc(builds.id)).limit(1))[0];
  const newBuildAfter = (previousId: number) =>
    waitFor('a new build', async () => {
      const build = await newestBuild();
      return build && build.id > previousId ? build : undefined;
    });
  const buildMessageTs = (buildId: number) =>
    waitFor(`build ${buildId}'s message`, async () => {
      const [build] = await stack.db.select().from(builds).where(eq(builds.id, buildId));
      return build?.notify.slack?.ts;
    });
  const finished = (buildId: number, timeoutMs = 120_000) =>
    waitFor(
      `build ${buildId} to end`,
      async () => {
        const [build] = await stack.db.select().from(builds).where(eq(builds.id, buildId));
        return build && !['queued', 'running'].includes(build.state) ? build : undefined;
      },
      timeoutMs,
    );

  /** The state a build message's fallback text shows ("Build #1 of acme/ops main: running — …"). */
  const shownState = (call: SlackCall) => /: (\w+) — /.exec(String(call.args.text))?.[1];
  /** The posts and edits of the channel message `ts`, as `post:<state>` / `update:<state>`. */
  const messageHistory = (ts: string) =>
    stack.slack.calls
      .filter(
        (call) =>
          (call.method === 'chat.postMessage' && call.ts === ts) ||
          (call.method === 'chat.update' && call.args.ts === ts),
      )
      .map((call) => `${call.method === 'chat.update' ? 'update' : 'post'}:${shownState(call)}`);
  /**
   * Waits until message `ts` shows a final state; resolves with its history. (A build whose
   * jobs reuse an identical earlier build's outcome is posted already finished.)
   */
  const finalHistory = (ts: string, state: string) =>
    waitFor(`message ${ts} to show ${state}`, () => {
      const history = messageHistory(ts);
      return history.at(-1)?.endsWith(`:${state}`) ? history : undefined;
    });
  /**
   * One post, then edits only, whose states never go back (queued → running → `final`), ending at
   * `final`. It may start at queued or running (the worker may claim the job before the post), and
   * a running build may be edited again while running when what it shows changes (the toolchain,
   * the worker): at most 4 entries in all.
   */
  const expectHistory = (history: string[], final: string) => {
    const order = ['queued', 'running', final];
    const ranks = history.map((entry) => order.indexOf(entry.split(':')[1]!));
    expect(history[0], history.join(' ')).toMatch(/^post:(queued|running)$/);
    expect(
      history.slice(1).every((entry) => entry.startsWith('update:')),
      history.join(' '),
    ).toBe(true);
    expect(ranks, history.join(' ')).toEqual([...ranks].sort((a, b) => a - b));
    expect(history.at(-1)).toBe(`update:${final}`);
    expect(history.length).toBeLessThanOrEqual(4);
  };

  const directMessagesTo = (user: string, buildId: number) =>
    stack.slack.calls.filter(
      (call) =>
        call.method === 'chat.postMessage' &&
        call.args.channel === user &&
        String(call.args.text).includes(`build #${buildId} `),
    );
  const actionIds = (call: SlackCall) =>
    JSON.stringify(call.args.blocks).match(/"action_id":"(\w+)"/g) ?? [];
  const lastEdit = (ts: string) =>
    stack.slack.calls
      .filter((call) => call.method === 'chat.update' && call.args.ts === ts)
      .at(-1)!;

  beforeAll(async () => {
    const permissionsFile = join(scratch, 'permissions.json');
    writeFileSync(permissionsFile, JSON.stringify(PERMISSIONS));
    stack = await startStack({
      workerSlots: 3,
      slack: {
        ackWaitMs: 1000,
        permissions: PERMISSIONS,
        channelRepos: { [CHANNEL]: 'acme/ops' },
      },
      slackUserGroups: {
        S0DEVS: [ALICE, MAINTAINER, RELEASE_MANAGER],
        S0RELEASE: [RELEASE_MANAGER],
      },
    });
    const recipe = join(scratch, 'recipe.yml');
    writeFileSync(recipe, RECIPE);
    shas = makeHelloRepo(stack.gitRoot, 'acme', 'ops', recipe);
    session = slackSession({
      url: stack.slackUrl,
      signingSecret: SIGNING_SECRET,
      slack: stack.slack,
      channelId: CHANNEL,
      userId: ALICE,
    });
    makeHelloRepo(stack.gitRoot, 'acme', 'other', recipe);
  });
  afterEach(() => {
    // Every payload sent so far kept within Block Kit's limits, and nothing unexpected was called.
    expect(stack.slack.violations).toEqual([]);
    expect(stack.slack.unexpected).toEqual([]);
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('a success: one message, edited to the artifacts, then a direct message', async () => {
    const before = (await newestBuild())?.id ?? 0;
    const sent = await command('quick main');
    const build = await newBuildAfter(before);
    expect(build).toMatchObject({ sha: shas.main, requester: `slack:${ALICE}`, trigger: 'slack' });
    const ts = await buildMessageTs(build.id);
    expect((await finished(build.id)).state).toBe('succeeded');
    const history = await finalHistory(ts, 'succeeded');
    expectHistory(history, 'succeeded');
    // Nothing else was said: the channel message is the answer.
    expect(sent.reply.body).toBe('');
    expect(responsesTo(sent.key)).toEqual([]);
    const done = lastEdit(ts);
    expect(JSON.stringify(done.args.blocks)).toMatch(/\/artifacts\/\d+\/download\/quick\.txt/);
    expect(actionIds(done)).toEqual(['"action_id":"open_portal"']);
    const dm = await waitFor('the direct message', () => directMessagesTo(ALICE, build.id)[0]);
    expect(String(dm.args.text)).toBe(`Your build #${build.id} of acme/ops main succeeded.`);
    // No log in a thread for a success.
    expect(stack.slack.calls.filter((call) => call.args.thread_ts === ts)).toEqual([]);
  });

  it('a failure: the message shows it with Retry, the log lines go in the thread; Retry once', async () => {
    const before = (await newestBuild())!.id;
    await command('broken main');
    const build = await newBuildAfter(before);
    const ts = await buildMessageTs(build.id);
    expect((await finished(build.id)).state).toBe('failed');
    expectHistory(await finalHistory(ts, 'failed'), 'failed');
    expect(actionIds(lastEdit(ts))).toEqual([
      '"action_id":"build_retry"',
      '"action_id":"open_portal"',
    ]);
    const thread = await waitFor('the log in the thread', () => {
      const replies = stack.slack.calls.filter((call) => call.args.thread_ts === ts);
      return replies.length ? replies : undefined;
    });
    expect(thread).toHaveLength(1);
    expect(JSON.stringify(thread[0]!.args.blocks)).toContain('error: libfrobnicate-dev is missing');
    await waitFor('the direct message', () => directMessagesTo(ALICE, build.id)[0]);

    // Retry twice (a double click): one new build, with a message of its own.
    const first = await click('build_retry', String(build.id), ts);
    const retried = await newBuildAfter(build.id);
    const second = await click('build_retry', String(build.id), ts);
    expect((await clickAnswer(second)).text).toBe(
      `Build #${build.id} was already retried as build #${retried.id}; to go again, retry that one.`,
    );
    expect(responsesTo(first)).toEqual([]);
    expect(retried).toMatchObject({ sha: build.sha, ref: 'main', requester: `slack:${ALICE}` });
    expect((await newestBuild())!.id).toBe(retried.id);
    const retryTs = await buildMessageTs(retried.id);
    expect(retryTs).not.toBe(ts);
    expect((await finished(retried.id)).state).toBe('failed');
  });

  it('a cancel: the Cancel button stops the running job; others may not cancel it', async () => {
    const before = (await newestBuild())!.id;
    await command('slow main');
    const build = await newBuildAfter(before);
    const ts = await buildMessageTs(build.id);
    await waitFor('the message to show running', () =>
      messageHistory(ts).at(-1)?.endsWith(':running') ? true : undefined,
    );
    const running = stack.slack.calls.filter(
      (call) => (call.ts ?? call.args.ts) === ts && shownState(call) === 'running',
    );
    expect(actionIds(running.at(-1)!)).toEqual([
      '"action_id":"build_cancel"',
      '"action_id":"open_portal"',
    ]);

    const refused = await clickAnswer(await click('build_cancel', String(build.id), ts, EVE));
    expect(refused.text).toBe(
      'You may not build acme/ops. <!subteam^S0DEVS> may: ask one of them.',
    );
    expect(refused.replace_original).toBe(false);
    const [refusal] = await stack.db
      .select()
      .from(refusals)
      .where(eq(refusals.actor, `slack:${EVE}`));
    expect(refusal).toMatchObject({ frontEnd: 'slack', action: 'cancel', repo: 'acme/ops' });

    const canceled = await clickAnswer(await click('build_cancel', String(build.id), ts));
    expect(canceled.text).toBe(
      `Canceling build #${build.id}: 0 queued jobs canceled, 1 running jobs stopping.`,
    );
    expect((await finished(build.id, 60_000)).state).toBe('canceled');
    expectHistory(await finalHistory(ts, 'canceled'), 'canceled');
    expect(actionIds(lastEdit(ts))).toEqual([
      '"action_id":"build_retry"',
      '"action_id":"open_portal"',
    ]);
    const again = await clickAnswer(await click('build_cancel', String(build.id), ts));
    expect(again.text).toBe(`Nothing to cancel: build #${build.id} is canceled.`);
  });

  it("an approval: a fork's pull request waits for someone who may approve it", async () => {
    const before = (await newestBuild())!.id;
    const sent = await command('quick pr-124');
    expect((await answerTo(sent)).text).toBe(
      `${shas.pr124.slice(0, 12)} is a fork's code: your request waits for someone who may approve fork builds of acme/ops.`,
    );
    expect((await newestBuild())!.id).toBe(before);
    const held = stack.slack.calls.find(
      (call) =>
        call.method === 'chat.postMessage' && String(call.args.text).includes('waits for approval'),
    )!;
    const ts = held.ts!;
    const holdId =
      /"action_id":"hold_approve","value":"(\d+)"|"value":"(\d+)","action_id":"hold_approve"/
        .exec(JSON.stringify(held.args.blocks))!
        .slice(1)
        .find(Boolean)!;

    const refused = await clickAnswer(await click('hold_approve', holdId, ts, ALICE));
    expect(refused.text).toBe(
      "You may not approve builds of forks' pull requests in acme/ops. <@U0MAINT> may: ask one of them.",
    );
    expect((await newestBuild())!.id).toBe(before);

    const approved = await clickAnswer(await click('hold_approve', holdId, ts, MAINTAINER));
    const build = await newBuildAfter(before);
    expect(approved.text).toBe(
      `Approved: build #${build.id} of ${shas.pr124.slice(0, 12)} is queued.`,
    );
    expect(build).toMatchObject({
      sha: shas.pr124,
      pullNumber: 124,
      trusted: false,
      requester: `slack:${ALICE}`,
    });
    expect(await buildMessageTs(build.id)).toBe(ts); // the same message became the build's
    const again = await clickAnswer(await click('hold_approve', holdId, ts, MAINTAINER));
    expect(again.text).toBe(
      `That request was already approved by <@${MAINTAINER}> (build #${build.id}).`,
    );
    expect((await finished(build.id)).state).toBe('succeeded');
    const history = await finalHistory(ts, 'succeeded');
    expect(history[0]).toBe('post:undefined'); // the held message has no build state
    expect(history.at(-1)).toBe('update:succeeded');
    expect((await newestBuild())!.id).toBe(build.id);
  });

  it('permissions: release builds of tags are for release managers; refusals are recorded', async () => {
    const before = (await newestBuild())!.id;
    const refused = await answerTo(await command('quick v2.10'));
    expect(refused.text).toBe(
      'You may not start release builds (of tags) of acme/ops. <!subteam^S0RELEASE> may: ask one of them.',
    );
    expect(refused.response_type).toBe('ephemeral');
    const outsider = await answerTo(await command('quick main', EVE));
    expect(outsider.text).toBe(
      'You may not build acme/ops. <!subteam^S0DEVS> may: ask one of them.',
    );
    expect((await newestBuild())!.id).toBe(before);
    const recorded = await stack.db.select().from(refusals).orderBy(desc(refusals.id)).limit(2);
    expect(recorded.map((row) => [row.actor, row.action, row.repo])).toEqual([
      [`slack:${EVE}`, 'build', 'acme/ops'],
      [`slack:${ALICE}`, 'release', 'acme/ops'],
    ]);

    await command('quick v2.10', RELEASE_MANAGER);
    const release = await newBuildAfter(before);
    expect(release).toMatchObject({
      tag: 'v2.10',
      sha: shas.main,
      requester: `slack:${RELEASE_MANAGER}`,
    });
    await finished(release.id);
  });

  it.each([
    ['stauts', 'Unknown command `stauts`: did you mean `/build status`?'],
    ['canel 42', 'Unknown command `canel`: did you mean `/build cancel 42`?'],
    ['arm46 main', 'Unknown target `arm46`'],
    ['quick pr-999', 'Pull request #999 does not exist in acme/ops.'],
    ['help', '`/build list [mine]`'],
    ['status 999999', 'There is no build #999999.'],
    ['status', ':white_check_mark: Build #'],
    ['list mine', 'Your recent builds'],
    ['list', 'Recent builds of acme/ops'],
    ['workers', 'slots busy'],
    ['targets', '*acme/ops* at `main` has 3 targets:'],
    ['targets acme/nope', 'acme/nope does not exist on GitHub'],
    ['retry 999999', 'There is no build #999999.'],
  ])('answers `/build %s` to the requester alone', async (text, expected) => {
    const answer = await answerTo(await command(text, RELEASE_MANAGER));
    expect(answer.text + JSON.stringify(answer)).toContain(expected);
    expect(answer.response_type).toBe('ephemeral');
  });

  it("`/build use` sets the channel's repository for everyone", async () => {
    const answer = await answerTo(await command('use acme/other'));
    expect(answer.response_type).toBe('in_channel');
    expect(answer.text).toContain("set this channel's repository to *acme/other*");
    expect((await answerTo(await command('list'))).text).toBe(
      'Recent builds of acme/other: none yet. Start one with `/build <targets> <ref>`.',
    );
    const before = (await newestBuild())!.id;
    await command('quick main');
    const build = await newBuildAfter(before);
    expect(
      (await stack.db.select().from(builds).where(eq(builds.id, build.id)))[0]!.repoId,
    ).not.toBe((await stack.db.select().from(builds).where(eq(builds.id, before)))[0]!.repoId);
    await finished(build.id);
    await command('use acme/ops');
  });

  it('no duplicates: a retried command makes one build; old or forged signatures get 401', async () => {
    const before = (await newestBuild())!.id;
    const triggerId = `${Date.now()}.retried`;
    await command('quick main', ALICE, { triggerId });
    const build = await newBuildAfter(before);
    const retry = await command('quick main', ALICE, {
      triggerId,
      headers: { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' },
    });
    expect((await answerTo(retry)).text).toBe(`That request is already build #${build.id}.`);
    const ts = await buildMessageTs(build.id);
    await finished(build.id);
    // Reused: the first story's build of this commit made it, so it is posted finished.
    expect(await finalHistory(ts, 'succeeded')).toEqual(['post:succeeded']);
    // Its requester is still told.
    await waitFor('the direct message', () => directMessagesTo(ALICE, build.id)[0]);
    expect((await newestBuild())!.id).toBe(build.id);
    expect(
      stack.slack.calls.filter(
        (call) =>
          call.method === 'chat.postMessage' &&
          String(call.args.text).includes(`Build #${build.id} `),
      ),
    ).toHaveLength(1);

    const fields = { command: '/build', text: 'quick main', channel_id: CHANNEL, user_id: ALICE };
    const stale = await postSlashCommand(stack.slackUrl, SIGNING_SECRET, fields, {
      timestamp: Math.floor(Date.now() / 1000) - 6 * 60,
    });
    expect(stale.status).toBe(401);
    const forged = await postSlashCommand(stack.slackUrl, SIGNING_SECRET, fields, { forge: true });
    expect(forged.status).toBe(401);
    expect((await newestBuild())!.id).toBe(build.id);
  });

  it('acknowledges within 3 s while PostgreSQL is stuck, then answers through response_url', async () => {
    const before = (await newestBuild())!.id;
    const locker = postgres(stack.databaseUrl, { max: 1, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const locked = new Promise<void>((resolve) => {
      void locker.begin(async (sql) => {
        await sql`lock table builds in access exclusive mode`;
        resolve();
        await released;
      });
    });
    await locked;
    try {
      const build = await command('quick main');
      const list = await command('list mine');
      // Acknowledged empty after the bounded wait; nothing answered yet.
      expect(build.reply.body).toBe('');
      expect(list.reply.body).toBe('');
      expect(build.reply.elapsedMs).toBeGreaterThanOrEqual(900);
      release();
      expect((await answerTo(list)).text).toContain('Your recent builds');
      const made = await newBuildAfter(before);
      await buildMessageTs(made.id);
      await finished(made.id);
    } finally {
      release();
      await locker.end();
    }
  });

  it('the Home tab shows my builds, running builds and the fleet; direct messages can be turned off', async () => {
    const opened = await postEvent(
      stack.slackUrl,
      SIGNING_SECRET,
      eventEnvelope(appHomeOpenedEvent(ALICE)),
    );
    expect(opened.status).toBe(200);
    const home = await waitFor('the Home tab', () =>
      stack.slack.calls.find(
        (call) => call.method === 'views.publish' && call.args.user_id === ALICE,
      ),
    );
    const view = JSON.stringify(home.args.view);
    expect(view).toContain('Your recent builds');
    expect(view).toContain('Running now');
    expect(view).toContain(stack.worker.workerId);
    const mine = await stack.db
      .select()
      .from(builds)
      .where(eq(builds.requester, `slack:${ALICE}`))
      .orderBy(desc(builds.id))
      .limit(1);
    expect(view).toContain(`|#${mine[0]!.id}>`);
    expect(view).toContain('"value":"off"');

    const publishes = () =>
      stack.slack.calls.filter(
        (call) => call.method === 'views.publish' && call.args.user_id === ALICE,
      );
    const count = publishes().length;
    await postBlockAction(
      stack.slackUrl,
      SIGNING_SECRET,
      blockActionPayload({
        userId: ALICE,
        channelId: `D${ALICE.slice(1)}`,
        messageTs: '0',
        actionId: 'home_direct_messages',
        value: 'off',
        responseUrl: stack.slack.responseUrl(randomUUID()),
      }),
    );
    const republished = await waitFor('the Home tab again', () => publishes()[count]);
    expect(JSON.stringify(republished.args.view)).toContain('are *off*');

    const before = (await newestBuild())!.id;
    await command('quick main --force'); // built anew, not reused
    const build = await newBuildAfter(before);
    const ts = await buildMessageTs(build.id);
    expect((await finished(build.id)).state).toBe('succeeded');
    expectHistory(await finalHistory(ts, 'succeeded'), 'succeeded');
    await waitFor('the build reported', async () => {
      const [row] = await stack.db.select().from(builds).where(eq(builds.id, build.id));
      return row?.reportedState === 'succeeded' ? true : undefined;
    });
    expect(directMessagesTo(ALICE, build.id)).toEqual([]);
  });

  it('a channel the bot is not in: the build still runs, and the requester is told where to follow it', async () => {
    const elsewhere = slackSession({
      url: stack.slackUrl,
      signingSecret: SIGNING_SECRET,
      slack: stack.slack,
      channelId: PRIVATE_CHANNEL,
      userId: ALICE,
    });
    const before = (await newestBuild())!.id;
    const answer = await elsewhere.answerTo(
      await elsewhere.command('quick main in acme/ops --force'),
    );
    const build = await newBuildAfter(before);
    expect(answer.text).toBe(
      `Build #${build.id} is queued, but I cannot post in this channel (not_in_channel): invite me with \`/invite @Crossdock\`, and follow it at ${stack.portalUrl}/builds/${build.id}.`,
    );
    expect((await finished(build.id)).state).toBe('succeeded');
  });

  it('shows nothing of a repository to someone who may not build it, and records each refusal', async () => {
    const build = (await newestBuild())!;
    for (const [text, action] of [
      [`status ${build.id}`, 'status'],
      ['targets acme/ops', 'targets'],
      ['arm46 main', 'build'],
    ] as const) {
      const answer = await answerTo(await command(text, EVE));
      expect(answer.text).toBe(
        'You may not build acme/ops. <!subteam^S0DEVS> may: ask one of them.',
      );
      const [refusal] = await stack.db.select().from(refusals).orderBy(desc(refusals.id)).limit(1);
      expect(refusal).toMatchObject({ actor: `slack:${EVE}`, action, repo: 'acme/ops' });
    }
    const list = await answerTo(await command('list', EVE));
    expect(list.text).toBe(
      'Recent builds of acme/ops: none yet. Start one with `/build <targets> <ref>`.',
    );
  });
});

describe('Slack in Socket Mode', () => {
  it('takes commands over the WebSocket, with no HTTP endpoint', async () => {
    const stack = await startStack({ workerSlots: 1 });
    const scratch = mkdtempSync(join(tmpdir(), 'crossdock-socket-'));
    const bot = await startBotServer(
      {
        slack: {
          signingSecret: '',
          botToken: 'xoxb-test-token',
          botId: 'B0CROSSDOCK',
          botUserId: 'U0CROSSDOCK',
          apiUrl: stack.slack.apiUrl,
          channelRepos: { [CHANNEL]: 'acme/hello' },
          socketMode: true,
          appToken: 'xapp-test-token',
        },
        github: {
          apiUrl: stack.github.url,
          token: 'ghs_testtoken',
          cloneBaseUrl: stack.github.cloneBaseUrl,
        },
        gitCacheDir: join(scratch, 'git'),
        portalUrl: stack.portalUrl,
        host: '127.0.0.1',
        port: 0,
        databaseUrl: stack.databaseUrl,
        logLevel: 'warn',
      },
      { db: stack.db, log: createLogger({ name: 'socket-mode', level: 'warn' }) },
    );
    try {
      makeHelloRepo(stack.gitRoot, 'acme', 'hello');
      await stack.slack.socket.connected();
      const payload = (text: string) => ({
        token: 'deprecated',
        team_id: 'T0TEAM',
        channel_id: CHANNEL,
        user_id: ALICE,
        command: '/build',
        text,
        response_url: stack.slack.responseUrl(`socket-${text}`),
        trigger_id: `${Date.now()}.${randomUUID()}`,
        api_app_id: 'A0CROSSDOCK',
      });
      const help = await stack.slack.socket.send('slash_commands', payload('help'));
      expect(JSON.stringify(help.payload)).toContain('/build workers');
      const build = await stack.slack.socket.send('slash_commands', payload('docs main'));
      expect(build.payload ?? {}).toEqual({});
      const answer = await waitFor('the answer', () =>
        stack.slack.calls.find((call) => call.key === 'socket-docs main'),
      );
      expect(String(answer.args.text)).toContain('Unknown target `docs`');
      const http = await fetch(`${bot.url}/slack/events`, { method: 'POST', body: 'x' });
      expect(http.status).toBe(404);
      expect(stack.slack.unexpected).toEqual([]);
    } finally {
      await bot.close();
      await stack.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
