import { Hono, type Context } from 'hono';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import type { Child } from 'hono/jsx';
import { secureHeaders } from 'hono/secure-headers';
import type { Client } from 'minio';
import type { Logger } from '../core/logger';
import { CHECKSUMS_FILE } from '../core/attestation';
import { DEFAULT_RETENTION_POLICY, type RetentionPolicy } from '../core/retention';
import type { Database } from '../db/client';
import { findArtifactToDownload, getArtifact, type Artifact } from '../db/queries/artifacts';
import {
  getBuild,
  listBuildsForCommit,
  listJobsOfBuilds,
  listRecentBuilds,
} from '../db/queries/builds';
import { getJobWithBuild } from '../db/queries/jobs';
import { readLog } from '../db/queries/logs';
import { explainQueuedJobs, listWorkers, queueDepth, workerState } from '../db/queries/workers';
import {
  branchStatus,
  findDownloadBuild,
  findDownloads,
  listCommitsOfRepo,
  listReleases,
  listRepos,
  listTagsOfRepo,
  listRefsOfRepo,
  listBuildsOfRef,
  latestOfBranchPerTarget,
  searchBuilds,
  type DownloadSelector,
} from '../db/queries/portal';
import { findRepo, type Repo } from '../db/queries/repos';
import { expiriesOf } from '../db/queries/retention';
import { accountRoutes } from './account';
import { ArtifactPage, BranchPage, PullPage } from './ref-views';
import {
  canSee,
  createOidcSignIn,
  viewerMiddleware,
  type OidcOptions,
  type PortalEnv,
} from './auth';
import { portalUrls } from '../core/urls';
import {
  buildSummaryToJson,
  buildToJson,
  isFinished,
  loadBuildDetails,
  retentionToJson,
} from './build-details';
import {
  ArtifactObjectMissing,
  artifactResponse,
  attachmentDisposition,
  fileNameInPath,
  presignedArtifactUrl,
} from './download';
import { openApiDocument } from './openapi';
import { releaseFiles, releaseToJson, sha256Sums, searchHitToJson } from './release';
import { statusBadge } from './badge';
import { releasesFeed } from './feed';
import { logToHtml } from './log-html';
import { assetCacheControl, STATIC_ASSETS } from './assets';
import { createPageCache, type PageCacheOptions } from './page-cache';
import { streamLiveLog, type LiveLogOptions } from './live-log';
import { queueToJson, workerToJson } from './fleet';
import { logToJson, parseLogQuery, type LogQuery } from './job-log';
import {
  BadRequestPage,
  BuildPage,
  CommitPage,
  ReleasePage,
  SearchPage,
  ErrorPage,
  HomePage,
  LogPage,
  NotFoundPage,
  PageRequestContext,
  RepoPage,
  WorkersPage,
} from './views';

/** The routes whose answers the page cache keeps (when configured). */
const CACHED_ROUTES = [
  '/',
  '/builds/:id',
  '/artifacts/:id',
  '/:owner/:repo',
  '/:owner/:repo/commit/:sha',
  '/:owner/:repo/releases/:tag',
  '/:owner/:repo/branches/:branch',
  '/:owner/:repo/pull/:number',
  '/api/v1/builds/:id',
  '/api/v1/artifacts/:id',
  '/api/v1/repos/*',
];

/**
 * The download routes. With presigned redirects, their 302 answers are kept like pages (the same
 * TTL, but at most a tenth of a link's life), so that a burst of downloads of one file costs one
 * lookup and one signature per period; streamed bytes are never kept. Downloads answered from
 * the cache are not in the request log, like kept pages.
 */
const DOWNLOAD_ROUTES = [
  '/artifacts/:id/download/*',
  '/:owner/:repo/releases/:tag/download/*',
  '/:owner/:repo/commit/:sha/:target/*',
  '/:owner/:repo/branches/:branch/latest/:target/*',
];

/** What the portal needs; `main.ts` wires the real ones, tests pass test services. */
export interface PortalDeps {
  db: Database;
  /** Client of the object store holding the artifacts. */
  storage: Client;
  bucket: string;
  /** The portal's public base URL, e.g. https://builds.example.com; every link starts with it. */
  portalUrl: string;
  log: Logger;
  /** Sign-in for private repositories (docs/portal.md "Access"); omitted: API tokens only. */
  oidc?: OidcOptions | undefined;
  /** How long a browser session lasts, in hours; default 168 (a week). */
  sessionHours?: number;
  /**
   * Answer downloads with a 302 to a presigned GET URL instead of streaming them: signed by
   * `storage`, a client for the object store's public endpoint, valid for `seconds`.
   */
  presign?: { storage: Client; seconds: number } | undefined;
  /** Serve rendered pages again for a short while (portal/page-cache.ts); omitted: no cache. */
  pageCache?: PageCacheOptions | undefined;
  /** How long artifacts are kept (docs/retention.md), for pages to say; default the defaults. */
  retentionPolicy?: RetentionPolicy;
  /** How live logs are streamed (polling period, longest stream); defaults in live-log.ts. */
  liveLog?: LiveLogOptions;
}

/** A numeric id from a path parameter: only ASCII digits, at most 15 of them; else undefined. */
export function parseId(text: string | undefined): number | undefined {
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** A full commit sha (40 hex digits, any case) in lower case; else undefined. */
export function parseSha(text: string | undefined): string | undefined {
  return text !== undefined && /^[0-9a-f]{40}$/i.test(text) ? text.toLowerCase() : undefined;
}

/**
 * The portal: HTML pages, the JSON API under /api/v1 and artifact downloads. URL forms are those
 * of core/urls.ts `portalUrls` and portal/urls.ts. Unknown pages, ids and names answer 404; a
 * malformed query parameter answers 400 naming it; a failure is logged and answers 500 without
 * details. HTML is rendered with hono/jsx, which escapes every value, and served with a
 * Content-Security-Policy that allows no scripts. JSON errors are `{error, message}` with
 * `error` one of `bad-request`, `not-found`, `internal`. Routes (docs/portal.md):
 *
 * - `GET /`, `/:owner/:repo`, `/:owner/:repo/commit/:sha`, `/builds/:id`: repositories, commits
 *   and builds; queued jobs say why they wait.
 * - `GET /workers`: the fleet and the queue per run platform.
 * - `GET /jobs/:id/log[?attempt=N]`, `/jobs/:id/log.txt[?attempt=N]`: a job's log (latest
 *   attempt by default) as a page, which reloads itself while the job is queued or running, or
 *   as the raw text.
 * - `GET /artifacts/:id/download/<name>`: an artifact's bytes (HEAD, Range, If-None-Match).
 * - Stable download URLs (core/urls.ts, db/queries/portal.ts `findDownloads`):
 *   `/:owner/:repo/releases/latest/download/<name>`, `/:owner/:repo/releases/:tag/download/<name>`,
 *   `/:owner/:repo/commit/:sha/:target/<name>` and
 *   `/:owner/:repo/branches/:branch/latest/:target/<name>` (tag and branch percent-encoded).
 * - `GET /api/v1/repos/:owner/:repo/commits/:sha/builds`: `{repo, sha, builds}` (buildToJson).
 * - `GET /api/v1/workers`: `{workers}` (workerToJson); `GET /api/v1/queue`: `{queue}`
 *   (queueToJson).
 * - `GET /api/v1/jobs/:id/log?attempt=N&from=SEQ`: to tail a log (logToJson).
 */
export function createPortalApp(deps: PortalDeps): Hono<PortalEnv> {
  const { db, storage, bucket, log } = deps;
  const base = deps.portalUrl.replace(/\/+$/, '');
  const retentionPolicy = deps.retentionPolicy ?? DEFAULT_RETENTION_POLICY;
  const app = new Hono<PortalEnv>();
  // Pages and API answers that change only when a build does, and downloads' redirects; not
  // logs, streamed downloads or sign-in. Anonymous requests are answered from the cache before
  // any other middleware runs.
  const caches: [string[], ReturnType<typeof createPageCache>][] = [];
  if (deps.pageCache) {
    caches.push([CACHED_ROUTES, createPageCache(deps.pageCache)]);
    if (deps.presign) {
      // A tenth of a link's life, in ms: the time in a link is to the second (AWS Signature V4's
      // X-Amz-Date), so it may be up to 1 s old when it is made.
      const ttlMs = Math.min(deps.pageCache.ttlMs, ((deps.presign.seconds - 1) * 1000) / 10);
      if (ttlMs > 0)
        caches.push([
          DOWNLOAD_ROUTES,
          createPageCache({ ...deps.pageCache, ttlMs, keep: 'redirects' }),
        ]);
    }
  }
  for (const [paths, cache] of caches) for (const path of paths) app.get(path, cache.anonymous);

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.debug(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });
  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        // ANSI colours of logs are style attributes (ansi_up).
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'"],
        scriptSrc: ["'self'"],
        connectSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
      // Whether the portal is reached over HTTPS is the reverse proxy's business.
      strictTransportSecurity: false,
      xFrameOptions: 'DENY',
    }),
  );

  // The same for everyone, so answered before the viewer is looked up: a page's stylesheet and
  // script cost no session query, and a health check passes whatever credentials it carries.
  app.get('/healthz', (c) => c.text('ok'));
  for (const asset of STATIC_ASSETS)
    app.get(`/static/${asset.name}`, (c) => {
      c.header('Content-Type', asset.contentType);
      c.header('Cache-Control', assetCacheControl(asset, c.req.query('v')));
      return c.body(asset.body);
    });

  // Requests that a browser authenticates by itself (the session cookie) come only from the
  // portal's own pages (Origin, or Sec-Fetch-Site). A bearer token is sent by scripts only.
  const sameOrigin = csrf({ origin: new URL(base).origin });
  app.use((c, next) => (c.req.header('authorization') ? next() : sameOrigin(c, next)));
  app.use(viewerMiddleware(db));
  for (const [paths, cache] of caches) for (const path of paths) app.get(path, cache.signedIn);

  /** Renders `page` with what its frame shows of the request (PageRequestContext). */
  const render = (
    c: Context<PortalEnv>,
    page: Child,
    status: 200 | 201 | 400 | 404 | 500 | 503 = 200,
  ) =>
    c.html(
      <PageRequestContext.Provider
        value={{
          login: c.get('viewer')?.user.login,
          signIn: deps.oidc !== undefined,
          path: `${c.req.path}${new URL(c.req.url).search}`,
        }}
      >
        {page}
      </PageRequestContext.Provider>,
      status,
    );

  const isApi = (c: Context<PortalEnv>) => c.req.path.startsWith('/api/');
  app.notFound((c) =>
    isApi(c)
      ? c.json({ error: 'not-found', message: 'no such resource' }, 404)
      : render(c, <NotFoundPage base={base} />, 404),
  );
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return isApi(c)
      ? c.json({ error: 'internal', message: 'internal error; it has been logged' }, 500)
      : render(c, <ErrorPage base={base} />, 500);
  });

  /** `repo` if the caller may see it (canSee), else undefined: a private one is "not found". */
  const visible = <T extends { visibility: Repo['visibility'] }>(
    c: Context<PortalEnv>,
    repo: T | undefined,
  ) => (repo && canSee(c.get('viewer'), repo) ? repo : undefined);
  /** The repository `owner/name` if it exists and the caller may see it, else undefined. */
  const findVisibleRepo = async (c: Context<PortalEnv>, owner: string, name: string) =>
    visible(c, await findRepo(db, owner, name));
  /** What the caller may list: private repositories only when signed in or with a token. */
  const audience = (c: Context<PortalEnv>) => ({ includePrivate: c.get('viewer') !== undefined });

  /**
   * The `:branch` of the URL's repository: per target its newest success, and its recent builds;
   * undefined when the repository is not visible or the branch has no builds.
   */
  async function loadBranch(c: Context<PortalEnv>) {
    const repo = await findVisibleRepo(c, c.req.param('owner')!, c.req.param('repo')!);
    if (!repo) return undefined;
    const branch = c.req.param('branch')!;
    const [latest, builds] = await Promise.all([
      latestOfBranchPerTarget(db, repo.id, branch),
      listBuildsOfRef(db, repo.id, { branch }),
    ]);
    return builds.length === 0 ? undefined : { repo, branch, latest, builds };
  }

  /** The builds of pull request `:number` of the URL's repository, newest first; or undefined. */
  async function loadPull(c: Context<PortalEnv>) {
    const pullNumber = parseId(c.req.param('number'));
    const repo = await findVisibleRepo(c, c.req.param('owner')!, c.req.param('repo')!);
    if (!repo || pullNumber === undefined) return undefined;
    const builds = await listBuildsOfRef(db, repo.id, { pullNumber });
    return builds.length === 0 ? undefined : { repo, pullNumber, builds };
  }

  /** Artifact `:id` with its job, build, repository and how long it is kept; or undefined. */
  async function loadArtifact(c: Context<PortalEnv>) {
    const id = parseId(c.req.param('id'));
    const found = id === undefined ? undefined : await getArtifact(db, id);
    if (!found || !visible(c, found.repo)) return undefined;
    const retention = await expiriesOf(db, [found.build.id], retentionPolicy);
    return { ...found, retention: retention.get(found.build.id)! };
  }

  app.route(
    '/',
    accountRoutes({
      db,
      base,
      log,
      render,
      sessionHours: deps.sessionHours ?? 168,
      signIn: deps.oidc && createOidcSignIn(deps.oidc, base, log),
    }),
  );

  /** The repository `owner/repo` and the builds of commit `sha`, or undefined when either is unknown. */
  async function loadCommit(c: Context<PortalEnv>, shaText: string | undefined) {
    const sha = parseSha(shaText);
    if (!sha) return undefined;
    const repo = await findVisibleRepo(c, c.req.param('owner')!, c.req.param('repo')!);
    if (!repo) return undefined;
    const builds = await listBuildsForCommit(db, repo.id, sha);
    if (builds.length === 0) return undefined;
    return { repo, sha, builds: await loadBuildDetails(db, builds, retentionPolicy) };
  }

  app.get('/', async (c) => {
    const { includePrivate } = audience(c);
    const listed = listWorkers(db);
    const [repos, recent, workers, queue] = await Promise.all([
      listRepos(db, { includePrivate }),
      listRecentBuilds(db, { limit: 20, audience: { includePrivate } }),
      listed,
      queueDepth(db, listed),
    ]);
    const liveWorkers = workers.filter((worker) => workerState(worker) === 'live').length;
    return render(
      c,
      <HomePage
        base={base}
        repos={repos}
        recent={recent}
        queue={queue}
        liveWorkers={liveWorkers}
      />,
    );
  });

  app.get('/workers', async (c) => {
    const listed = listWorkers(db);
    const [workers, queue] = await Promise.all([listed, queueDepth(db, listed)]);
    c.header('Cache-Control', 'no-store');
    return render(c, <WorkersPage base={base} workers={workers} queue={queue} now={new Date()} />);
  });

  app.get('/api/v1/workers', async (c) => {
    const workers = await listWorkers(db);
    c.header('Cache-Control', 'no-store');
    return c.json({ workers: workers.map((worker) => workerToJson(worker, base)) });
  });

  app.get('/api/v1/queue', async (c) => {
    const queue = await queueDepth(db);
    c.header('Cache-Control', 'no-store');
    return c.json({ queue: queue.map(queueToJson) });
  });

  app.get('/api/v1/repos/:owner/:repo/commits/:sha/builds', async (c) => {
    const found = await loadCommit(c, c.req.param('sha'));
    if (!found) return c.notFound();
    return c.json({
      repo: `${found.repo.owner}/${found.repo.name}`,
      sha: found.sha,
      builds: found.builds.map((details) => buildToJson(details, base)),
    });
  });

  app.get('/builds/:id', async (c) => {
    const id = parseId(c.req.param('id'));
    const build = id === undefined ? undefined : await getBuild(db, id);
    if (!build || !visible(c, build.repo)) return c.notFound();
    const [details] = await loadBuildDetails(db, [build], retentionPolicy);
    return render(c, <BuildPage base={base} details={details!} />);
  });

  /** The `?attempt=N&from=SEQ` query of a log URL (parseLogQuery). */
  const logQuery = (c: Context<PortalEnv>) =>
    parseLogQuery({ attempt: c.req.query('attempt'), from: c.req.query('from') });

  /**
   * The job of the `:id` parameter with its build and repository, and the attempt `attempt` asks
   * for (by default the latest); undefined for no such job, one the caller may not see, or an
   * attempt it has not reached.
   */
  async function loadJobAttempt(c: Context<PortalEnv>, attempt: number | undefined) {
    const id = parseId(c.req.param('id'));
    const found = id === undefined ? undefined : await getJobWithBuild(db, id);
    if (!found || !visible(c, found.repo)) return undefined;
    const chosen = attempt ?? found.job.attempt;
    return chosen > found.job.attempt ? undefined : { ...found, attempt: chosen };
  }

  /**
   * loadJobAttempt, and the attempt's log from chunk `query.fromSeq` on. The job is read before
   * its log: once it is finished, the log read after it holds every chunk (the worker stores them
   * all before it records the outcome), so an answer that says `done` misses nothing.
   */
  async function loadLog(c: Context<PortalEnv>, query: LogQuery) {
    const found = await loadJobAttempt(c, query.attempt);
    if (!found) return undefined;
    const log = await readLog(db, found.job.id, {
      attempt: found.attempt,
      fromSeq: query.fromSeq,
    });
    return { ...found, log };
  }

  app.get('/jobs/:id/log', async (c) => {
    const query = logQuery(c);
    if ('error' in query) {
      return render(c, <BadRequestPage base={base} message={query.error} />, 400);
    }
    // The page always shows the whole log of the attempt; `from` is for the raw text and the API.
    const found = await loadLog(c, { ...query, fromSeq: 0 });
    if (!found) return c.notFound();
    const { job } = found;
    const live = found.log.attempt === job.attempt && !isFinished(job.state);
    const reasons = job.state === 'queued' ? await explainQueuedJobs(db, [job]) : undefined;
    // A live page leaves an unended last line to the stream, which sends it when it is complete.
    const lines = logToHtml(found.log.text, !live);
    if (live) c.header('Cache-Control', 'no-store');
    return render(
      c,
      <LogPage
        base={base}
        repo={found.repo}
        build={found.build}
        job={job}
        attempt={found.log.attempt}
        lines={lines}
        live={live}
        eventsUrl={portalUrls.jobLogEvents(base, job.id, found.log.attempt, lines.length)}
        waitingReason={reasons?.get(job.id)}
      />,
    );
  });

  app.get('/jobs/:id/log/events', async (c) => {
    const query = logQuery(c);
    // Where to resume: after the line the browser got last, or the page's last line.
    const after = c.req.header('last-event-id') ?? c.req.query('after') ?? '0';
    if ('error' in query || !/^\d{1,9}$/.test(after))
      return c.text('give ?attempt=N&after=LINE as non-negative integers', 400);
    const found = await loadJobAttempt(c, query.attempt);
    if (!found) return c.notFound();
    return streamLiveLog(
      c,
      db,
      { jobId: found.job.id, attempt: found.attempt, afterLine: Number(after) },
      deps.liveLog,
    );
  });

  app.get('/jobs/:id/log.txt', async (c) => {
    const query = logQuery(c);
    if ('error' in query) return c.text(query.error, 400);
    const found = await loadLog(c, query);
    if (!found) return c.notFound();
    return c.text(found.log.text);
  });

  app.get('/api/v1/jobs/:id/log', async (c) => {
    const query = logQuery(c);
    if ('error' in query) return c.json({ error: 'bad-request', message: query.error }, 400);
    const found = await loadLog(c, query);
    if (!found) return c.json({ error: 'not-found', message: 'no such job or attempt' }, 404);
    c.header('Cache-Control', 'no-store');
    return c.json(logToJson(found.job, found.log));
  });

  /**
   * Sends an artifact's bytes, honouring Range, If-Range and If-None-Match; 404 if its object is
   * gone. With `deps.presign`, redirects to a presigned URL instead (the store honours Range).
   */
  const sendArtifact = async (c: Context<PortalEnv>, artifact: Artifact) => {
    if (deps.presign) {
      const url = await presignedArtifactUrl(
        deps.presign.storage,
        bucket,
        artifact,
        deps.presign.seconds,
      );
      // The link expires: nobody may keep this answer.
      c.header('Cache-Control', 'no-store');
      c.header('X-Checksum-Sha256', artifact.sha256);
      return c.redirect(url, 302);
    }
    try {
      // Hono answers HEAD by running the GET route; c.req.method is still HEAD here.
      return await artifactResponse({
        storage,
        bucket,
        artifact,
        method: c.req.method,
        conditions: {
          range: c.req.header('range'),
          ifRange: c.req.header('if-range'),
          ifNoneMatch: c.req.header('if-none-match'),
        },
      });
    } catch (error) {
      if (!(error instanceof ArtifactObjectMissing)) throw error;
      log.warn({ artifactId: artifact.id, objectKey: error.objectKey }, 'artifact object missing');
      return c.notFound();
    }
  };

  app.get('/artifacts/:id', async (c) => {
    const found = await loadArtifact(c);
    if (!found) return c.notFound();
    return render(
      c,
      <ArtifactPage
        base={base}
        repo={found.repo}
        build={found.build}
        retention={found.retention}
        job={found.job}
        artifact={found.artifact}
      />,
    );
  });

  app.get('/artifacts/:id/download/*', async (c) => {
    const id = parseId(c.req.param('id'));
    const name = fileNameInPath(new URL(c.req.url).pathname, 4);
    const found =
      id === undefined || name === undefined ? undefined : await findArtifactToDownload(db, id);
    if (!found || !visible(c, found) || found.artifact.name !== name) return c.notFound();
    return sendArtifact(c, found.artifact);
  });

  /**
   * Serves the file a stable URL names: the path after its first `skip` segments, from the build
   * `selector` picks in the URL's repository. 404 when there is none; 409, with the URL of each,
   * when several targets made a file of that name.
   */
  const sendStableDownload = async (
    c: Context<PortalEnv>,
    selector: DownloadSelector,
    skip: number,
  ) => {
    const name = fileNameInPath(new URL(c.req.url).pathname, skip);
    const { owner, repo: repoName } = c.req.param() as { owner: string; repo: string };
    const repo = name === undefined ? undefined : await findVisibleRepo(c, owner, repoName);
    if (!repo || name === undefined) return c.notFound();
    const found = await findDownloads(db, repo.id, selector, name);
    if (found.length === 0) return c.notFound();
    if (found.length > 1)
      return c.json(
        {
          error: 'ambiguous',
          message: `${found.length} targets made ${name}: download it by commit and target`,
          downloads: found.map((download) =>
            portalUrls.commitDownload(
              base,
              owner,
              repoName,
              download.build.sha,
              download.target,
              name,
            ),
          ),
        },
        409,
      );
    return sendArtifact(c, found[0]!.artifact);
  };
  /** The release build of `tag` (`latest`: the newest release) with its details, or undefined. */
  async function loadRelease(c: Context<PortalEnv>, tag: string) {
    const repo = await findVisibleRepo(c, c.req.param('owner')!, c.req.param('repo')!);
    const selector: DownloadSelector =
      tag === 'latest' ? { kind: 'latest-release' } : { kind: 'release', tag };
    const build = repo && (await findDownloadBuild(db, repo.id, selector));
    if (!repo || !build) return undefined;
    const jobs = await listJobsOfBuilds(db, [build.id]);
    const [details] = await loadBuildDetails(db, [{ build, repo, jobs }], retentionPolicy);
    return { details: details!, files: releaseFiles(details!) };
  }

  app.get('/api/v1/repos/:owner/:repo/releases', async (c) => {
    const { owner, repo: name } = c.req.param();
    const repo = await findVisibleRepo(c, owner, name);
    if (!repo) return c.notFound();
    const releases = await listReleases(db, repo.id);
    return c.json({
      repo: `${owner}/${name}`,
      releases: releases.map((build) => ({
        tag: build.tag!,
        sha: build.sha,
        buildId: build.id,
        finishedAt: build.finishedAt?.toISOString() ?? null,
        url: portalUrls.release(base, owner, name, build.tag!),
        apiUrl: portalUrls.releaseApi(base, owner, name, build.tag!),
      })),
    });
  });
  app.get('/api/v1/repos/:owner/:repo/releases/:tag', async (c) => {
    const release = await loadRelease(c, c.req.param('tag'));
    if (!release) return c.notFound();
    return c.json(releaseToJson(base, release.details, release.files));
  });

  app.get('/search', async (c) => {
    const query = c.req.query('q') ?? '';
    const hits = await searchBuilds(db, query, audience(c));
    return render(c, <SearchPage base={base} query={query} hits={hits} />);
  });
  app.get('/api/v1/search', async (c) => {
    const query = c.req.query('q') ?? '';
    if (!query.trim())
      return c.json(
        { error: 'bad-request', message: 'give a query: ?q=<sha prefix, #pull, tag or branch>' },
        400,
      );
    const hits = await searchBuilds(db, query, audience(c));
    return c.json({ query, hits: hits.map((hit) => searchHitToJson(base, hit)) });
  });
  app.get('/api/v1/openapi.json', (c) => c.json(openApiDocument(base)));

  app.get('/api/v1/builds', async (c) => {
    const recent = await listRecentBuilds(db, { limit: 20, audience: audience(c) });
    const details = await loadBuildDetails(db, recent, retentionPolicy);
    c.header('Cache-Control', 'no-store');
    return c.json({ builds: details.map((entry) => buildToJson(entry, base)) });
  });
  app.get('/api/v1/builds/:id', async (c) => {
    const id = parseId(c.req.param('id'));
    const build = id === undefined ? undefined : await getBuild(db, id);
    if (!build || !visible(c, build.repo)) return c.notFound();
    const [details] = await loadBuildDetails(db, [build], retentionPolicy);
    return c.json(buildToJson(details!, base));
  });
  app.get('/api/v1/artifacts/:id', async (c) => {
    const found = await loadArtifact(c);
    if (!found) return c.notFound();
    const { artifact, job, build, repo, retention } = found;
    return c.json({
      id: artifact.id,
      name: artifact.name,
      size: artifact.size,
      sha256: artifact.sha256,
      url: portalUrls.artifact(base, artifact.id),
      downloadUrl: portalUrls.artifactDownload(base, artifact.id, artifact.name),
      commitDownloadUrl: portalUrls.commitDownload(
        base,
        repo.owner,
        repo.name,
        build.sha,
        job.target,
        artifact.name,
      ),
      jobId: job.id,
      target: job.target,
      platform: job.platform,
      build: buildSummaryToJson(build, repo, base),
      createdAt: artifact.createdAt.toISOString(),
      retention: retentionToJson(retention),
    });
  });
  app.get('/api/v1/repos/:owner/:repo', async (c) => {
    const repo = await findVisibleRepo(c, c.req.param('owner'), c.req.param('repo'));
    if (!repo) return c.notFound();
    const [tags, branches, pulls] = await Promise.all([
      listTagsOfRepo(db, repo.id),
      listRefsOfRepo(db, repo.id, 'branch'),
      listRefsOfRepo(db, repo.id, 'pull'),
    ]);
    const { owner, name } = repo;
    return c.json({
      repo: `${owner}/${name}`,
      visibility: repo.visibility,
      url: portalUrls.repo(base, owner, name),
      releasesApiUrl: portalUrls.releasesApi(base, owner, name),
      branches: branches.map((entry) => ({
        name: entry.name,
        apiUrl: portalUrls.branchApi(base, owner, name, entry.name),
        buildCount: entry.buildCount,
        latest: buildSummaryToJson(entry.latest, repo, base),
      })),
      pulls: pulls.map((entry) => ({
        number: Number(entry.name),
        apiUrl: portalUrls.pullApi(base, owner, name, Number(entry.name)),
        buildCount: entry.buildCount,
        latest: buildSummaryToJson(entry.latest, repo, base),
      })),
      tags: tags.map((entry) => ({
        tag: entry.tag,
        releaseApiUrl: portalUrls.releaseApi(base, owner, name, entry.tag),
        latest: buildSummaryToJson(entry.latest, repo, base),
      })),
    });
  });
  app.get('/api/v1/repos/:owner/:repo/branches/:branch', async (c) => {
    const found = await loadBranch(c);
    if (!found) return c.notFound();
    const { repo, branch, latest, builds } = found;
    return c.json({
      repo: `${repo.owner}/${repo.name}`,
      branch,
      url: portalUrls.branch(base, repo.owner, repo.name, branch),
      badgeUrl: portalUrls.branchBadge(base, repo.owner, repo.name, branch),
      latest: latest.map((entry) => ({
        target: entry.target,
        platform: entry.platform,
        build: buildSummaryToJson(entry.build, repo, base),
        files: entry.artifacts.map((artifact) => ({
          name: artifact.name,
          size: artifact.size,
          sha256: artifact.sha256,
          downloadUrl: portalUrls.branchDownload(
            base,
            repo.owner,
            repo.name,
            branch,
            entry.target,
            artifact.name,
          ),
        })),
      })),
      builds: builds.map((build) => buildSummaryToJson(build, repo, base)),
    });
  });
  app.get('/api/v1/repos/:owner/:repo/pulls/:number', async (c) => {
    const found = await loadPull(c);
    if (!found) return c.notFound();
    const { repo, pullNumber, builds } = found;
    return c.json({
      repo: `${repo.owner}/${repo.name}`,
      pullNumber,
      url: portalUrls.pull(base, repo.owner, repo.name, pullNumber),
      builds: builds.map((build) => buildSummaryToJson(build, repo, base)),
    });
  });

  app.get('/:owner/:repo/releases.atom', async (c) => {
    const repo = await findVisibleRepo(c, c.req.param('owner'), c.req.param('repo'));
    if (!repo) return c.notFound();
    c.header('Content-Type', 'application/atom+xml; charset=utf-8');
    c.header('Cache-Control', 'max-age=60');
    return c.body(releasesFeed(base, repo, await listReleases(db, repo.id)));
  });
  app.get('/:owner/:repo/releases/latest', async (c) => {
    const { owner, repo: name } = c.req.param();
    const repo = await findVisibleRepo(c, owner, name);
    const build = repo && (await findDownloadBuild(db, repo.id, { kind: 'latest-release' }));
    if (!build) return c.notFound();
    return c.redirect(portalUrls.release(base, owner, name, build.tag!), 302);
  });
  app.get('/:owner/:repo/releases/:tag', async (c) => {
    const release = await loadRelease(c, c.req.param('tag'));
    if (!release) return c.notFound();
    return render(c, <ReleasePage base={base} details={release.details} files={release.files} />);
  });
  // A release's SHA256SUMS: its own artifact of that name if one target made it, else generated
  // (the worker writes one per job: with several targets, none of them is the release's).
  app.get(`/:owner/:repo/releases/:tag/download/${CHECKSUMS_FILE}`, async (c) => {
    const release = await loadRelease(c, c.req.param('tag'));
    if (!release) return c.notFound();
    const own = release.files.find((file) => file.listedName === CHECKSUMS_FILE);
    if (own) {
      const artifacts = release.details.jobs.flatMap((job) => job.artifacts);
      return sendArtifact(
        c,
        artifacts.find((artifact) => artifact.id === own.artifactId)!,
      );
    }
    c.header('Content-Disposition', attachmentDisposition(CHECKSUMS_FILE));
    c.header('Cache-Control', 'private, max-age=60');
    return c.text(sha256Sums(release.files));
  });
  app.get('/:owner/:repo/releases/latest/download/*', (c) =>
    sendStableDownload(c, { kind: 'latest-release' }, 6),
  );
  app.get('/:owner/:repo/releases/:tag/download/*', (c) =>
    sendStableDownload(c, { kind: 'release', tag: c.req.param('tag') }, 6),
  );
  app.get('/:owner/:repo/commit/:sha/:target/*', (c) => {
    const sha = parseSha(c.req.param('sha'));
    if (!sha) return c.notFound();
    return sendStableDownload(c, { kind: 'commit', sha, target: c.req.param('target') }, 6);
  });
  /** A status badge: `target` undefined for the whole build. */
  const sendBadge = async (c: Context<PortalEnv>, target: string | undefined) => {
    const { owner, repo: name, branch } = c.req.param() as Record<string, string>;
    const repo = await findVisibleRepo(c, owner!, name!);
    if (!repo) return c.notFound();
    const state = await branchStatus(db, repo.id, branch!, target);
    c.header('Content-Type', 'image/svg+xml; charset=utf-8');
    // Short: README badges are fetched through image proxies that honour it.
    c.header('Cache-Control', 'max-age=60');
    return c.body(statusBadge(target ?? 'build', state));
  };
  app.get('/:owner/:repo/branches/:branch/badge.svg', (c) => sendBadge(c, undefined));
  app.get('/:owner/:repo/branches/:branch/badges/:file', (c) => {
    const file = c.req.param('file');
    if (!file.endsWith('.svg')) return c.notFound();
    return sendBadge(c, file.slice(0, -'.svg'.length));
  });
  app.get('/:owner/:repo/branches/:branch/latest/:target/*', (c) =>
    sendStableDownload(
      c,
      { kind: 'branch', branch: c.req.param('branch'), target: c.req.param('target') },
      7,
    ),
  );

  app.get('/:owner/:repo', async (c) => {
    const repo = await findVisibleRepo(c, c.req.param('owner'), c.req.param('repo'));
    if (!repo) return c.notFound();
    const [commits, tags, branches, pulls] = await Promise.all([
      listCommitsOfRepo(db, repo.id),
      listTagsOfRepo(db, repo.id),
      listRefsOfRepo(db, repo.id, 'branch'),
      listRefsOfRepo(db, repo.id, 'pull'),
    ]);
    return render(
      c,
      <RepoPage
        base={base}
        repo={repo}
        commits={commits}
        tags={tags}
        branches={branches}
        pulls={pulls}
      />,
    );
  });

  app.get('/:owner/:repo/branches/:branch', async (c) => {
    const found = await loadBranch(c);
    if (!found) return c.notFound();
    return render(c, <BranchPage base={base} {...found} />);
  });

  app.get('/:owner/:repo/pull/:number', async (c) => {
    const found = await loadPull(c);
    if (!found) return c.notFound();
    const { repo, pullNumber, builds } = found;
    const jobs = await listJobsOfBuilds(db, [builds[0]!.id]);
    const [latest] = await loadBuildDetails(
      db,
      [{ build: builds[0]!, repo, jobs }],
      retentionPolicy,
    );
    return render(
      c,
      <PullPage base={base} repo={repo} pullNumber={pullNumber} latest={latest!} builds={builds} />,
    );
  });

  app.get('/:owner/:repo/commit/:sha', async (c) => {
    const found = await loadCommit(c, c.req.param('sha'));
    if (!found) return c.notFound();
    return render(
      c,
      <CommitPage base={base} repo={found.repo} sha={found.sha} builds={found.builds} />,
    );
  });

  return app;
}
