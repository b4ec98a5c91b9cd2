import { Hono, type Context } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import type { Client } from 'minio';
import type { Logger } from '../core/logger';
import type { Database } from '../db/client';
import { getArtifact } from '../db/queries/artifacts';
import { getBuild, listBuildsForCommit } from '../db/queries/builds';
import { readLog } from '../db/queries/logs';
import {
  findJobWithBuild,
  listCommitsOfRepo,
  listRepos,
  listTagsOfRepo,
} from '../db/queries/portal';
import { findRepo } from '../db/queries/repos';
import { buildToJson, withArtifacts } from './build-details';
import { ArtifactObjectMissing, artifactResponse, downloadPathName } from './download';
import { stripAnsi } from '../core/ansi';
import {
  BuildPage,
  CommitPage,
  ErrorPage,
  HomePage,
  LogPage,
  NotFoundPage,
  RepoPage,
} from './views';

/** What the portal needs; `main.ts` wires the real ones, tests pass test services. */
export interface PortalDeps {
  db: Database;
  /** Client of the object store holding the artifacts. */
  storage: Client;
  bucket: string;
  /** The portal's public base URL, e.g. https://builds.example.com; every link starts with it. */
  portalUrl: string;
  log: Logger;
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
 * of core/urls.ts `portalUrls`. Unknown pages, ids and names answer 404; a failure is logged and
 * answers 500 without details. HTML is rendered with hono/jsx, which escapes every value, and
 * served with a Content-Security-Policy that allows no scripts.
 */
export function createPortalApp(deps: PortalDeps): Hono {
  const { db, storage, bucket, log } = deps;
  const base = deps.portalUrl.replace(/\/+$/, '');
  const app = new Hono();

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
        styleSrc: ["'unsafe-inline'"],
        imgSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
      // Whether the portal is reached over HTTPS is the reverse proxy's business.
      strictTransportSecurity: false,
      xFrameOptions: 'DENY',
    }),
  );

  const isApi = (c: Context) => c.req.path.startsWith('/api/');
  app.notFound((c) =>
    isApi(c)
      ? c.json({ error: 'not-found', message: 'no such resource' }, 404)
      : c.html(<NotFoundPage base={base} />, 404),
  );
  app.onError((error, c) => {
    log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return isApi(c)
      ? c.json({ error: 'internal', message: 'internal error; it has been logged' }, 500)
      : c.html(<ErrorPage base={base} />, 500);
  });

  /** The repository `owner/repo` and the builds of commit `sha`, or undefined when either is unknown. */
  async function loadCommit(owner: string, name: string, shaText: string | undefined) {
    const sha = parseSha(shaText);
    if (!sha) return undefined;
    const repo = await findRepo(db, owner, name);
    if (!repo) return undefined;
    const builds = await listBuildsForCommit(db, repo.id, sha);
    if (builds.length === 0) return undefined;
    return { repo, sha, builds: await withArtifacts(db, builds) };
  }

  app.get('/healthz', (c) => c.text('ok'));

  app.get('/', async (c) => c.html(<HomePage base={base} repos={await listRepos(db)} />));

  app.get('/api/v1/repos/:owner/:repo/commits/:sha/builds', async (c) => {
    const found = await loadCommit(c.req.param('owner'), c.req.param('repo'), c.req.param('sha'));
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
    if (!build) return c.notFound();
    const [details] = await withArtifacts(db, [build]);
    return c.html(<BuildPage base={base} details={details!} />);
  });

  /** The job of the `:id` parameter with its build, repository and latest log, or undefined. */
  async function loadLog(idText: string | undefined) {
    const id = parseId(idText);
    const found = id === undefined ? undefined : await findJobWithBuild(db, id);
    if (!found) return undefined;
    return { ...found, log: await readLog(db, found.job.id) };
  }

  app.get('/jobs/:id/log', async (c) => {
    const found = await loadLog(c.req.param('id'));
    if (!found) return c.notFound();
    const details = {
      repo: found.repo,
      build: found.build,
      jobId: found.job.id,
      target: found.job.target,
      attempt: found.log.attempt,
    };
    return c.html(<LogPage base={base} details={details} text={stripAnsi(found.log.text)} />);
  });

  app.get('/jobs/:id/log.txt', async (c) => {
    const found = await loadLog(c.req.param('id'));
    if (!found) return c.notFound();
    return c.text(found.log.text);
  });

  app.get('/artifacts/:id/download/*', async (c) => {
    const id = parseId(c.req.param('id'));
    const name = downloadPathName(new URL(c.req.url).pathname);
    const found = id === undefined || name === undefined ? undefined : await getArtifact(db, id);
    if (!found || found.artifact.name !== name) return c.notFound();
    try {
      // Hono answers HEAD by running this GET route; c.req.method is still HEAD here.
      return await artifactResponse({
        storage,
        bucket,
        artifact: found.artifact,
        method: c.req.method,
      });
    } catch (error) {
      if (!(error instanceof ArtifactObjectMissing)) throw error;
      log.warn(
        { artifactId: found.artifact.id, objectKey: error.objectKey },
        'artifact object missing',
      );
      return c.notFound();
    }
  });

  app.get('/:owner/:repo', async (c) => {
    const repo = await findRepo(db, c.req.param('owner'), c.req.param('repo'));
    if (!repo) return c.notFound();
    const [commits, tags] = await Promise.all([
      listCommitsOfRepo(db, repo.id),
      listTagsOfRepo(db, repo.id),
    ]);
    return c.html(<RepoPage base={base} repo={repo} commits={commits} tags={tags} />);
  });

  app.get('/:owner/:repo/commit/:sha', async (c) => {
    const found = await loadCommit(c.req.param('owner'), c.req.param('repo'), c.req.param('sha'));
    if (!found) return c.notFound();
    return c.html(
      <CommitPage base={base} repo={found.repo} sha={found.sha} builds={found.builds} />,
    );
  });

  return app;
}
