import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listen } from './http';

const run = promisify(execFile);

/** The REST routes under /repos/{owner}/{repo}/ that the fake answers. */
const ROUTES =
  /^(|pulls\/\d+|branches\/.+|git\/ref\/tags\/.+|git\/tags\/[0-9a-f]{40}|commits\/.+|compare\/[^.]+\.\.\.[^.]+|contents\/.+)$/;

/** One recorded REST call. */
export interface GitHubCall {
  method: string;
  path: string;
}

/**
 * A local stand-in for the GitHub REST endpoints the bot reads (docs.github.com/rest: pulls,
 * branches, git refs and tags, commits, contents), answering from real bare git repositories
 * under `root` (`<root>/<owner>/<repo>.git`, pull request N's head at refs/pull/N/head). The
 * same repositories are served over git's smart HTTP at `/git/<owner>/<repo>.git` through
 * `git http-backend`. Requests must carry `token` (as GitHub's `Authorization: token …`).
 * Calls are recorded; a route it does not know is recorded in `unexpected` and answered 500.
 */
export async function startFakeGitHub(options: { root: string; token: string }) {
  const calls: GitHubCall[] = [];
  const unexpected: GitHubCall[] = [];

  const git = async (repoDir: string, args: string[]) =>
    (await run('git', args, { cwd: repoDir })).stdout.trim();
  const tryGit = (repoDir: string, args: string[]) => git(repoDir, args).catch(() => undefined);
  const json = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const serveGit = (
    request: IncomingMessage,
    response: ServerResponse,
    pathInfo: string,
    query: string,
  ) => {
    const child = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: options.root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: pathInfo,
        QUERY_STRING: query,
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
  };

  const server = await listen(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const call = { method: request.method ?? 'GET', path: url.pathname };
    const auth = request.headers.authorization ?? '';
    if (url.pathname.startsWith('/git/')) {
      const expected = `Basic ${Buffer.from(`x-access-token:${options.token}`).toString('base64')}`;
      // Public repositories clone without a token; a wrong token is refused, as GitHub does.
      if (auth && auth !== expected) {
        response.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
        return;
      }
      calls.push(call);
      serveGit(request, response, url.pathname.slice('/git'.length), url.search.slice(1));
      return;
    }
    if (auth !== `token ${options.token}`) {
      calls.push(call);
      json(response, 401, { message: 'Bad credentials' });
      return;
    }
    const match = /^\/repos\/([^/]+)\/([^/]+)\/?(.*)$/.exec(url.pathname);
    // Octokit sends `git/ref/tags%2Fv1` for the ref `tags/v1`.
    if (match) match[3] = decodeURIComponent(match[3]!);
    if (!match || request.method !== 'GET' || !ROUTES.test(match[3]!)) {
      unexpected.push(call);
      json(response, 500, { message: `fake GitHub: unexpected ${call.method} ${call.path}` });
      return;
    }
    const [, owner, repo, rest] = match as unknown as [string, string, string, string];
    const dir = join(options.root, owner, `${repo}.git`);
    calls.push(call);
    const exists = await tryGit(dir, ['rev-parse', '--git-dir']);
    if (!exists) return json(response, 404, { message: 'Not Found' });
    let m: RegExpExecArray | null;
    const fullName = `${owner}/${repo}`;
    if (rest === '') return json(response, 200, { full_name: fullName, default_branch: 'main' });
    if ((m = /^pulls\/(\d+)$/.exec(rest))) {
      const sha = await tryGit(dir, ['rev-parse', '--verify', `refs/pull/${m[1]}/head^{commit}`]);
      if (!sha) return json(response, 404, { message: 'Not Found' });
      // A pull request whose head is also a branch here is the repository's own; else a fork's.
      const branch = await tryGit(dir, [
        'for-each-ref',
        `--points-at=${sha}`,
        '--format=%(refname:lstrip=2)',
        'refs/heads',
      ]);
      return json(response, 200, {
        number: Number(m[1]),
        state: 'open',
        head: {
          sha,
          ref: branch ? branch.split('\n')[0] : `pr-${m[1]}`,
          repo: { full_name: branch ? fullName : `fork-of-${owner}/${repo}` },
        },
        base: { ref: 'main', repo: { full_name: fullName } },
      });
    }
    if ((m = /^compare\/([^.]+)\.\.\.([^.]+)$/.exec(rest))) {
      const [base, head] = [decodeURIComponent(m[1]!), decodeURIComponent(m[2]!)];
      const [baseSha, headSha] = await Promise.all(
        [base, head].map((ref) => tryGit(dir, ['rev-parse', '--verify', `${ref}^{commit}`])),
      );
      if (!baseSha || !headSha) return json(response, 404, { message: 'Not Found' });
      const ancestor = async (a: string, b: string) =>
        (await tryGit(dir, ['merge-base', '--is-ancestor', a, b])) !== undefined;
      const status =
        baseSha === headSha
          ? 'identical'
          : (await ancestor(baseSha, headSha))
            ? 'ahead'
            : (await ancestor(headSha, baseSha))
              ? 'behind'
              : 'diverged';
      return json(response, 200, { status });
    }
    if ((m = /^branches\/(.+)$/.exec(rest))) {
      const sha = await tryGit(dir, [
        'rev-parse',
        '--verify',
        `refs/heads/${decodeURIComponent(m[1]!)}^{commit}`,
      ]);
      if (!sha) return json(response, 404, { message: 'Branch not found' });
      return json(response, 200, { name: decodeURIComponent(m[1]!), commit: { sha } });
    }
    if ((m = /^git\/ref\/tags\/(.+)$/.exec(rest))) {
      const sha = await tryGit(dir, [
        'rev-parse',
        '--verify',
        `refs/tags/${decodeURIComponent(m[1]!)}`,
      ]);
      if (!sha) return json(response, 404, { message: 'Not Found' });
      const type = await git(dir, ['cat-file', '-t', sha]);
      return json(response, 200, { ref: `refs/tags/${m[1]}`, object: { sha, type } });
    }
    if ((m = /^git\/tags\/([0-9a-f]{40})$/.exec(rest))) {
      const target = await tryGit(dir, ['rev-parse', '--verify', `${m[1]}^{commit}`]);
      if (!target) return json(response, 404, { message: 'Not Found' });
      return json(response, 200, { sha: m[1], object: { sha: target, type: 'commit' } });
    }
    if ((m = /^commits\/(.+)$/.exec(rest))) {
      const sha = await tryGit(dir, [
        'rev-parse',
        '--verify',
        `${decodeURIComponent(m[1]!)}^{commit}`,
      ]);
      if (!sha) return json(response, 422, { message: 'No commit found for SHA' });
      return json(response, 200, { sha });
    }
    if ((m = /^contents\/(.+)$/.exec(rest))) {
      const ref = url.searchParams.get('ref') ?? 'HEAD';
      const path = decodeURIComponent(m[1]!);
      const content = await run('git', ['show', `${ref}:${path}`], {
        cwd: dir,
        encoding: 'buffer',
      }).then(
        (result) => result.stdout,
        () => undefined,
      );
      if (!content) return json(response, 404, { message: 'Not Found' });
      return json(response, 200, {
        type: 'file',
        path,
        encoding: 'base64',
        content: content.toString('base64'),
      });
    }
    throw new Error(`ROUTES and the handlers disagree on ${call.path}`);
  });
  return { ...server, cloneBaseUrl: `${server.url}/git`, calls, unexpected };
}
