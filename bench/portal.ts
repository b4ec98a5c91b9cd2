// Benchmark 8: the portal under load. Its commit and release pages against a bare Hono hello
// route served by the same server, and its artifact downloads against a direct GET of the same
// object from MinIO.
//
// Data: a scratch database seeded in bulk SQL (INSERT … SELECT generate_series) with BUILDS
// builds over four public repositories, each of JOB_TARGETS.length succeeded jobs (amd64, arm64,
// armv7, riscv64, windows-amd64) with two artifacts each: 10,000 builds, 50,000 jobs and 100,000
// artifacts. A build is of a pull request (half of them), of a branch (main or release/2.x) or of
// a tag (one in 20, a release). One build in five is of the commit of the build before it: a pull
// request built again, a pull request's commit built on main, main rebuilt, a tag pushed on a
// commit main built. They span the last 13 days, within the default retention, so none is due for
// deletion. Then ANALYZE. The pages measured are those of a commit built twice (for its pull
// request, then on main) and of a tag, both from the middle of the data (around build
// BUILDS / 2), not the newest.
//
// Server: createPortalApp as portal/main.ts wires it by default once S3_PUBLIC_ENDPOINT is set
// (a pool of 10 connections, log level warn, no sign-in, page cache of 1 s, downloads redirected
// to presigned URLs valid 300 s), on @hono/node-server at 127.0.0.1 in this process.
// The same server answers `GET /__hello` from a bare Hono app (c.text('hello')): the server's
// fetch hands that one path to it and every other request to the portal's own fetch, so the
// portal is served exactly as in production and the baseline runs none of the portal's
// middleware. For information, `GET /__hello-in-portal` is the
// same route added to the portal's app: it runs all of the portal's middleware (`app.use`:
// request log, secure headers, CSRF check, viewer; no cookie or token is sent, so no query).
//
// Client: autocannon in a child process of this file (`--client`), so that the load generator
// does not share the server's event loop (it still shares the machine's two cores).
// PAGE_CONNECTIONS connections, no pipelining. Every page request says what Chromium accepts
// (BROWSER_HEADERS: Accept-Encoding gzip, deflate, br, zstd), as release managers' browsers do,
// so pages come Brotli-coded from the page cache; for information, the same pages are measured
// without Accept-Encoding, as curl asks (`…Plain`). One discarded warm-up round (WARMUP_SECONDS per
// route), then ROUNDS rounds of SECONDS per route, the order reversed every other round; each
// route's rounds are pooled: requests/s = responses ÷ seconds, and the latency percentiles are of
// every response's latency (autocannon's `response` event, request written → response read, in
// milliseconds). After each batch the server answers what the client left in flight, then
// SETTLE_MS of quiet, so that no batch carries another's leftover work. A non-2xx answer or a
// connection error fails the run: it would mean error pages were measured. For information, the
// CPU time per request of this process (the server), the client, PostgreSQL and MinIO.
//
// Downloads: an object of DOWNLOAD_BYTES random bytes in a scratch bucket, recorded as an extra
// artifact of a seeded branch build's amd64 job. The portal's `/artifacts/:id/download/<name>`
// (findArtifactToDownload, then a 302 to a presigned URL, which the page cache keeps for its 1 s
// as portal/app.tsx DOWNLOAD_ROUTES says; followed on the same keep-alive agent) against a
// presigned GET of the same object from MinIO (presignedGetObject), in DOWNLOAD_ROUNDS rounds of
// DOWNLOAD_SECONDS per route, by the same client in the child:
// DOWNLOAD_CONNECTIONS loops of Node's http.get over keep-alive connections, each reading an
// answer to its last byte before sending the next (autocannon spent about 280 ms of CPU per
// 8 MiB answer and measured itself). Throughput = bytes received ÷ seconds. For information, the
// same URL of a second portal app in stream mode (PORTAL_DOWNLOADS=stream, the default without a
// public store endpoint: statObject, getObject streamed through the portal), of a third in
// redirect mode without a page cache (every download looked up and signed), and the bare Hono
// app's `GET /__redirect`, a 302 to the direct URL (the least any redirect costs).
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent as HttpAgent, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { serve } from '@hono/node-server';
import autocannon from 'autocannon';
import { Hono } from 'hono';
import { createLogger } from '../core/logger';
import { artifactKey } from '../core/storage';
import { portalUrls } from '../core/urls';
import { connect } from '../db/client';
import { createPortalApp } from '../portal/app';
import { createTestBucket } from '../test/support/services';
import {
  cpuBusyPercent,
  cpuTicks,
  createBenchDatabase,
  deferred,
  openDatabase,
  progress,
  round,
  sleep,
  summarize,
  waitUntil,
  withTimeout,
  writeResult,
} from './support';

const NAME = 'portal';
const ROOT = new URL('../', import.meta.url).pathname;
/** Builds seeded: the issue's 10,000. */
const BUILDS = 10_000;
/**
 * Seconds between two seeded builds: 10,000 builds over 13.3 days, within the default retention
 * (14 days for pull requests, 30 for branches: core/retention.ts), so that no build's artifacts
 * are due for deletion, as after the cleanup has run.
 */
const BUILD_INTERVAL_SECONDS = 115;
/** Artifacts per job: with 5 jobs a build, the issue's 100,000 artifacts. */
const ARTIFACTS_PER_JOB = 2;
/** Connections of the page load: the issue's 50. */
const PAGE_CONNECTIONS = 50;
/** Connections of the download load. */
const DOWNLOAD_CONNECTIONS = Number(process.env.BENCH_PORTAL_DOWNLOAD_CONNECTIONS ?? 4);
/** Size of the downloaded object, in bytes (8 MiB). */
const DOWNLOAD_BYTES = 8 * 2 ** 20;
/** Seconds of load per route and round. */
const SECONDS = Number(process.env.BENCH_PORTAL_SECONDS ?? 3);
/** Measured rounds; each route gets ROUNDS × SECONDS in all. */
const ROUNDS = Number(process.env.BENCH_PORTAL_ROUNDS ?? 4);
/**
 * Rounds and seconds per route and round of the downloads: many short rounds, the portal's and
 * the direct download one after the other, so that the machine's slow and fast spells (a direct
 * download swung from 74 to 151 requests/s between two 3 s rounds) fall on both alike.
 */
const DOWNLOAD_ROUNDS = Number(process.env.BENCH_PORTAL_DOWNLOAD_ROUNDS ?? 16);
const DOWNLOAD_SECONDS = Number(process.env.BENCH_PORTAL_DOWNLOAD_SECONDS ?? 1);
/** Seconds of load per route in the discarded warm-up round (JIT, plans, connections). */
const WARMUP_SECONDS = Number(process.env.BENCH_PORTAL_WARMUP_SECONDS ?? 3);
/** The query that sends a download URL to the portal app in stream mode (for information). */
const STREAM_QUERY = '?bench-stream';
/** The query that sends a download URL to a portal app without a page cache (for information). */
const UNCACHED_QUERY = '?bench-uncached';
/** What a browser (Chromium) says it accepts: the pages are measured as browsers ask for them. */
const BROWSER_HEADERS = { 'accept-encoding': 'gzip, deflate, br, zstd' };
/** Quiet after each batch once the server has answered every request, in ms. */
const SETTLE_MS = 200;
/** Targets: each page ≥ this × the hello route's requests/s … */
const TARGET_PAGE_RATIO = 0.4;
/** … with a p99 latency of at most this many ms. */
const TARGET_P99_MS = 50;
/** Target: portal downloads ≥ this × a direct GET from MinIO, in bytes/s. */
const TARGET_DOWNLOAD_RATIO = 0.9;

/**
 * The targets every seeded build has one succeeded job of: the OCI platform, the toolchain modes
 * the recipe allows and the one it ran in, its container's platform, the builder image's tag, and
 * how its two artifacts are named: the archive's platform part, and the Debian architecture of
 * its package (none for Windows, which makes a .zip and an .msi).
 */
const JOB_TARGETS = [
  {
    target: 'amd64',
    platform: 'linux/amd64',
    toolchains: '{native}',
    toolchain: 'native',
    runPlatform: 'linux/amd64',
    image: 'bookworm',
    archive: 'linux-amd64',
    debianArch: 'amd64',
  },
  {
    target: 'arm64',
    platform: 'linux/arm64',
    toolchains: '{cross,emulated}',
    toolchain: 'cross',
    runPlatform: 'linux/amd64',
    image: 'bookworm',
    archive: 'linux-arm64',
    debianArch: 'arm64',
  },
  {
    target: 'armv7',
    platform: 'linux/arm/v7',
    toolchains: '{cross}',
    toolchain: 'cross',
    runPlatform: 'linux/amd64',
    image: 'bookworm',
    archive: 'linux-armv7',
    debianArch: 'armhf',
  },
  {
    target: 'riscv64',
    platform: 'linux/riscv64',
    toolchains: '{emulated}',
    toolchain: 'emulated',
    runPlatform: 'linux/riscv64',
    image: 'bookworm-riscv64',
    archive: 'linux-riscv64',
    debianArch: 'riscv64',
  },
  {
    target: 'windows-amd64',
    platform: 'windows/amd64',
    toolchains: '{cross}',
    toolchain: 'cross',
    runPlatform: 'linux/amd64',
    image: 'bookworm-mingw',
    archive: 'windows-amd64',
    debianArch: '',
  },
];

/** `text` as an SQL string literal (for the seed's constants). */
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;

/**
 * The seed, one script: repositories 1–4; builds 1…BUILDS, build i of commit c = i − ⌊i / 5⌋
 * (so builds 5k and 5k − 1 share a commit) in repository 1 + ⌊c / 5⌋ mod 4; i mod 20 = 0 a tag,
 * 1–9 a pull request, 10–19 a branch; JOB_TARGETS.length jobs per build, job id (build − 1) × 5 +
 * k; ARTIFACTS_PER_JOB artifacts per job, id (job − 1) × 2 + m. Everything succeeded; a build
 * every BUILD_INTERVAL_SECONDS, the newest requested 10 minutes ago.
 */
function seedSql(): string {
  const targets = JOB_TARGETS.map(
    (t, index) =>
      `(${index + 1}, ${[t.target, t.platform, t.toolchains, t.toolchain, t.runPlatform, `crossdock/builder-debian:${t.image}`, t.archive, t.debianArch].map(literal).join(', ')})`,
  ).join(',\n      ');
  const jobsPerBuild = JOB_TARGETS.length;
  return `
    create temporary table bench_targets (k int, target text, platform text, toolchains text,
      toolchain text, run_platform text, image text, archive text, debian_arch text);
    insert into bench_targets values
      ${targets};

    insert into repos (id, owner, name, clone_url, source, github_installation_id)
    select id, owner, name, 'https://github.com/' || owner || '/' || name || '.git', 'github', 4242
    from (values (1, 'acme', 'widget'), (2, 'acme', 'gadget'), (3, 'acme', 'hello'),
                 (4, 'tools', 'crossdock-cli')) as r(id, owner, name);

    insert into builds (id, repo_id, sha, ref, pull_number, branch, tag, trigger, requester, state,
      recipe_digest, trusted, request_key, notify, reported_state, created_at, started_at,
      finished_at)
    select i, repo_id, sha,
      case kind when 'tag' then tag when 'pull' then 'pr-' || pull else branch end,
      case when kind = 'pull' then pull end,
      case kind when 'tag' then null when 'pull' then 'feature/' || pull else branch end,
      case when kind = 'tag' then tag end,
      trigger, requester, 'succeeded', md5('recipe ' || repo_id),
      kind <> 'pull' or pull % 10 <> 7,
      'bench:' || i,
      case trigger
        when 'slack' then jsonb_build_object('slack',
          jsonb_build_object('channel', 'C0BENCH', 'ts', i || '.000100'))
        when 'api' then '{}'::jsonb
        else '{"github": {"installationId": 4242}}'::jsonb end,
      'succeeded', created_at, created_at + interval '3 seconds',
      created_at + interval '4 minutes' + (i % 60) * interval '1 second'
    from (
      select i, c, 1 + (c / 5) % 4 as repo_id,
        md5('commit ' || c) || substr(md5('commit tail ' || c), 1, 8) as sha,
        case when i % 20 = 0 then 'tag' when i % 20 < 10 then 'pull' else 'branch' end as kind,
        'v' || (1 + i / 2000) || '.' || (i / 20) % 100 || '.0' as tag,
        100 + c / 3 as pull,
        case when c % 11 = 0 then 'release/2.x' else 'main' end as branch,
        case when i % 20 = 0 then 'tag' when i % 20 < 10 then (array['label', 'comment'])[1 + i % 2]
             when i % 3 = 0 then 'slack' else 'api' end as trigger,
        case when i % 20 = 0 then 'github:release-manager'
             when i % 20 < 10 then 'github:dev' || c % 17
             when i % 3 = 0 then 'slack:U0DEV' || c % 13 else 'api:ci' end as requester,
        now() - interval '10 minutes'
          - (${BUILDS} - i) * interval '${BUILD_INTERVAL_SECONDS} seconds' as created_at
      from generate_series(1, ${BUILDS}) as i, lateral (select i - i / 5 as c) as commit_of
    ) as b;

    insert into jobs (id, build_id, target, platform, toolchains, toolchain, run_platform, image,
      spec, state, attempt, worker_id, image_digest, exit_code, priority, created_at, started_at,
      finished_at)
    select (b.id - 1) * ${jobsPerBuild} + t.k, b.id, t.target, t.platform, t.toolchains::text[],
      t.toolchain, t.run_platform, t.image,
      jsonb_build_object(
        'script', './build.sh --platform=' || t.platform || ' --package --checksum',
        'images', jsonb_build_object(t.toolchain, t.image),
        'artifacts', jsonb_build_array('*.tar.gz', '*.deb', '*.zip', '*.msi'),
        'env', '{}'::jsonb, 'network', false, 'timeoutMinutes', 30),
      'succeeded', 1, 'worker-' || replace(t.run_platform, '/', '-') || '-1',
      'sha256:' || md5(t.image) || md5(t.image || ' digest'), 0,
      case when b.tag is not null then 30 when b.pull_number is not null then 20 else 10 end,
      b.created_at, b.started_at + t.k * interval '1 second',
      b.finished_at - (${jobsPerBuild} - t.k) * interval '5 seconds'
    from builds as b cross join bench_targets as t;

    insert into artifacts (id, job_id, name, object_key, size, sha256, created_at)
    select (j.id - 1) * ${ARTIFACTS_PER_JOB} + m, j.id, f.name,
      'artifacts/' || r.owner || '/' || r.name || '/' || b.sha || '/' || j.target || '/' || j.id
        || '.1/' || f.name,
      200000 + abs(hashtext(j.id || '/' || m)) % 20000000,
      encode(sha256(convert_to(f.name || '/' || j.id, 'UTF8')), 'hex'),
      j.finished_at
    from jobs as j
      join builds as b on b.id = j.build_id
      join repos as r on r.id = b.repo_id
      join bench_targets as t on t.target = j.target
      cross join generate_series(1, ${ARTIFACTS_PER_JOB}) as m
      cross join lateral (
        select coalesce(ltrim(b.tag, 'v'), '0.0.0-git' || substr(b.sha, 1, 7)) as version
      ) as v
      cross join lateral (
        select case
          when m = 1 then r.name || '-' || v.version || '-' || t.archive
            || case when t.debian_arch = '' then '.zip' else '.tar.gz' end
          when t.debian_arch = '' then r.name || '-' || v.version || '-x64.msi'
          else r.name || '_' || v.version || '_' || t.debian_arch || '.deb' end as name
      ) as f;

    select setval(pg_get_serial_sequence('repos', 'id'), (select max(id) from repos));
    select setval(pg_get_serial_sequence('builds', 'id'), (select max(id) from builds));
    select setval(pg_get_serial_sequence('jobs', 'id'), (select max(id) from jobs));
    select setval(pg_get_serial_sequence('artifacts', 'id'), (select max(id) from artifacts));
    drop table bench_targets;
  `;
}

/** What the benchmark requests, picked from the seeded data. */
interface Picked {
  /** A commit built for its pull request and then on main after the merge, near build BUILDS / 2. */
  commit: { owner: string; repo: string; sha: string; buildIds: number[]; artifactNames: string[] };
  /** A tag around build BUILDS / 2 (a release, not the newest). */
  release: { owner: string; repo: string; tag: string; buildId: number; artifactNames: string[] };
  /** A branch build whose amd64 job gets the download's artifact. */
  download: { owner: string; repo: string; sha: string; jobId: number };
}

/**
 * Seeds the database at `url` (seedSql), checks the counts, runs ANALYZE, and picks the commit,
 * the tag and the download's job. Returns them and the seed's time in seconds.
 */
async function seed(url: string): Promise<{ picked: Picked; seconds: number; counts: object }> {
  const db = openDatabase(url, 1);
  const sql = db.$client;
  try {
    const started = performance.now();
    await sql.unsafe(seedSql());
    await sql`analyze`;
    const seconds = round((performance.now() - started) / 1000);
    const [counts] = await sql<{ builds: number; jobs: number; artifacts: number }[]>`
      select (select count(*)::int from builds) as builds, (select count(*)::int from jobs) as jobs,
             (select count(*)::int from artifacts) as artifacts`;
    const expected = { builds: BUILDS, jobs: BUILDS * JOB_TARGETS.length };
    if (
      counts!.builds !== expected.builds ||
      counts!.jobs !== expected.jobs ||
      counts!.artifacts !== expected.jobs * ARTIFACTS_PER_JOB
    )
      throw new Error(`seeded ${JSON.stringify(counts)}, not ${JSON.stringify(expected)}`);

    const middle = BUILDS / 2;
    const [commit] = await sql<{ owner: string; repo: string; sha: string; ids: string[] }[]>`
      select r.owner, r.name as repo, b.sha, array_agg(b.id order by b.id) as ids
      from builds b join repos r on r.id = b.repo_id
      where b.id >= ${middle} and b.tag is null
      group by r.owner, r.name, b.sha
      having count(*) = 2 and bool_or(b.pull_number is null) and bool_or(b.pull_number is not null)
      order by min(b.id) limit 1`;
    const [release] = await sql<{ owner: string; repo: string; tag: string; id: string }[]>`
      select r.owner, r.name as repo, b.tag, b.id from builds b join repos r on r.id = b.repo_id
      where b.id >= ${middle} and b.tag is not null order by b.id limit 1`;
    const [download] = await sql<{ owner: string; repo: string; sha: string; jobId: string }[]>`
      select r.owner, r.name as repo, b.sha, j.id as "jobId"
      from builds b join repos r on r.id = b.repo_id join jobs j on j.build_id = b.id
      where b.id >= ${BUILDS / 4} and b.pull_number is null and b.tag is null
        and j.target = 'amd64'
      order by b.id limit 1`;
    if (!commit || !release || !download) throw new Error('the seed lacks a commit, tag or build');
    const artifactNames = async (buildIds: number[]) =>
      (
        await sql<{ name: string }[]>`
          select a.name from artifacts a join jobs j on j.id = a.job_id
          where j.build_id in ${sql(buildIds)} order by a.name`
      ).map((row) => row.name);
    const commitBuildIds = commit.ids.map(Number);
    return {
      seconds,
      counts: counts!,
      picked: {
        commit: {
          owner: commit.owner,
          repo: commit.repo,
          sha: commit.sha,
          buildIds: commitBuildIds,
          artifactNames: await artifactNames(commitBuildIds),
        },
        release: {
          owner: release.owner,
          repo: release.repo,
          tag: release.tag,
          buildId: Number(release.id),
          artifactNames: await artifactNames([Number(release.id)]),
        },
        download: { ...download, jobId: Number(download.jobId) },
      },
    };
  } finally {
    await sql.end();
  }
}

/**
 * One load for the client's child: `connections` connections on `url` for `seconds`, sent by
 * autocannon (the pages) or by a loop of Node's http.get (the downloads: autocannon spent about
 * 280 ms of CPU on each 8 MiB answer, so it measured itself, at about 24 MiB/s).
 */
interface LoadOrder {
  url: string;
  connections: number;
  seconds: number;
  client: 'autocannon' | 'http';
  /** Request headers to send (autocannon only). */
  headers?: Record<string, string>;
  /** http only: follow a 302 (to its Location, on the same agent). */
  followRedirects?: boolean;
}

/** What the client measured of one load. */
interface LoadResult {
  /** Responses received, of any status. */
  responses: number;
  /** The load's run time, in seconds. */
  seconds: number;
  /** Bytes received: headers and bodies for autocannon, bodies for http. */
  bytes: number;
  non2xx: number;
  /** Connection errors, timeouts included. */
  errors: number;
  timeouts: number;
  /** Each response's latency (request written → response read), in ms. */
  latenciesMs: number[];
  /** autocannon's own latency percentiles (its histogram, whole milliseconds); none for http. */
  autocannonLatencyMs?: { p50: number; p99: number };
  /** The client's CPU time over the load, in ms. */
  clientCpuMs: number;
}

type ToClient = { type: 'load'; order: LoadOrder } | { type: 'close' };
type FromClient = { type: 'ready' } | { type: 'result'; result: LoadResult } | { type: 'closed' };

/** Runs one load with autocannon (no pipelining, 10 s timeout) and returns what it measured. */
async function runAutocannon(order: LoadOrder): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const cpuBefore = process.cpuUsage();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: order.url,
        connections: order.connections,
        duration: order.seconds,
        timeout: 10,
        headers: order.headers ?? {},
      },
      (error, done) => (error ? reject(error as Error) : resolve(done)),
    );
    instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
      latenciesMs.push(responseTimeMs);
    });
  });
  const cpu = process.cpuUsage(cpuBefore);
  return {
    responses: latenciesMs.length,
    seconds: result.duration,
    bytes: result.throughput.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latenciesMs,
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/**
 * Runs one load as `order.connections` loops of http.get over keep-alive connections, each
 * reading every answer to its end (counting its bytes, keeping none) before it sends the next;
 * a latency runs from the request until the body's last byte, in ms.
 */
async function runHttpLoop(order: LoadOrder): Promise<LoadResult> {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: order.connections });
  const latenciesMs: number[] = [];
  let bytes = 0;
  let non2xx = 0;
  let errors = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + order.seconds * 1000;
  /** GETs `url`; with `order.followRedirects`, a 302's Location too, timed from `sent`. */
  const getOnce = (url = order.url, sent = performance.now()) =>
    new Promise<void>((resolve) => {
      const request = httpGet(url, { agent }, (response) => {
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (order.followRedirects && status === 302 && location) {
          response.resume();
          response.on('end', () => void getOnce(new URL(location, url).href, sent).then(resolve));
          return;
        }
        if (status < 200 || status > 299) non2xx += 1;
        response.on('data', (chunk: Buffer) => (bytes += chunk.length));
        response.on('end', () => {
          latenciesMs.push(performance.now() - sent);
          resolve();
        });
        response.on('error', () => {
          errors += 1;
          resolve();
        });
      });
      request.setTimeout(10_000, () => request.destroy(new Error('timed out')));
      request.on('error', () => {
        errors += 1;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: order.connections }, async () => {
      while (performance.now() < deadline) await getOnce();
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  return {
    responses: latenciesMs.length,
    seconds,
    bytes,
    non2xx,
    errors,
    timeouts: 0,
    latenciesMs,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/** Runs `order` with the client it names. */
const runLoad = (order: LoadOrder) =>
  order.client === 'autocannon' ? runAutocannon(order) : runHttpLoop(order);

/** The client's side (`--client`): runs the loads it is sent, one at a time, until told to close. */
function serveClient(): void {
  const send = (message: FromClient) => process.send!(message);
  process.on('message', async (message: ToClient) => {
    if (message.type === 'close') {
      send({ type: 'closed' });
      process.disconnect();
      return;
    }
    send({ type: 'result', result: await runLoad(message.order) });
  });
  // If the bench's process goes away, so does its client.
  process.once('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

/** The client's child process as this process talks to it. */
interface Client {
  load(order: LoadOrder): Promise<LoadResult>;
  close(): Promise<void>;
}

/** Starts this file with `--client` as a child; resolves once it is ready. */
async function forkClient(): Promise<Client> {
  const child: ChildProcess = fork(new URL(import.meta.url).pathname, ['--client'], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let waiting: ((message: FromClient) => void) | undefined;
  const next = <T extends FromClient['type']>(type: T, what: string, timeoutMs: number) => {
    const reply = deferred<Extract<FromClient, { type: T }>>();
    waiting = (message) => {
      if (message.type === type) reply.resolve(message as Extract<FromClient, { type: T }>);
    };
    return withTimeout(reply.promise, timeoutMs, `the client’s child: ${what}`);
  };
  child.on('message', (message: FromClient) => waiting?.(message));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await Promise.race([
    next('ready', 'start', 30_000),
    exited.then(() => {
      throw new Error('the client’s child exited before it was ready');
    }),
  ]);
  return {
    async load(order) {
      const reply = next('result', `load of ${order.seconds} s`, (order.seconds + 60) * 1000);
      child.send({ type: 'load', order } satisfies ToClient);
      return (await reply).result;
    },
    async close() {
      if (child.exitCode === null) {
        const closed = next('closed', 'close', 10_000).catch(() => undefined);
        child.send({ type: 'close' } satisfies ToClient);
        await closed;
      }
      if (child.exitCode === null) child.kill();
      await exited;
    },
  };
}

/**
 * CPU time so far of each process of this machine whose name (/proc/<pid>/comm) is `name`, by
 * pid, in ms: user + system from /proc/<pid>/stat, in clock ticks of 10 ms (CLK_TCK 100 on
 * Linux).
 */
function processCpuMs(name: string): Map<string, number> {
  const byPid = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== name) continue;
      // The fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byPid.set(pid, (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // It exited meanwhile.
    }
  }
  return byPid;
}

/**
 * The CPU time, in ms, that the processes of `after` spent since `before` (both processCpuMs): a
 * process that started in between counts whole, one that exited in between is not counted (the
 * PostgreSQL backends of the portal's pool live through the run).
 */
function cpuMsSince(before: Map<string, number>, after: Map<string, number>): number {
  let ms = 0;
  for (const [pid, total] of after) ms += total - (before.get(pid) ?? 0);
  return ms;
}

/** A route under load: its name and URL (the presigned one is never printed or recorded). */
interface Route {
  name: string;
  url: string;
  connections: number;
  client: LoadOrder['client'];
  headers?: Record<string, string>;
  followRedirects?: boolean;
}

/** The server's side of a batch: wait until it has answered every request it was sent. */
type Settle = () => Promise<void>;

/** One measured batch of a route. */
interface Batch {
  load: LoadResult;
  /** This process's CPU time over the batch (the server: Node, not PostgreSQL or MinIO), in ms. */
  serverCpuMs: number;
  /** CPU time of PostgreSQL's processes and of MinIO over the batch, in ms. */
  postgresCpuMs: number;
  minioCpuMs: number;
  /** How busy both CPUs were over the batch, in % (everything: server, client, PostgreSQL, MinIO). */
  machineCpuBusyPercent: number;
}

/**
 * Runs one load of `route` for `seconds` through `client`, then waits until the server has
 * answered what the client left in flight when it stopped (`settle`), so that no batch carries
 * another's leftover work. Fails the run on a non-2xx answer or a connection error (the numbers
 * would be of error pages).
 */
async function measure(
  client: Client,
  route: Route,
  seconds: number,
  settle: Settle,
): Promise<Batch> {
  const cpuBefore = process.cpuUsage();
  const ticksBefore = cpuTicks();
  const postgresBefore = processCpuMs('postgres');
  const minioBefore = processCpuMs('minio');
  const load = await client.load({ ...route, seconds });
  const cpu = process.cpuUsage(cpuBefore);
  const ticksAfter = cpuTicks();
  const postgresCpuMs = cpuMsSince(postgresBefore, processCpuMs('postgres'));
  const minioCpuMs = cpuMsSince(minioBefore, processCpuMs('minio'));
  await settle();
  if (load.non2xx > 0 || load.errors > 0)
    throw new Error(
      `${route.name}: ${load.non2xx} non-2xx answers and ${load.errors} connection errors (${load.timeouts} timeouts) in ${load.responses} responses`,
    );
  return {
    load,
    serverCpuMs: (cpu.user + cpu.system) / 1000,
    postgresCpuMs,
    minioCpuMs,
    machineCpuBusyPercent: round(
      (100 * (ticksAfter.busy - ticksBefore.busy)) / (ticksAfter.total - ticksBefore.total),
      1,
    ),
  };
}

/** A route's measured batches pooled: requests/s, latency, bytes/s, CPU per request. */
function pool(batches: Batch[]) {
  const responses = batches.reduce((sum, batch) => sum + batch.load.responses, 0);
  const seconds = batches.reduce((sum, batch) => sum + batch.load.seconds, 0);
  const bytes = batches.reduce((sum, batch) => sum + batch.load.bytes, 0);
  return {
    responses,
    seconds: round(seconds),
    requestsPerSecond: round(responses / seconds),
    bytesPerSecond: Math.round(bytes / seconds),
    latencyMs: summarize(batches.flatMap((batch) => batch.load.latenciesMs)),
    /** autocannon's own percentiles, per round. */
    autocannonLatencyMs: batches.map((batch) => batch.load.autocannonLatencyMs),
    requestsPerSecondPerRound: batches.map((batch) =>
      round(batch.load.responses / batch.load.seconds),
    ),
    non2xx: batches.reduce((sum, batch) => sum + batch.load.non2xx, 0),
    errors: batches.reduce((sum, batch) => sum + batch.load.errors, 0),
    /** The server's (this process's) CPU time per response, in ms. */
    serverCpuMsPerRequest: round(
      batches.reduce((sum, batch) => sum + batch.serverCpuMs, 0) / responses,
      3,
    ),
    /** PostgreSQL's CPU time per response (all its processes), in ms. */
    postgresCpuMsPerRequest: round(
      batches.reduce((sum, batch) => sum + batch.postgresCpuMs, 0) / responses,
      3,
    ),
    /** MinIO's CPU time per response, in ms. */
    minioCpuMsPerRequest: round(
      batches.reduce((sum, batch) => sum + batch.minioCpuMs, 0) / responses,
      3,
    ),
    /** The client's CPU time per response, in ms. */
    clientCpuMsPerRequest: round(
      batches.reduce((sum, batch) => sum + batch.load.clientCpuMs, 0) / responses,
      3,
    ),
    machineCpuBusyPercent: batches.map((batch) => batch.machineCpuBusyPercent),
  };
}

/**
 * Runs `routes` through `client`: one discarded warm-up round of `plan.warmupSeconds` per route,
 * then `plan.rounds` rounds of `plan.seconds` per route, the order reversed every other round,
 * each batch settled (`settle`) before the next. Returns each route's batches, by name.
 */
async function rounds(
  client: Client,
  routes: Route[],
  plan: { warmupSeconds: number; rounds: number; seconds: number },
  settle: Settle,
): Promise<Map<string, Batch[]>> {
  const batches = new Map<string, Batch[]>(routes.map((route) => [route.name, []]));
  for (const route of routes) await measure(client, route, plan.warmupSeconds, settle);
  for (let index = 0; index < plan.rounds; index += 1) {
    const order = index % 2 === 0 ? routes : [...routes].reverse();
    for (const route of order) {
      const batch = await measure(client, route, plan.seconds, settle);
      batches.get(route.name)!.push(batch);
      const latency = summarize(batch.load.latenciesMs);
      progress(
        NAME,
        `round ${index + 1} ${route.name}: ${round(batch.load.responses / batch.load.seconds)} requests/s, p50 ${latency.p50} ms, p99 ${latency.p99} ms, CPUs ${batch.machineCpuBusyPercent} % busy`,
      );
    }
  }
  return batches;
}

/**
 * One GET of `url` with `headers`, a 302 followed: its status, its body as sent (still coded)
 * and decoded, and its Content-Encoding.
 */
async function fetchOnce(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; sent: Buffer; body: Buffer; encoding: string | undefined }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) =>
    httpGet(url, { headers }, resolve).once('error', reject),
  );
  const location = response.headers.location;
  if (response.statusCode === 302 && location) {
    response.resume();
    return fetchOnce(location, headers);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  const sent = Buffer.concat(chunks);
  const encoding = response.headers['content-encoding'];
  const body =
    encoding === 'br' ? brotliDecompressSync(sent) : encoding === 'gzip' ? gunzipSync(sent) : sent;
  return { status: response.statusCode ?? 0, sent, body, encoding };
}

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const database = await createBenchDatabase();
  const bucket = await createTestBucket();
  const closers: (() => Promise<void>)[] = [];
  try {
    progress(
      NAME,
      `seeding ${BUILDS} builds, ${BUILDS * JOB_TARGETS.length} jobs and ${BUILDS * JOB_TARGETS.length * ARTIFACTS_PER_JOB} artifacts`,
    );
    const { picked, seconds: seedSeconds, counts } = await seed(database.url);
    progress(NAME, `seeded and analysed in ${seedSeconds} s`);

    // The download's object and its artifact row, on a seeded branch build's amd64 job.
    const content = randomBytes(DOWNLOAD_BYTES);
    const fileName = `${picked.download.repo}-bench-${DOWNLOAD_BYTES}.bin`;
    const objectKey = artifactKey({
      owner: picked.download.owner,
      repo: picked.download.repo,
      sha: picked.download.sha,
      target: 'amd64',
      jobId: picked.download.jobId,
      attempt: 1,
      file: fileName,
    });
    const sha256 = createHash('sha256').update(content).digest('hex');
    await bucket.client.putObject(bucket.storage.bucket, objectKey, content, content.length);
    const db = connect(database.url); // the pool portal/main.ts opens
    closers.push(() => db.$client.end());
    const [artifactRow] = await db.$client<{ id: string }[]>`
      insert into artifacts (job_id, name, object_key, size, sha256)
      values (${picked.download.jobId}, ${fileName}, ${objectKey}, ${content.length}, ${sha256})
      returning id`;
    const artifactId = Number(artifactRow!.id);

    // One server: /__hello and /__redirect from a bare Hono app, everything else from the
    // portal's own fetch. /__redirect answers a 302 to a presigned URL of the download's object
    // signed once: what a redirect costs at least, for information.
    const directUrl = await bucket.client.presignedGetObject(
      bucket.storage.bucket,
      objectKey,
      3600,
    );
    const hello = new Hono();
    hello.get('/__hello', (c) => c.text('hello'));
    hello.get('/__redirect', (c) => c.redirect(directUrl, 302));
    // The portal needs its base URL, known once the server listens. `streaming` is a second
    // portal app, in stream mode (PORTAL_DOWNLOADS=stream), for URLs ending in STREAM_QUERY;
    // `uncached` a third, in redirect mode without a page cache, for URLs ending in
    // UNCACHED_QUERY.
    type Fetch = (request: Request) => Response | Promise<Response>;
    const handler: { portal?: Fetch; streaming?: Fetch; uncached?: Fetch } = {};
    const server = serve({
      fetch: (request: Request) =>
        request.url.endsWith('/__hello') || request.url.endsWith('/__redirect')
          ? hello.fetch(request)
          : request.url.endsWith(STREAM_QUERY)
            ? handler.streaming!(request)
            : request.url.endsWith(UNCACHED_QUERY)
              ? handler.uncached!(request)
              : handler.portal!(request),
      hostname: '127.0.0.1',
      port: 0,
    }) as Server;
    await new Promise((resolve) => server.once('listening', resolve));
    // Requests the server has not finished answering (a download's until its last byte is sent).
    let inFlight = 0;
    server.on('request', (_request, response) => {
      inFlight += 1;
      response.once('close', () => (inFlight -= 1));
    });
    const settle: Settle = async () => {
      await waitUntil('the server to answer every request', async () =>
        inFlight === 0 ? true : undefined,
      );
      await sleep(SETTLE_MS);
    };
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          // The pool closes after the server: no request may be left waiting for it.
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const deps = {
      db,
      storage: bucket.client,
      bucket: bucket.storage.bucket,
      portalUrl: base,
      log: createLogger({ name: 'portal', level: 'warn' }),
      // As portal/main.ts wires it by default (PORTAL_PAGE_CACHE_MS=1000).
      pageCache: { ttlMs: 1000 },
    };
    // As portal/main.ts wires it by default once S3_PUBLIC_ENDPOINT is set (here MinIO's
    // loopback address, which the client reaches): downloads redirect, presigned for 300 s.
    const presign = { storage: bucket.client, seconds: 300 };
    const portal = createPortalApp({ ...deps, presign });
    portal.get('/__hello-in-portal', (c) => c.text('hello'));
    handler.portal = (request) => portal.fetch(request);
    const streaming = createPortalApp(deps);
    handler.streaming = (request) => streaming.fetch(request);
    const uncached = createPortalApp({ ...deps, presign, pageCache: undefined });
    handler.uncached = (request) => uncached.fetch(request);

    const { commit, release } = picked;
    const commitUrl = portalUrls.commit(base, commit.owner, commit.repo, commit.sha);
    const releaseUrl = portalUrls.release(base, release.owner, release.repo, release.tag);
    const page = (name: string, url: string, headers?: Record<string, string>): Route => ({
      name,
      url,
      connections: PAGE_CONNECTIONS,
      client: 'autocannon',
      ...(headers ? { headers } : {}),
    });
    const pages: Route[] = [
      page('hello', `${base}/__hello`, BROWSER_HEADERS),
      page('helloInPortal', `${base}/__hello-in-portal`, BROWSER_HEADERS),
      page('commitPage', commitUrl, BROWSER_HEADERS),
      page('releasePage', releaseUrl, BROWSER_HEADERS),
      // For information: as curl asks, without Accept-Encoding.
      page('commitPagePlain', commitUrl),
      page('releasePagePlain', releaseUrl),
    ];
    const downloadUrl = portalUrls.artifactDownload(base, artifactId, fileName);
    // The measured pair next to each other, in every round's order and its reverse.
    const downloads: Route[] = [
      {
        name: 'portalDownload',
        url: downloadUrl,
        connections: DOWNLOAD_CONNECTIONS,
        client: 'http',
        followRedirects: true,
      },
      {
        name: 'directDownload',
        url: directUrl,
        connections: DOWNLOAD_CONNECTIONS,
        client: 'http',
      },
      {
        name: 'bareRedirectDownload',
        url: `${base}/__redirect`,
        connections: DOWNLOAD_CONNECTIONS,
        client: 'http',
        followRedirects: true,
      },
      {
        name: 'portalUncachedDownload',
        url: `${downloadUrl}${UNCACHED_QUERY}`,
        connections: DOWNLOAD_CONNECTIONS,
        client: 'http',
        followRedirects: true,
      },
      {
        name: 'portalStreamDownload',
        url: `${downloadUrl}${STREAM_QUERY}`,
        connections: DOWNLOAD_CONNECTIONS,
        client: 'http',
      },
    ];

    // Each route answers what it should before it is measured: pages with their content, coded
    // as asked (Brotli for a browser's Accept-Encoding), downloads with the object's bytes.
    const pageBytes: Record<string, { sent: number; decoded: number; encoding: string }> = {};
    for (const route of pages) {
      const { status, sent, body, encoding } = await fetchOnce(route.url, route.headers);
      const text = body.toString('utf8');
      const expected = route.name.startsWith('commitPage')
        ? [commit.sha, ...commit.artifactNames]
        : route.name.startsWith('releasePage')
          ? [release.tag, ...release.artifactNames]
          : ['hello'];
      const missing = expected.filter((part) => !text.includes(part));
      if (status !== 200 || missing.length > 0)
        throw new Error(`${route.name} answered ${status} without ${missing.join(', ')}`);
      const expectedEncoding = route.headers && !route.name.startsWith('hello') ? 'br' : undefined;
      if (encoding !== expectedEncoding)
        throw new Error(
          `${route.name} answered in ${encoding ?? 'identity'}, not ${expectedEncoding ?? 'identity'}`,
        );
      pageBytes[route.name] = {
        sent: sent.length,
        decoded: body.length,
        encoding: encoding ?? 'identity',
      };
    }
    for (const route of downloads) {
      const { status, body } = await fetchOnce(route.url);
      const digest = createHash('sha256').update(body).digest('hex');
      if (status !== 200 || digest !== sha256)
        throw new Error(`${route.name} answered ${status} with ${body.length} other bytes`);
    }

    const client = await forkClient();
    closers.push(() => client.close());
    progress(
      NAME,
      `pages: ${PAGE_CONNECTIONS} connections, ${WARMUP_SECONDS} s warm-up and ${ROUNDS} rounds of ${SECONDS} s per route`,
    );
    const pageBatches = await rounds(
      client,
      pages,
      { warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS, seconds: SECONDS },
      settle,
    );
    progress(
      NAME,
      `downloads of ${DOWNLOAD_BYTES} bytes: ${DOWNLOAD_CONNECTIONS} connections, ${DOWNLOAD_ROUNDS} rounds of ${DOWNLOAD_SECONDS} s`,
    );
    const downloadBatches = await rounds(
      client,
      downloads,
      {
        warmupSeconds: Math.min(WARMUP_SECONDS, 2),
        rounds: DOWNLOAD_ROUNDS,
        seconds: DOWNLOAD_SECONDS,
      },
      settle,
    );

    const measured = (name: string) => pool(pageBatches.get(name) ?? downloadBatches.get(name)!);
    const helloResult = measured('hello');
    const helloInPortal = measured('helloInPortal');
    const commitPage = measured('commitPage');
    const releasePage = measured('releasePage');
    const commitPagePlain = measured('commitPagePlain');
    const releasePagePlain = measured('releasePagePlain');
    const portalDownload = measured('portalDownload');
    const portalStreamDownload = measured('portalStreamDownload');
    const portalUncachedDownload = measured('portalUncachedDownload');
    const bareRedirectDownload = measured('bareRedirectDownload');
    const directDownload = measured('directDownload');
    const toHello = (result: { requestsPerSecond: number }) =>
      round(result.requestsPerSecond / helloResult.requestsPerSecond, 3);
    const toDirect = (result: { bytesPerSecond: number }) =>
      round(result.bytesPerSecond / directDownload.bytesPerSecond, 3);
    const ratio = {
      commitPage: toHello(commitPage),
      releasePage: toHello(releasePage),
      commitPagePlain: toHello(commitPagePlain),
      releasePagePlain: toHello(releasePagePlain),
      helloInPortal: toHello(helloInPortal),
      download: toDirect(portalDownload),
      streamDownload: toDirect(portalStreamDownload),
      uncachedDownload: toDirect(portalUncachedDownload),
      bareRedirectDownload: toDirect(bareRedirectDownload),
      /** For information: the download's ratio in each round, against the round's direct one. */
      downloadPerRound: portalDownload.requestsPerSecondPerRound.map((perSecond, index) =>
        round(perSecond / directDownload.requestsPerSecondPerRound[index]!, 3),
      ),
    };
    const mibPerSecond = (bytesPerSecond: number) => round(bytesPerSecond / 2 ** 20, 1);
    const pageVerdicts = (name: string, page: typeof commitPage, pageRatio: number) => [
      {
        target: `${name} ${page.requestsPerSecond} requests/s ≥ ${TARGET_PAGE_RATIO} × the bare Hono hello route's ${helloResult.requestsPerSecond} at ${PAGE_CONNECTIONS} connections (ratio ${pageRatio})`,
        pass: pageRatio >= TARGET_PAGE_RATIO,
      },
      {
        target: `${name} p99 ${page.latencyMs.p99} ms ≤ ${TARGET_P99_MS} ms at ${PAGE_CONNECTIONS} connections`,
        pass: page.latencyMs.p99 <= TARGET_P99_MS,
      },
    ];

    await writeResult(
      NAME,
      {
        description:
          'The portal’s commit and release pages at 50 connections (autocannon, in a child process) against a bare Hono hello route on the same server, with 10,000 builds and 100,000 artifacts seeded; and an 8 MiB artifact downloaded through the portal against a presigned GET of the same object from MinIO; requests/s, milliseconds, bytes/s',
        parameters: {
          builds: BUILDS,
          jobsPerBuild: JOB_TARGETS.length,
          artifactsPerJob: ARTIFACTS_PER_JOB,
          targets: JOB_TARGETS.map(({ target }) => target),
          pageConnections: PAGE_CONNECTIONS,
          downloadConnections: DOWNLOAD_CONNECTIONS,
          downloadBytes: DOWNLOAD_BYTES,
          warmupSecondsPerRoute: WARMUP_SECONDS,
          rounds: ROUNDS,
          secondsPerRouteAndRound: SECONDS,
          downloadRounds: DOWNLOAD_ROUNDS,
          downloadSecondsPerRouteAndRound: DOWNLOAD_SECONDS,
          server:
            'createPortalApp (pool of 10 connections, log level warn) on @hono/node-server in this process; GET /__hello from a bare Hono app on the same server',
          client:
            'in a child process: autocannon 9 for the pages (no pipelining), loops of Node’s http.get over keep-alive connections for the downloads',
          pageRequestHeaders: BROWSER_HEADERS,
          baseline:
            'GET /__hello: a bare Hono app answering c.text("hello"), none of the portal’s middleware',
          plainPages:
            'for information: the same pages without Accept-Encoding (as curl asks), sent as they are',
          directDownload: 'a presigned GET (presignedGetObject) of the same object from MinIO',
          portalDownload:
            'GET /artifacts/:id/download/<name> of the portal as configured by default once S3_PUBLIC_ENDPOINT is set (PORTAL_DOWNLOADS=redirect, presign 300 s, page cache 1 s): a 302 to a presigned URL, kept by the page cache for 1 s, followed on the same keep-alive agent; a latency runs until the last byte',
          bareRedirectDownload:
            'for information: GET /__redirect of the bare Hono app, a 302 to the direct URL signed once, followed: the least a redirect costs',
          portalUncachedDownload:
            'for information: the same URL of a portal app in redirect mode without a page cache (PORTAL_PAGE_CACHE_MS=0): every download is looked up and signed',
          portalStreamDownload:
            'for information: the same URL of a portal app in stream mode (PORTAL_DOWNLOADS=stream, the default without S3_PUBLIC_ENDPOINT): the bytes pass through the portal',
        },
        seed: {
          ...counts,
          seconds: seedSeconds,
          commit: { ...commit, artifactNames: commit.artifactNames.length },
          release: { ...release, artifactNames: release.artifactNames.length },
          downloadArtifact: { id: artifactId, name: fileName, size: DOWNLOAD_BYTES, objectKey },
        },
        /** Body sizes of the pages as sent and decoded, in bytes, and their coding. */
        pageBytes,
        pages: {
          hello: helloResult,
          helloInPortal,
          commitPage,
          releasePage,
          commitPagePlain,
          releasePagePlain,
        },
        downloads: {
          portal: { ...portalDownload, mibPerSecond: mibPerSecond(portalDownload.bytesPerSecond) },
          /** For information: the portal in stream mode (PORTAL_DOWNLOADS=stream). */
          portalStream: {
            ...portalStreamDownload,
            mibPerSecond: mibPerSecond(portalStreamDownload.bytesPerSecond),
          },
          /** For information: a bare Hono app's 302 to the direct URL, followed. */
          bareRedirect: {
            ...bareRedirectDownload,
            mibPerSecond: mibPerSecond(bareRedirectDownload.bytesPerSecond),
          },
          /** For information: redirect mode without the page cache (PORTAL_PAGE_CACHE_MS=0). */
          portalUncached: {
            ...portalUncachedDownload,
            mibPerSecond: mibPerSecond(portalUncachedDownload.bytesPerSecond),
          },
          direct: { ...directDownload, mibPerSecond: mibPerSecond(directDownload.bytesPerSecond) },
        },
        ratio,
        verdicts: [
          ...pageVerdicts('commit page', commitPage, ratio.commitPage),
          ...pageVerdicts('release page', releasePage, ratio.releasePage),
          {
            target: `download through the portal (redirect, the default with a public store endpoint) ${mibPerSecond(portalDownload.bytesPerSecond)} MiB/s ≥ ${TARGET_DOWNLOAD_RATIO} × a direct GET from MinIO's ${mibPerSecond(directDownload.bytesPerSecond)} MiB/s (${DOWNLOAD_BYTES} bytes, ${DOWNLOAD_CONNECTIONS} connections; ratio ${ratio.download})`,
            pass: ratio.download >= TARGET_DOWNLOAD_RATIO,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  } finally {
    for (const close of closers.reverse()) await close().catch((error) => console.error(error));
    await database.drop();
    await bucket.remove().catch((error) => console.error(error));
  }
}

if (process.argv[2] === '--client') serveClient();
else await main();
