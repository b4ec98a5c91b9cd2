// Benchmark 7: Slack acknowledgement latency of `/build`, against a bare Hono handler.
//
// Bot: startBotServer in this process with its default settings (ackWaitMs 0: acknowledge at
// once, answer later), a scratch database, a fake GitHub over a real git repository (acme/hello:
// Debian's GNU hello with a recipe whose target `quick` runs `true`) and the fake Slack Web API.
// Each command is `/build quick main`, form-encoded and signed as Slack signs it
// (test/support/slack.ts), with its own trigger_id, user and response_url; every one makes a new
// build. No worker runs: the builds stay queued, so the machine does only the bot's work (and
// the fakes'): Bolt verifies the signature, the handler acknowledges, and then, after the
// acknowledgement, the bot reads the branch and the recipe from the fake GitHub, stores the
// build and posts its channel message. Baseline: a bare Hono app on @hono/node-server in the
// same process, `POST /slack/events` answering 200 with no body, sent the same signed requests.
//
// Latency of one command = from just before the request is sent until its response is read
// whole (postSlashCommand's elapsedMs: fetch through Node's undici client with keep-alive, the
// same client for both), in milliseconds; a status other than 200 is an error. 200 commands per
// batch, 20 in flight at once (20 senders over a shared queue). The two take turns in batches:
// ROUNDS rounds of one batch each, the first in the round alternating (baseline, bot; bot,
// baseline; ...), and the samples of each system are pooled. A bot batch ends only once every
// one of its builds' channel messages has been posted, and each batch is followed by SETTLE_MS
// of quiet, so neither system's batch carries the other's leftover work.
//
// For information, the outcome latency of the bot's commands: from sending until the fake Slack
// received the build's channel message (chat.postMessage "Build #<id> …"). The fake records its
// calls but not when, so its `calls.push` is wrapped to note the time of each one.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startBotServer } from '../bot/server';
import { createLogger } from '../core/logger';
import { parseRecipe } from '../core/recipe';
import { connect } from '../db/client';
import { startFakeGitHub } from '../test/fakes/github-api';
import { startFakeSlackApi, type SlackCall } from '../test/fakes/slack-api';
import { postSlashCommand } from '../test/support/slack';
import { CHANNEL, GITHUB_TOKEN, SIGNING_SECRET, makeHelloRepo } from '../test/support/stack';
import {
  cpuBusyPercent,
  createBenchDatabase,
  openDatabase,
  progress,
  round,
  sleep,
  summarize,
  waitUntil,
  writeResult,
} from './support';

const NAME = 'slack-ack';
/** Commands per batch: the 200. */
const COMMANDS = 200;
/** Commands in flight at once: the 20. */
const CONCURRENCY = 20;
/** Commands per system before measuring (connections, JIT, prepared statements), discarded. */
const WARMUP = 20;
/** Batches per system. */
const ROUNDS = Number(process.env.BENCH_SLACK_ACK_ROUNDS ?? 3);
/** Quiet after each batch, in ms (after the bot's channel messages were posted). */
const SETTLE_MS = 500;
/** How long a bot batch's channel messages may take to be posted, in ms. */
const OUTCOME_TIMEOUT_MS = 60_000;
/** Target: the bot's p99 acknowledgement at most this many ms. */
const TARGET_P99_MS = 50;
/** The recipe of acme/hello: one quick target. */
const RECIPE = [
  'targets:',
  '  quick:',
  '    platform: linux/amd64',
  '    image: crossdock/builder-debian:bookworm',
  '    script: "true"',
  '',
].join('\n');

/** A system under test: where its Slack endpoint is. */
interface System {
  name: 'baseline' | 'bot';
  url: string;
}

/** One command as sent: who sent it, when (performance.now(), ms), how it was answered. */
interface Sample {
  userId: string;
  sentAt: number;
  ackMs: number;
  /** The HTTP status; 0 when the request failed without one. */
  status: number;
}

/** The bare baseline: Hono on @hono/node-server at 127.0.0.1, a free port. */
async function startBaseline(): Promise<{ url: string; close: () => Promise<void> }> {
  const app = new Hono();
  app.post('/slack/events', (c) => c.body(null, 200));
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/slack/events`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let sequence = 0;

/**
 * Sends `count` signed `/build quick main` commands to `system`, CONCURRENCY at once, each with
 * its own trigger_id, user and response_url (of the fake Slack at `responseUrl`).
 */
async function sendBatch(
  system: System,
  count: number,
  responseUrl: (key: string) => string,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  let next = 0;
  const sender = async () => {
    while (next < count) {
      next += 1;
      sequence += 1;
      const userId = `U0BENCH${sequence}`;
      const fields = {
        command: '/build',
        text: 'quick main',
        channel_id: CHANNEL,
        user_id: userId,
        user_name: `bench${sequence}`,
        trigger_id: `${Date.now()}.${sequence}.${randomBytes(16).toString('hex')}`,
        response_url: responseUrl(`${system.name}-${sequence}`),
      };
      const sentAt = performance.now();
      try {
        const reply = await postSlashCommand(system.url, SIGNING_SECRET, fields);
        samples.push({ userId, sentAt, ackMs: reply.elapsedMs, status: reply.status });
      } catch {
        samples.push({ userId, sentAt, ackMs: performance.now() - sentAt, status: 0 });
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, sender));
  return samples;
}

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  parseRecipe(RECIPE); // fails here, not in the bot, if the recipe is wrong
  const database = await createBenchDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'crossdock-bench-'));
  const closers: (() => Promise<void>)[] = [];
  try {
    const gitRoot = join(dir, 'github');
    const recipeFile = join(dir, 'crossdock.yml');
    writeFileSync(recipeFile, RECIPE);
    makeHelloRepo(gitRoot, 'acme', 'hello', recipeFile);
    const github = await startFakeGitHub({ root: gitRoot, token: GITHUB_TOKEN });
    closers.push(() => github.close());
    const slack = await startFakeSlackApi();
    closers.push(() => slack.close());

    // When each build's channel message reached the fake: build id → performance.now(); and
    // the bot commands answered through their response_url instead (a refusal or an error).
    const postedAt = new Map<number, number>();
    const answeredLater: SlackCall[] = [];
    const push = slack.calls.push.bind(slack.calls);
    slack.calls.push = (...calls: SlackCall[]) => {
      const now = performance.now();
      for (const call of calls) {
        const buildId = /^Build #(\d+) /.exec(String(call.args.text ?? ''))?.[1];
        if (call.method === 'chat.postMessage' && buildId) postedAt.set(Number(buildId), now);
        if (call.method === 'response_url' && call.key?.startsWith('bot-')) answeredLater.push(call);
      }
      return push(...calls);
    };

    const db = connect(database.url); // the pool bot/main.ts opens
    closers.push(() => db.$client.end());
    const bot = await startBotServer(
      {
        slack: {
          signingSecret: SIGNING_SECRET,
          botToken: 'xoxb-bench-token',
          botId: 'B0CROSSDOCK',
          botUserId: 'U0CROSSDOCK',
          apiUrl: slack.apiUrl,
          channelRepos: { [CHANNEL]: 'acme/hello' },
        },
        github: { apiUrl: github.url, token: GITHUB_TOKEN, cloneBaseUrl: github.cloneBaseUrl },
        gitCacheDir: join(dir, 'bot-git'),
        portalUrl: 'http://127.0.0.1:9',
        host: '127.0.0.1',
        port: 0,
      },
      { db, log: createLogger({ name: 'bench', level: 'warn' }) },
    );
    closers.push(() => bot.close());
    const baseline = await startBaseline();
    closers.push(() => baseline.close());
    const systems: System[] = [
      { name: 'baseline', url: baseline.url },
      { name: 'bot', url: `${bot.url}/slack/events` },
    ];

    const botCommands: Sample[] = [];
    /** Sends one batch; for the bot, waits until each of its builds' messages is posted. */
    const batch = async (system: System, count: number) => {
      const samples = await sendBatch(system, count, slack.responseUrl);
      if (system.name === 'bot') {
        botCommands.push(...samples);
        const expected = botCommands.filter((sample) => sample.status === 200).length;
        await waitUntil(
          `${expected} channel messages`,
          async () => (postedAt.size + answeredLater.length >= expected ? true : undefined),
          OUTCOME_TIMEOUT_MS,
        );
      }
      await sleep(SETTLE_MS);
      return samples;
    };

    progress(NAME, `warming up (${WARMUP} commands each)`);
    for (const system of systems) await batch(system, WARMUP);
    const warmupCommands = botCommands.length;

    progress(NAME, `${ROUNDS} rounds of ${COMMANDS} commands each, ${CONCURRENCY} in flight`);
    const pooled = { baseline: [] as Sample[], bot: [] as Sample[] };
    const rounds: Record<string, unknown>[] = [];
    for (let index = 0; index < ROUNDS; index += 1) {
      const order = index % 2 === 0 ? systems : [...systems].reverse();
      const entry: Record<string, unknown> = { first: order[0]!.name };
      for (const system of order) {
        const samples = await batch(system, COMMANDS);
        pooled[system.name].push(...samples);
        const ackMs = summarize(samples.map((sample) => sample.ackMs));
        entry[system.name] = { p50: ackMs.p50, p99: ackMs.p99, max: ackMs.max };
        progress(NAME, `round ${index + 1} ${system.name}: p50 ${ackMs.p50} ms, p99 ${ackMs.p99} ms`);
      }
      rounds.push(entry);
    }

    // Every bot command made one build, and each build's message was posted.
    const check = openDatabase(database.url, 1);
    const rows = await check.$client<{ id: string; requester: string }[]>`
      select id, requester from builds`;
    await check.$client.end();
    const buildOf = new Map(rows.map((row) => [row.requester, Number(row.id)]));
    const outcomeMs = pooled.bot.flatMap((sample) => {
      const posted = postedAt.get(buildOf.get(`slack:${sample.userId}`) ?? -1);
      return posted === undefined ? [] : [posted - sample.sentAt];
    });

    if (rows.length !== botCommands.length || postedAt.size !== botCommands.length)
      progress(
        NAME,
        `WARNING: ${botCommands.length} bot commands made ${rows.length} builds and ${postedAt.size} messages`,
      );
    if (process.env.DEBUG_DUMP) writeFileSync(process.env.DEBUG_DUMP, JSON.stringify({ pooled, outcomeMs }));
    const summary = (samples: Sample[]) => ({
      ackMs: summarize(samples.map((sample) => sample.ackMs)),
      errors: samples.filter((sample) => sample.status !== 200).length,
    });
    const theirs = summary(pooled.baseline);
    const ours = summary(pooled.bot);
    const ratio = {
      p50: round(ours.ackMs.p50 / theirs.ackMs.p50),
      p99: round(ours.ackMs.p99 / theirs.ackMs.p99),
    };
    const pass = ours.errors === 0 && ours.ackMs.p99 <= TARGET_P99_MS;
    await writeResult(
      NAME,
      {
        description:
          'Slack acknowledgement latency of signed /build slash commands, request sent → response read, 20 in flight, against a bare Hono handler in the same process; no worker runs, so builds stay queued; milliseconds',
        parameters: {
          commandsPerBatch: COMMANDS,
          concurrency: CONCURRENCY,
          rounds: ROUNDS,
          warmupPerSystem: WARMUP,
          settleMs: SETTLE_MS,
          command: '/build quick main (each its own trigger_id, user and response_url)',
          bot: 'startBotServer with default settings (ackWaitMs 0), fake GitHub over a real git repository, fake Slack Web API, log level warn',
          baseline: 'Hono on @hono/node-server: POST /slack/events → 200, no body',
          client: "Node's fetch (undici, keep-alive), the same for both",
        },
        baseline: theirs,
        bot: ours,
        ratio,
        rounds,
        outcome: {
          description:
            'Bot commands, request sent → the build’s channel message received by the fake Slack (chat.postMessage); milliseconds',
          outcomeMs: summarize(outcomeMs),
          commands: botCommands.length,
          warmupCommands,
          buildsCreated: rows.length,
          messagesPosted: postedAt.size,
          /** Bot commands answered through response_url (a refusal or an error), not a build. */
          answeredThroughResponseUrl: answeredLater.map((call) => String(call.args.text)),
        },
        fakes: {
          slackUnexpectedCalls: slack.unexpected.length,
          slackViolations: slack.violations.length,
          githubUnexpectedCalls: github.unexpected.length,
        },
        verdicts: [
          {
            target: `p99 acknowledgement ${ours.ackMs.p99} ms ≤ ${TARGET_P99_MS} ms for ${COMMANDS} signed slash commands at ${CONCURRENCY} concurrent (bare Hono p99 ${theirs.ackMs.p99} ms, ratio ${ratio.p99}; ${ours.errors} errors)`,
            pass,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    for (const close of closers.reverse()) await close().catch((error) => console.error(error));
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
