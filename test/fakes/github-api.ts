import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AppAuth,
  invalid,
  isObject,
  isoSeconds,
  notFound,
  reply,
  type FakeGitHubApp,
  type PermissionNeed,
  type Reply,
} from './github-app-auth';
import { listen, readBody } from './http';

export type { FakeGitHubApp, InstallationToken } from './github-app-auth';

const run = promisify(execFile);

/** GitHub's web origin, for the `html_url`s of answers. */
const WEB = 'https://github.com';
/** The login of the app's bot user, author of the comments the fake stores. */
const BOT_LOGIN = 'crossdock[bot]';
/** GitHub's limits on check run output texts and on comment bodies, in characters. */
const MAX_OUTPUT = 65535;
const MAX_COMMENT = 65536;

/** docs.github.com/rest/checks/runs */
const CHECK_STATUSES = ['queued', 'in_progress', 'completed', 'waiting', 'requested', 'pending'];
const CHECK_CONCLUSIONS =
  'action_required cancelled failure neutral success skipped stale timed_out'.split(' ');
/** docs.github.com/rest/reactions/reactions */
const REACTIONS = ['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes'];
/** docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user */
const LEGACY_PERMISSION = {
  admin: 'admin',
  maintain: 'write',
  write: 'write',
  triage: 'read',
  read: 'read',
  none: 'none',
} as const;

export type RepositoryRole = keyof typeof LEGACY_PERMISSION;

/** Options of startFakeGitHub; everything but `root` is optional. */
export interface FakeGitHubOptions {
  /** Holds the bare repositories, `<root>/<owner>/<repo>.git`. */
  root: string;
  /** A static token REST calls and git may use, unrestricted like an installation's. */
  token?: string;
  /** A GitHub App with one installation, whose endpoints take JWTs signed by its key. */
  app?: FakeGitHubApp;
  /** Repositories (`owner/name`) that git serves only with an installation token. */
  privateRepos?: string[];
  /** Repository roles by login; other logins read (as on public repositories). */
  permissions?: Record<string, RepositoryRole>;
  /** Authors' logins by pull request number; 'octocat' by default. */
  pullAuthors?: Record<number, string>;
}

/** One recorded call: `body` is the parsed JSON body, `{size}` for an upload, else absent. */
export interface GitHubCall {
  method: string;
  path: string;
  body?: unknown;
}

/** A check run as stored; `history` has one entry per create or update, in order. */
export interface CheckRun {
  id: number;
  /** `owner/name` */
  repo: string;
  name: string;
  headSha: string;
  status: string;
  conclusion: string | null;
  externalId: string;
  detailsUrl: string | null;
  startedAt: string | null;
  completedAt: string | null;
  output: { title: string; summary: string; text?: string } | null;
  history: { status: string; conclusion: string | null }[];
}

/** An issue or pull request comment; `repo` is `owner/name`, `edits` counts updates. */
export interface IssueComment {
  issue: number;
  repo: string;
  body: string;
  edits: number;
  /** Who wrote it: BOT_LOGIN for comments made through the API, else a person (addComment). */
  author: string;
}

/** A reaction the bot made to an issue comment; `content` is GitHub's name (`+1`, `rocket`, ...). */
export interface Reaction {
  commentId: number;
  content: string;
}

/** An uploaded release asset: `data` holds the bytes as received. */
export interface ReleaseAsset {
  id: number;
  name: string;
  label?: string;
  contentType: string;
  data: Buffer;
}

interface Repository {
  owner: string;
  name: string;
  fullName: string;
  dir: string;
}

/** The fake's state, shared by the handlers. */
interface State {
  options: FakeGitHubOptions;
  auth: AppAuth;
  checkRuns: Map<number, CheckRun>;
  comments: Map<number, IssueComment>;
  reactions: Reaction[];
  releaseAssets: Map<number, ReleaseAsset[]>;
  nextId: () => number;
}

interface Context {
  state: State;
  request: IncomingMessage;
  url: URL;
  /** The route pattern's groups after owner and repo, URL-decoded. */
  params: string[];
  /** The parsed JSON body (undefined when there is none). */
  body: unknown;
  raw: Buffer;
}

type RepoContext = Context & { repo: Repository };

type Handler<C> = (context: C) => Reply | Promise<Reply>;

/**
 * A route: `app` routes take the app's JWT, the others an installation (or the static) token;
 * `repo` routes are under a repository the token must reach, with the permission it `needs`.
 */
type Route = { method: string; pattern: RegExp } & (
  | { auth: 'app'; handler: Handler<Context> }
  | { auth: 'token'; handler: Handler<Context> }
  | {
      auth: 'repo';
      needs: PermissionNeed;
      handler: Handler<RepoContext>;
    }
);

const characters = (text: string) => Array.from(text).length;

const git = async (dir: string, args: string[]) =>
  (await run('git', args, { cwd: dir })).stdout.trim();
const tryGit = (dir: string, args: string[]) => git(dir, args).catch(() => undefined);
const isRepository = async (dir: string) =>
  (await tryGit(dir, ['rev-parse', '--git-dir'])) !== undefined;
const commitOf = (dir: string, ref: string) =>
  tryGit(dir, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);

// ---- Repository reads (docs.github.com/rest/repos, /pulls, /branches, /git, /commits) ----

/** docs.github.com/rest/repos/repos#get-a-repository */
function getRepository({ state, repo }: RepoContext) {
  return reply(200, {
    name: repo.name,
    full_name: repo.fullName,
    owner: { login: repo.owner },
    private: state.options.privateRepos?.includes(repo.fullName) ?? false,
    default_branch: 'main',
    html_url: `${WEB}/${repo.fullName}`,
  });
}

/**
 * docs.github.com/rest/pulls/pulls#get-a-pull-request: PR N's head is refs/pull/N/head; when a
 * branch here points at it the PR is the repository's own, else a fork's.
 */
async function getPull({ state, repo, params }: RepoContext) {
  const number = Number(params[0]);
  const sha = await commitOf(repo.dir, `refs/pull/${number}/head`);
  if (!sha) return notFound();
  const branch = await tryGit(repo.dir, [
    'for-each-ref',
    `--points-at=${sha}`,
    '--format=%(refname:lstrip=2)',
    'refs/heads',
  ]);
  return reply(200, {
    number,
    state: 'open',
    html_url: `${WEB}/${repo.fullName}/pull/${number}`,
    user: { login: state.options.pullAuthors?.[number] ?? 'octocat' },
    labels: [],
    head: {
      sha,
      ref: branch ? branch.split('\n')[0] : `pr-${number}`,
      repo: branch
        ? { full_name: repo.fullName, fork: false }
        : { full_name: `fork-of-${repo.owner}/${repo.name}`, fork: true },
    },
    base: {
      ref: 'main',
      sha: await commitOf(repo.dir, 'refs/heads/main'),
      repo: { full_name: repo.fullName, fork: false },
    },
  });
}

/** docs.github.com/rest/commits/commits#compare-two-commits (the status only) */
async function compareCommits({ repo, params }: RepoContext) {
  const [baseSha, headSha] = await Promise.all(params.map((ref) => commitOf(repo.dir, ref)));
  if (!baseSha || !headSha) return notFound();
  const ancestor = async (a: string, b: string) =>
    (await tryGit(repo.dir, ['merge-base', '--is-ancestor', a, b])) !== undefined;
  let status = 'diverged';
  if (baseSha === headSha) status = 'identical';
  else if (await ancestor(baseSha, headSha)) status = 'ahead';
  else if (await ancestor(headSha, baseSha)) status = 'behind';
  return reply(200, { status });
}

/** docs.github.com/rest/branches/branches#get-a-branch */
async function getBranch({ repo, params }: RepoContext) {
  const sha = await commitOf(repo.dir, `refs/heads/${params[0]}`);
  if (!sha) return reply(404, { message: 'Branch not found' });
  return reply(200, { name: params[0], commit: { sha } });
}

/** docs.github.com/rest/git/refs#get-a-reference (tags only) */
async function getTagRef({ repo, params }: RepoContext) {
  const sha = await tryGit(repo.dir, ['rev-parse', '--verify', `refs/tags/${params[0]}`]);
  if (!sha) return notFound();
  const type = await git(repo.dir, ['cat-file', '-t', sha]);
  return reply(200, { ref: `refs/tags/${params[0]}`, object: { sha, type } });
}

/** docs.github.com/rest/git/tags#get-a-tag */
async function getTag({ repo, params }: RepoContext) {
  const target = await commitOf(repo.dir, params[0]!);
  if (!target) return notFound();
  return reply(200, { sha: params[0], object: { sha: target, type: 'commit' } });
}

/** docs.github.com/rest/commits/commits#get-a-commit (the sha only) */
async function getCommit({ repo, params }: RepoContext) {
  const sha = await commitOf(repo.dir, params[0]!);
  if (!sha) return invalid('No commit found for SHA');
  return reply(200, { sha });
}

/** docs.github.com/rest/repos/contents#get-repository-content (files only) */
async function getContent({ repo, params, url }: RepoContext) {
  const ref = url.searchParams.get('ref') ?? 'HEAD';
  const content = await run('git', ['show', `${ref}:${params[0]}`], {
    cwd: repo.dir,
    encoding: 'buffer',
  }).then(
    (result) => result.stdout,
    () => undefined,
  );
  if (!content) return notFound();
  const encoded = content.toString('base64');
  return reply(200, { type: 'file', path: params[0], encoding: 'base64', content: encoded });
}

/** docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user */
function getCollaboratorPermission({ state, params }: RepoContext) {
  const login = params[0]!;
  const role = state.options.permissions?.[login] ?? 'read';
  return reply(200, { permission: LEGACY_PERMISSION[role], role_name: role, user: { login } });
}

// ---- Check runs (docs.github.com/rest/checks/runs) ----

const checkRunJson = (run: CheckRun) => ({
  id: run.id,
  name: run.name,
  head_sha: run.headSha,
  status: run.status,
  conclusion: run.conclusion,
  external_id: run.externalId,
  details_url: run.detailsUrl,
  started_at: run.startedAt,
  completed_at: run.completedAt,
  output: run.output,
  html_url: `${WEB}/${run.repo}/runs/${run.id}`,
});

/**
 * Applies a create or update body to `run` as GitHub validates it; returns a 422 message on
 * violation. `conclusion` implies `completed`, which requires a conclusion.
 */
function applyCheckRunFields(run: CheckRun, body: Record<string, unknown>) {
  const { name, status, output, started_at, completed_at } = body;
  const conclusion = body.conclusion ?? undefined;
  if (name !== undefined && (typeof name !== 'string' || name === ''))
    return 'name must be a non-empty string';
  if (status !== undefined && !CHECK_STATUSES.includes(status as string))
    return `status must be one of ${CHECK_STATUSES.join(', ')}`;
  if (conclusion !== undefined && !CHECK_CONCLUSIONS.includes(conclusion as string))
    return `conclusion must be one of ${CHECK_CONCLUSIONS.join(', ')}`;
  if (conclusion === 'stale') return 'You cannot change a check run conclusion to stale';
  for (const [field, value] of Object.entries({ started_at, completed_at })) {
    if (value !== undefined && (typeof value !== 'string' || Number.isNaN(Date.parse(value))))
      return `${field} must be an ISO 8601 timestamp`;
  }
  if (output !== undefined) {
    if (!isObject(output) || typeof output.title !== 'string' || output.title === '')
      return 'output.title is required';
    if (typeof output.summary !== 'string') return 'output.summary is required';
    if (characters(output.summary) > MAX_OUTPUT)
      return `output.summary is longer than ${MAX_OUTPUT} characters`;
    if (output.text !== undefined && typeof output.text !== 'string')
      return 'output.text must be a string';
    if (output.text !== undefined && characters(output.text) > MAX_OUTPUT)
      return `output.text is longer than ${MAX_OUTPUT} characters`;
    run.output = { title: output.title, summary: output.summary, text: output.text };
  }
  const wasCompleted = run.status === 'completed';
  const nextStatus = conclusion !== undefined ? 'completed' : ((status as string) ?? run.status);
  if (nextStatus !== 'completed' && completed_at !== undefined)
    return 'conclusion is required when completed_at is given';
  // An update that leaves a run completed keeps its conclusion; leaving `completed` clears it.
  const nextConclusion =
    (conclusion as string | undefined) ?? (nextStatus === 'completed' ? run.conclusion : null);
  if (nextStatus === 'completed' && !nextConclusion)
    return 'conclusion is required when status is completed';
  if (typeof name === 'string') run.name = name;
  if (typeof body.external_id === 'string') run.externalId = body.external_id;
  if (typeof body.details_url === 'string') run.detailsUrl = body.details_url;
  if (started_at !== undefined) run.startedAt = started_at as string;
  if (nextStatus !== 'completed') run.completedAt = null;
  else if (completed_at !== undefined) run.completedAt = completed_at as string;
  else if (!wasCompleted) run.completedAt = isoSeconds(new Date());
  run.status = nextStatus;
  run.conclusion = nextConclusion;
  run.history.push({ status: run.status, conclusion: run.conclusion });
  return undefined;
}

/** docs.github.com/rest/checks/runs#create-a-check-run */
async function createCheckRun({ state, repo, body }: RepoContext) {
  if (!isObject(body)) return invalid('A JSON object is required');
  const { head_sha: headSha } = body;
  if (typeof headSha !== 'string' || !/^[0-9a-f]{40}$/.test(headSha))
    return invalid('head_sha must be a 40-character hexadecimal commit sha');
  if (!(await commitOf(repo.dir, headSha))) return invalid(`No commit found for SHA: ${headSha}`);
  if (typeof body.name !== 'string') return invalid('name is required');
  const run: CheckRun = {
    id: state.nextId(),
    repo: repo.fullName,
    name: body.name,
    headSha,
    status: 'queued',
    conclusion: null,
    externalId: '',
    detailsUrl: null,
    startedAt: isoSeconds(new Date()),
    completedAt: null,
    output: null,
    history: [],
  };
  const problem = applyCheckRunFields(run, body);
  if (problem) return invalid(problem);
  state.checkRuns.set(run.id, run);
  return reply(201, checkRunJson(run));
}

const checkRunOf = ({ state, repo, params }: RepoContext) => {
  const run = state.checkRuns.get(Number(params[0]));
  return run?.repo === repo.fullName ? run : undefined;
};

/** docs.github.com/rest/checks/runs#update-a-check-run: the fields given replace the run's. */
function updateCheckRun(context: RepoContext) {
  const run = checkRunOf(context);
  if (!run) return notFound();
  if (!isObject(context.body)) return invalid('A JSON object is required');
  // Validate on a copy: a refused update leaves the run as it was.
  const updated: CheckRun = { ...run, history: [...run.history] };
  const problem = applyCheckRunFields(updated, context.body);
  if (problem) return invalid(problem);
  Object.assign(run, updated);
  return reply(200, checkRunJson(run));
}

/** docs.github.com/rest/checks/runs#get-a-check-run */
function getCheckRun(context: RepoContext) {
  const run = checkRunOf(context);
  return run ? reply(200, checkRunJson(run)) : notFound();
}

// ---- Issue comments and reactions (docs.github.com/rest/issues/comments, /reactions) ----

const commentJson = (id: number, comment: IssueComment, appId?: number) => ({
  id,
  body: comment.body,
  html_url: `${WEB}/${comment.repo}/issues/${comment.issue}#issuecomment-${id}`,
  user: { login: comment.author },
  // GitHub names the App a comment was made through (docs.github.com/rest/issues/comments).
  performed_via_github_app: comment.author === BOT_LOGIN && appId ? { id: appId } : null,
});

const commentBodyProblem = (body: unknown) => {
  if (!isObject(body) || typeof body.body !== 'string' || body.body === '')
    return 'body is required';
  if (characters(body.body) > MAX_COMMENT)
    return `Body is too long (maximum is ${MAX_COMMENT} characters)`;
  return undefined;
};

const commentOf = ({ state, repo, params }: RepoContext) => {
  const id = Number(params[0]);
  const comment = state.comments.get(id);
  return comment?.repo === repo.fullName ? { id, comment } : undefined;
};

/** docs.github.com/rest/issues/comments#create-an-issue-comment */
function createComment({ state, repo, params, body }: RepoContext) {
  const problem = commentBodyProblem(body);
  if (problem) return invalid(problem);
  const id = state.nextId();
  const text = (body as { body: string }).body;
  const comment = {
    issue: Number(params[0]),
    repo: repo.fullName,
    body: text,
    edits: 0,
    author: BOT_LOGIN,
  };
  state.comments.set(id, comment);
  return reply(201, commentJson(id, comment));
}

/** docs.github.com/rest/issues/comments#update-an-issue-comment */
function updateComment(context: RepoContext) {
  const found = commentOf(context);
  if (!found) return notFound();
  const problem = commentBodyProblem(context.body);
  if (problem) return invalid(problem);
  found.comment.body = (context.body as { body: string }).body;
  found.comment.edits += 1;
  return reply(200, commentJson(found.id, found.comment));
}

/** docs.github.com/rest/issues/comments#list-issue-comments (one page, oldest first) */
function listComments({ state, repo, params }: RepoContext) {
  const issue = Number(params[0]);
  const list = [...state.comments]
    .filter(([, comment]) => comment.repo === repo.fullName && comment.issue === issue)
    .map(([id, comment]) => commentJson(id, comment, state.options.app?.appId));
  return reply(200, list);
}

/**
 * docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment: 201 for a new
 * reaction, 200 when the bot already reacted so.
 */
function createReaction(context: RepoContext) {
  const found = commentOf(context);
  if (!found) return notFound();
  const content = isObject(context.body) ? context.body.content : undefined;
  if (typeof content !== 'string' || !REACTIONS.includes(content))
    return invalid(`content must be one of ${REACTIONS.join(', ')}`);
  const reactions = context.state.reactions;
  const exists = reactions.some((r) => r.commentId === found.id && r.content === content);
  if (!exists) reactions.push({ commentId: found.id, content });
  return reply(exists ? 200 : 201, { content, user: { login: BOT_LOGIN } });
}

// ---- Release assets (docs.github.com/rest/releases/assets) ----

const assetJson = (repo: Repository, releaseId: number, asset: ReleaseAsset) => ({
  id: asset.id,
  name: asset.name,
  label: asset.label ?? null,
  size: asset.data.length,
  content_type: asset.contentType,
  state: 'uploaded',
  browser_download_url: `${WEB}/${repo.fullName}/releases/download/${releaseId}/${asset.name}`,
});

/**
 * docs.github.com/rest/releases/assets#upload-a-release-asset, on the uploads base: the raw file
 * is the body, with Content-Length and Content-Type. Releases themselves are not modelled: any
 * release id of an existing repository takes assets.
 */
function uploadAsset({ state, repo, params, url, request, raw }: RepoContext) {
  const releaseId = Number(params[0]);
  const name = url.searchParams.get('name');
  const contentType = request.headers['content-type'];
  const length = request.headers['content-length'];
  if (!contentType || length === undefined || Number(length) !== raw.length)
    return reply(400, { message: 'Content-Length and Content-Type headers are required' });
  if (!name) return invalid('name is required');
  const assets = state.releaseAssets.get(releaseId) ?? [];
  if (assets.some((asset) => asset.name === name))
    return reply(422, {
      message: 'Validation Failed',
      errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }],
    });
  const label = url.searchParams.get('label') ?? undefined;
  const asset: ReleaseAsset = { id: state.nextId(), name, label, contentType, data: raw };
  state.releaseAssets.set(releaseId, [...assets, asset]);
  return reply(201, assetJson(repo, releaseId, asset));
}

/** docs.github.com/rest/releases/assets#list-release-assets */
function listAssets({ state, repo, params }: RepoContext) {
  const releaseId = Number(params[0]);
  const assets = state.releaseAssets.get(releaseId) ?? [];
  return reply(
    200,
    assets.map((asset) => assetJson(repo, releaseId, asset)),
  );
}

// ---- Routing ----

const repoPath = (rest: string) => new RegExp(`^/repos/([^/]+)/([^/]+)${rest}$`);
const read = (...permissions: string[]): PermissionNeed => ({ permissions, level: 'read' });
const write = (...permissions: string[]): PermissionNeed => ({ permissions, level: 'write' });

/** Every route the fake answers; the first whose method and pattern match serves a request. */
const ROUTES: Route[] = [
  {
    method: 'POST',
    pattern: /^\/app\/installations\/(\d+)\/access_tokens$/,
    auth: 'app',
    handler: ({ state, params, body }) => state.auth.createAccessToken(Number(params[0]), body),
  },
  {
    method: 'GET',
    pattern: /^\/repos\/([^/]+)\/([^/]+)\/installation$/,
    auth: 'app',
    handler: ({ state, params }) => state.auth.getRepoInstallation(params[0]!, params[1]!),
  },
  {
    method: 'DELETE',
    pattern: /^\/installation\/token$/,
    auth: 'token',
    handler: ({ state, request }) => state.auth.revokeToken(request.headers.authorization),
  },
  ...(
    [
      ['GET', '/?', read('metadata'), getRepository],
      ['GET', '/pulls/(\\d+)', read('pull_requests'), getPull],
      ['GET', '/branches/(.+)', read('contents'), getBranch],
      ['GET', '/git/ref/tags/(.+)', read('contents'), getTagRef],
      ['GET', '/git/tags/([0-9a-f]{40})', read('contents'), getTag],
      ['GET', '/commits/(.+)', read('contents'), getCommit],
      ['GET', '/compare/(.+?)\\.\\.\\.(.+)', read('contents'), compareCommits],
      ['GET', '/contents/(.+)', read('contents'), getContent],
      ['GET', '/collaborators/([^/]+)/permission', read('metadata'), getCollaboratorPermission],
      ['POST', '/check-runs', write('checks'), createCheckRun],
      ['PATCH', '/check-runs/(\\d+)', write('checks'), updateCheckRun],
      ['GET', '/check-runs/(\\d+)', read('checks'), getCheckRun],
      ['POST', '/issues/(\\d+)/comments', write('issues', 'pull_requests'), createComment],
      ['GET', '/issues/(\\d+)/comments', read('issues', 'pull_requests'), listComments],
      ['PATCH', '/issues/comments/(\\d+)', write('issues', 'pull_requests'), updateComment],
      [
        'POST',
        '/issues/comments/(\\d+)/reactions',
        write('issues', 'pull_requests'),
        createReaction,
      ],
      ['GET', '/releases/(\\d+)/assets', read('contents'), listAssets],
    ] as const
  ).map(([method, rest, needs, handler]): Route => ({
    method,
    pattern: repoPath(rest),
    auth: 'repo',
    needs,
    handler,
  })),
  {
    method: 'POST',
    pattern: /^\/uploads\/repos\/([^/]+)\/([^/]+)\/releases\/(\d+)\/assets$/,
    auth: 'repo',
    needs: write('contents'),
    handler: uploadAsset,
  },
];

/** Runs `route` for a request whose credentials are checked here, GitHub's way. */
async function dispatch(route: Route, context: Context, groups: string[]): Promise<Reply> {
  const { state, request } = context;
  const authorization = request.headers.authorization;
  if (route.auth === 'app') {
    if (!state.auth.isApp(authorization))
      return reply(401, { message: 'A JSON web token could not be decoded' });
    return route.handler({ ...context, params: groups });
  }
  const token = state.auth.restToken(authorization);
  if (!token) return reply(401, { message: 'Bad credentials' });
  if (route.auth === 'token') return route.handler({ ...context, params: groups });
  const [owner, name, ...params] = groups as [string, string, ...string[]];
  const dir = join(state.options.root, owner, `${name}.git`);
  if (!AppAuth.reaches(token, name) || !(await isRepository(dir))) return notFound();
  if (!AppAuth.grants(token, route.needs))
    return reply(403, { message: 'Resource not accessible by integration' });
  const repo = { owner, name, fullName: `${owner}/${name}`, dir };
  return route.handler({ ...context, params, repo });
}

/** Serves git's smart HTTP protocol (git-scm.com/docs/http-protocol) via `git http-backend`. */
function serveGit(root: string, request: IncomingMessage, response: ServerResponse, url: URL) {
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: url.pathname.slice('/git'.length),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: request.method ?? 'GET',
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
      REMOTE_ADDR: '127.0.0.1',
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  request.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const [name, ...value] = line.split(':');
      if (name!.toLowerCase() === 'status') status = Number.parseInt(value.join(':').trim(), 10);
      else response.setHeader(name!, value.join(':').trim());
    }
    response.writeHead(status);
    response.write(head.subarray(end + 4));
  });
  child.on('close', () => response.end());
}

/** The body as recorded and as handlers see it: parsed JSON, `{size}` for uploads. */
function parseBody(path: string, request: IncomingMessage, raw: Buffer) {
  if (path.startsWith('/uploads/')) return { recorded: { size: raw.length }, json: undefined };
  if (raw.length === 0 || !(request.headers['content-type'] ?? '').includes('json'))
    return { recorded: undefined, json: undefined };
  try {
    const json: unknown = JSON.parse(raw.toString());
    return { recorded: json, json };
  } catch {
    return { recorded: undefined, json: undefined, malformed: true };
  }
}

/**
 * A local stand-in for the parts of GitHub's REST API (docs.github.com/rest) Crossdock uses:
 * repository reads answered from real bare git repositories under `root` (`<root>/<owner>/<repo>.git`,
 * pull request N's head at refs/pull/N/head), git smart HTTP at `/git/<owner>/<repo>.git`, a
 * GitHub App's JWT and installation tokens, check runs, issue comments and reactions, and release
 * asset uploads at `uploadsUrl`. Every request is recorded in `calls`; a route it does not know
 * is also recorded in `unexpected` and answered 500. Resolves once listening; `close()` stops it.
 */
export async function startFakeGitHub(options: FakeGitHubOptions) {
  const calls: GitHubCall[] = [];
  const unexpected: GitHubCall[] = [];
  let lastId = 1000;
  const state: State = {
    options,
    auth: new AppAuth(options),
    checkRuns: new Map(),
    comments: new Map(),
    reactions: [],
    releaseAssets: new Map(),
    nextId: () => ++lastId,
  };

  const server = await listen(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const method = request.method ?? 'GET';
    const gitPath = /^\/git\/([^/]+)\/([^/]+?)\.git(\/|$)/.exec(url.pathname);
    if (gitPath) {
      calls.push({ method, path: url.pathname });
      if (!state.auth.gitAllows(gitPath[1]!, gitPath[2]!, request.headers.authorization)) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="GitHub"' }).end();
        return;
      }
      serveGit(options.root, request, response, url);
      return;
    }
    const raw = await readBody(request);
    const body = parseBody(url.pathname, request, raw);
    const call: GitHubCall = { method, path: url.pathname };
    if (body.recorded !== undefined) call.body = body.recorded;
    calls.push(call);
    const path = safeDecode(url.pathname);
    const route = ROUTES.find(
      (candidate) =>
        candidate.method === method &&
        (candidate.auth !== 'app' || options.app) &&
        path !== undefined &&
        candidate.pattern.test(path),
    );
    let answer: Reply;
    if (!route) {
      unexpected.push(call);
      answer = reply(500, { message: `fake GitHub: unexpected ${method} ${url.pathname}` });
    } else if (body.malformed) {
      answer = reply(400, { message: 'Problems parsing JSON' });
    } else {
      const groups = route.pattern.exec(path!)!.slice(1);
      const context = { state, request, url, params: [], body: body.json, raw };
      answer = await dispatch(route, context, groups);
    }
    response.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8' });
    response.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
  });
  return {
    ...server,
    cloneBaseUrl: `${server.url}/git`,
    uploadsUrl: `${server.url}/uploads`,
    calls,
    unexpected,
    tokens: state.auth.tokens,
    checkRuns: state.checkRuns,
    comments: state.comments,
    reactions: state.reactions,
    releaseAssets: state.releaseAssets,
    /**
     * A comment a person wrote on GitHub (`repo` as owner/name), before its webhook is delivered;
     * returns its id, for the payload's `comment.id`.
     */
    addComment(comment: { repo: string; issue: number; body: string; author: string }): number {
      const id = state.nextId();
      state.comments.set(id, { ...comment, edits: 0 });
      return id;
    },
  };
}

/** The URL-decoded path (Octokit sends `git/ref/tags%2Fv1` for the ref `tags/v1`). */
function safeDecode(path: string) {
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}
