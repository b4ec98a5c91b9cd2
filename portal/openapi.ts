import { RETENTION_CLASSES } from '../core/retention';
import { SESSION_COOKIE } from './auth';

/**
 * The OpenAPI 3.1 document of the portal's JSON API (GET /api/v1/openapi.json), with `base` as
 * its server. Written by hand next to the routes in portal/app.tsx; portal/downloads.test.tsx checks
 * that it is a valid document and that every /api/v1 route is in it.
 */
export function openApiDocument(base: string) {
  const string = { type: 'string' } as const;
  const integer = { type: 'integer' } as const;
  const time = { type: ['string', 'null'], format: 'date-time' } as const;
  const url = { type: 'string', format: 'uri' } as const;
  const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
  /** What a build was of, and its state (portal/build-details.ts `buildRefToJson`). */
  const buildRef = {
    repo: string,
    sha: string,
    ref: string,
    pullNumber: { type: ['integer', 'null'] },
    branch: { type: ['string', 'null'] },
    tag: { type: ['string', 'null'] },
    state: { enum: ['queued', 'running', 'succeeded', 'failed', 'canceled'] },
  };
  const path = (name: string, description: string) => ({
    name,
    in: 'path',
    required: true,
    description,
    schema: string,
  });
  const owner = path('owner', 'repository owner');
  const repo = path('repo', 'repository name');
  const ok = (description: string, schema: object) => ({
    description,
    content: { 'application/json': { schema } },
  });
  const notFound = {
    description: 'no such repository, build or release; or a private repository and no credentials',
    ...errorBody(),
  };
  const unauthorized = {
    description: 'no credentials, or an API token unknown, expired or revoked',
    ...errorBody(),
  };
  function errorBody() {
    return { content: { 'application/json': { schema: ref('Error') } } };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Crossdock portal API',
      version: '1',
      description:
        'Builds, logs, releases, the fleet and search, and the caller’s API tokens. Sizes are bytes, sha256 is hex, times are ISO 8601. Private repositories answer 404 without credentials.',
    },
    servers: [{ url: base }],
    // Public repositories need no credentials; private ones need either.
    security: [{}, { bearer: [] }, { session: [] }],
    paths: {
      '/api/v1/workers': {
        get: {
          summary: 'The fleet: every worker that registered',
          responses: {
            200: ok('workers', {
              type: 'object',
              properties: { workers: { type: 'array', items: { type: 'object' } } },
            }),
          },
        },
      },
      '/api/v1/queue': {
        get: {
          summary: 'Queued and running jobs per run platform',
          responses: {
            200: ok('queue', {
              type: 'object',
              properties: { queue: { type: 'array', items: { type: 'object' } } },
            }),
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}/commits/{sha}/builds': {
        get: {
          summary: 'Every build of a commit, newest first, with jobs and artifacts',
          parameters: [owner, repo, path('sha', 'full commit sha (40 hex digits)')],
          responses: {
            200: ok('builds', {
              type: 'object',
              required: ['repo', 'sha', 'builds'],
              properties: {
                repo: string,
                sha: string,
                builds: { type: 'array', items: ref('Build') },
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/jobs/{id}/log': {
        get: {
          summary: "A job's log, to tail it",
          parameters: [
            path('id', 'job id'),
            {
              name: 'attempt',
              in: 'query',
              schema: integer,
              description: 'attempt (default: the latest)',
            },
            {
              name: 'from',
              in: 'query',
              schema: integer,
              description: 'first chunk sequence number',
            },
          ],
          responses: {
            200: ok('log chunks', { type: 'object' }),
            400: { description: 'bad query', ...errorBody() },
            404: notFound,
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}/releases': {
        get: {
          summary: "A repository's releases: per tag its newest successful build of trusted code",
          parameters: [owner, repo],
          responses: {
            200: ok('releases', {
              type: 'object',
              required: ['repo', 'releases'],
              properties: {
                repo: string,
                releases: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['tag', 'sha', 'buildId', 'url', 'apiUrl'],
                    properties: {
                      tag: string,
                      sha: string,
                      buildId: integer,
                      finishedAt: time,
                      url,
                      apiUrl: url,
                    },
                  },
                },
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}/releases/{tag}': {
        get: {
          summary: 'One release and its files (`latest`: the newest release)',
          parameters: [owner, repo, path('tag', 'the tag, percent-encoded, or latest')],
          responses: { 200: ok('the release', ref('Release')), 404: notFound },
        },
      },
      '/api/v1/search': {
        get: {
          summary: 'Commits by sha prefix, pull requests (#123), tags and branches (prefix)',
          parameters: [{ name: 'q', in: 'query', required: true, schema: string }],
          responses: {
            200: ok('hits, newest first', {
              type: 'object',
              required: ['query', 'hits'],
              properties: { query: string, hits: { type: 'array', items: ref('SearchHit') } },
            }),
            400: { description: 'no query', ...errorBody() },
          },
        },
      },
      '/api/v1/builds': {
        get: {
          summary: 'The 20 newest builds the caller may see, with jobs and artifacts',
          responses: {
            200: ok('builds', {
              type: 'object',
              required: ['builds'],
              properties: { builds: { type: 'array', items: ref('Build') } },
            }),
          },
        },
      },
      '/api/v1/builds/{id}': {
        get: {
          summary: 'One build, with jobs, artifacts and retention',
          parameters: [{ ...path('id', 'build id'), schema: integer }],
          responses: { 200: ok('the build', ref('Build')), 404: notFound },
        },
      },
      '/api/v1/artifacts/{id}': {
        get: {
          summary: 'One artifact: its links, sha256, where it came from, retention',
          parameters: [{ ...path('id', 'artifact id'), schema: integer }],
          responses: {
            200: ok('the artifact', {
              type: 'object',
              required: ['id', 'name', 'size', 'sha256', 'downloadUrl', 'build', 'retention'],
              properties: {
                id: integer,
                name: string,
                size: integer,
                sha256: string,
                url,
                downloadUrl: url,
                commitDownloadUrl: url,
                jobId: integer,
                target: string,
                platform: string,
                build: ref('BuildSummary'),
                createdAt: time,
                retention: ref('Retention'),
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}': {
        get: {
          summary: 'A repository: its branches, pull requests and tags with their newest builds',
          parameters: [owner, repo],
          responses: {
            200: ok('the repository', {
              type: 'object',
              required: ['repo', 'visibility', 'branches', 'pulls', 'tags'],
              properties: {
                repo: string,
                visibility: { enum: ['public', 'private'] },
                url,
                releasesApiUrl: url,
                branches: { type: 'array', items: { type: 'object' } },
                pulls: { type: 'array', items: { type: 'object' } },
                tags: { type: 'array', items: { type: 'object' } },
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}/branches/{branch}': {
        get: {
          summary:
            'A branch: per target its newest successful build and files (stable links), and its builds',
          parameters: [owner, repo, path('branch', 'branch name, percent-encoded')],
          responses: {
            200: ok('the branch', {
              type: 'object',
              required: ['repo', 'branch', 'latest', 'builds'],
              properties: {
                repo: string,
                branch: string,
                url,
                badgeUrl: url,
                latest: { type: 'array', items: { type: 'object' } },
                builds: { type: 'array', items: ref('BuildSummary') },
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/repos/{owner}/{repo}/pulls/{number}': {
        get: {
          summary: "A pull request's builds, newest first",
          parameters: [owner, repo, { ...path('number', 'pull request number'), schema: integer }],
          responses: {
            200: ok('the pull request', {
              type: 'object',
              required: ['repo', 'pullNumber', 'builds'],
              properties: {
                repo: string,
                pullNumber: integer,
                url,
                builds: { type: 'array', items: ref('BuildSummary') },
              },
            }),
            404: notFound,
          },
        },
      },
      '/api/v1/user': {
        get: {
          summary: 'Who the caller is (signed-in session or API token)',
          security: [{ bearer: [] }, { session: [] }],
          responses: {
            200: ok('the user', {
              type: 'object',
              required: ['login', 'email'],
              properties: { login: string, email: { type: ['string', 'null'] } },
            }),
            401: unauthorized,
          },
        },
      },
      '/api/v1/tokens': {
        get: {
          summary: "The caller's personal API tokens, newest first, revoked ones included",
          security: [{ bearer: [] }, { session: [] }],
          responses: {
            200: ok('tokens', {
              type: 'object',
              required: ['tokens'],
              properties: { tokens: { type: 'array', items: ref('ApiToken') } },
            }),
            401: unauthorized,
          },
        },
        post: {
          summary: 'Makes a personal API token; its secret is in this answer only',
          description: 'Only from a signed-in browser session: a token cannot make tokens.',
          security: [{ session: [] }],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['name'],
                  properties: {
                    name: { type: 'string', minLength: 1, maxLength: 100 },
                    expiresInDays: { type: 'integer', minimum: 1, maximum: 366, default: 90 },
                  },
                },
              },
            },
          },
          responses: {
            201: ok('the new token and its secret', {
              type: 'object',
              required: ['token', 'secret'],
              properties: { token: ref('ApiToken'), secret: string },
            }),
            400: { description: 'bad name or lifetime', ...errorBody() },
            401: unauthorized,
            403: { description: 'called with an API token', ...errorBody() },
          },
        },
      },
      '/api/v1/tokens/{id}': {
        delete: {
          summary: 'Revokes one of the caller’s API tokens',
          security: [{ bearer: [] }, { session: [] }],
          parameters: [{ ...path('id', 'token id'), schema: integer }],
          responses: {
            204: { description: 'revoked' },
            401: unauthorized,
            404: { description: 'no such token of the caller, or revoked already', ...errorBody() },
          },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          summary: 'This document',
          responses: { 200: ok('OpenAPI 3.1', { type: 'object' }) },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A personal API token from /settings/tokens',
        },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
      },
      schemas: {
        ApiToken: {
          type: 'object',
          required: ['id', 'name', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'],
          properties: {
            id: integer,
            name: string,
            createdAt: time,
            expiresAt: time,
            lastUsedAt: time,
            revokedAt: time,
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: {
              enum: [
                'bad-request',
                'not-found',
                'internal',
                'ambiguous',
                'unauthorized',
                'forbidden',
              ],
            },
            message: string,
          },
        },
        Build: {
          type: 'object',
          required: ['id', 'url', 'repo', 'sha', 'state', 'jobs'],
          properties: {
            id: integer,
            url,
            ...buildRef,
            createdAt: time,
            startedAt: time,
            finishedAt: time,
            pinned: { type: 'boolean' },
            retention: ref('Retention'),
            jobs: { type: 'array', items: { type: 'object' } },
          },
        },
        BuildSummary: {
          type: 'object',
          required: ['id', 'url', 'repo', 'sha', 'state'],
          properties: {
            id: integer,
            url,
            apiUrl: url,
            ...buildRef,
            createdAt: time,
            finishedAt: time,
          },
        },
        Retention: {
          type: 'object',
          required: ['class', 'expiresAt', 'deletedAt', 'reason'],
          properties: {
            class: { enum: [...RETENTION_CLASSES] },
            expiresAt: time,
            deletedAt: time,
            reason: string,
          },
        },
        Release: {
          type: 'object',
          required: ['repo', 'tag', 'sha', 'buildId', 'url', 'sha256SumsUrl', 'files'],
          properties: {
            repo: string,
            tag: string,
            sha: string,
            buildId: integer,
            buildUrl: url,
            finishedAt: time,
            url,
            sha256SumsUrl: url,
            files: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'target', 'platform', 'size', 'sha256', 'downloadUrl'],
                properties: {
                  name: string,
                  target: string,
                  platform: string,
                  size: integer,
                  sha256: string,
                  downloadUrl: url,
                },
              },
            },
          },
        },
        SearchHit: {
          type: 'object',
          required: ['kind', 'repo', 'sha', 'state', 'buildId', 'buildUrl', 'commitUrl'],
          properties: {
            kind: { enum: ['commit', 'pull', 'tag', 'branch'] },
            ...buildRef,
            buildId: integer,
            buildUrl: url,
            commitUrl: url,
          },
        },
      },
    },
  };
}
