/**
 * The portal's URL forms, shared by every part that links to it (Slack messages, the CLI,
 * GitHub check runs) and by the portal's router. `base` is the portal's public URL without a
 * trailing slash, e.g. http://127.0.0.1:8080.
 */
export const portalUrls = {
  repo: (base: string, owner: string, repo: string) => `${base}/${owner}/${repo}`,
  commit: (base: string, owner: string, repo: string, sha: string) =>
    `${base}/${owner}/${repo}/commit/${sha}`,
  build: (base: string, buildId: number) => `${base}/builds/${buildId}`,
  /** A branch's page: the newest successful build per target, and its recent builds. */
  branch: (base: string, owner: string, repo: string, branch: string) =>
    `${base}/${owner}/${repo}/branches/${encodeURIComponent(branch)}`,
  /** A pull request's page: its builds, newest first. */
  pull: (base: string, owner: string, repo: string, pullNumber: number) =>
    `${base}/${owner}/${repo}/pull/${pullNumber}`,
  /** An artifact's page: what it is, where it came from, its links and how long it is kept. */
  artifact: (base: string, artifactId: number) => `${base}/artifacts/${artifactId}`,
  // The JSON API of the pages above (docs/portal.md "JSON API").
  buildApi: (base: string, buildId: number) => `${base}/api/v1/builds/${buildId}`,
  buildsApi: (base: string) => `${base}/api/v1/builds`,
  repoApi: (base: string, owner: string, repo: string) => `${base}/api/v1/repos/${owner}/${repo}`,
  branchApi: (base: string, owner: string, repo: string, branch: string) =>
    `${base}/api/v1/repos/${owner}/${repo}/branches/${encodeURIComponent(branch)}`,
  pullApi: (base: string, owner: string, repo: string, pullNumber: number) =>
    `${base}/api/v1/repos/${owner}/${repo}/pulls/${pullNumber}`,
  artifactApi: (base: string, artifactId: number) => `${base}/api/v1/artifacts/${artifactId}`,
  jobLog: (base: string, jobId: number) => `${base}/jobs/${jobId}/log`,
  /** The log page of one attempt (1, 2, …) of a job. */
  jobAttemptLog: (base: string, jobId: number, attempt: number) =>
    `${base}/jobs/${jobId}/log?attempt=${attempt}`,
  /** A job attempt's log as Server-Sent Events, after line `after` (portal/live-log.ts). */
  jobLogEvents: (base: string, jobId: number, attempt: number, after: number) =>
    `${base}/jobs/${jobId}/log/events?attempt=${attempt}&after=${after}`,
  /** A job's log as JSON, to tail it: `?attempt=N&from=SEQ`. */
  jobLogApi: (base: string, jobId: number) => `${base}/api/v1/jobs/${jobId}/log`,
  /** The fleet page: workers and queue depth. */
  workers: (base: string) => `${base}/workers`,
  /** The fleet as JSON. */
  workersApi: (base: string) => `${base}/api/v1/workers`,
  /** Queue depth per run platform as JSON. */
  queueApi: (base: string) => `${base}/api/v1/queue`,
  /** The exact bytes of one artifact; `file` is its name (path under /out), URL-encoded per segment. */
  artifactDownload: (base: string, artifactId: number, file: string) =>
    `${base}/artifacts/${artifactId}/download/${fileSegments(file)}`,
  /** The release page of tag `tag` (its newest successful build of trusted code). */
  release: (base: string, owner: string, repo: string, tag: string) =>
    `${base}/${owner}/${repo}/releases/${encodeURIComponent(tag)}`,
  /** Search by sha prefix, pull request, tag or branch: the page, and the same as JSON. */
  search: (base: string, query: string) => `${base}/search?q=${encodeURIComponent(query)}`,
  searchApi: (base: string, query: string) =>
    `${base}/api/v1/search?q=${encodeURIComponent(query)}`,
  /** A repository's releases as JSON, and one release (`latest`: the newest). */
  releasesApi: (base: string, owner: string, repo: string) =>
    `${base}/api/v1/repos/${owner}/${repo}/releases`,
  releaseApi: (base: string, owner: string, repo: string, tag: string) =>
    `${base}/api/v1/repos/${owner}/${repo}/releases/${encodeURIComponent(tag)}`,
  /** Starts signing in, then comes back to `returnTo` (a path on the portal). */
  signIn: (base: string, returnTo = '/') =>
    `${base}/auth/login?return_to=${encodeURIComponent(returnTo)}`,
  /** Signs out (POST). */
  signOut: (base: string) => `${base}/auth/logout`,
  /** The signed-in user's personal API tokens: the page, and as JSON. */
  apiTokens: (base: string) => `${base}/settings/tokens`,
  apiTokensApi: (base: string) => `${base}/api/v1/tokens`,
  /** The OpenAPI document of the JSON API. */
  openApi: (base: string) => `${base}/api/v1/openapi.json`,
  /** The Atom feed of a repository's releases. */
  releasesFeed: (base: string, owner: string, repo: string) =>
    `${base}/${owner}/${repo}/releases.atom`,
  /** Redirects to the release page of the newest release. */
  latestRelease: (base: string, owner: string, repo: string) =>
    `${base}/${owner}/${repo}/releases/latest`,
  /** SVG status badge of a branch's newest finished build, or of one target's job in it. */
  branchBadge: (base: string, owner: string, repo: string, branch: string, target?: string) =>
    `${base}/${owner}/${repo}/branches/${encodeURIComponent(branch)}/${target === undefined ? 'badge.svg' : `badges/${encodeURIComponent(target)}.svg`}`,
  // Stable download URLs (docs/portal.md): they name what to download, not one artifact row, so
  // they stay valid as builds come and go.
  /** File `file` of the newest successful build of tag `tag`, of trusted code. */
  releaseDownload: (base: string, owner: string, repo: string, tag: string, file: string) =>
    `${base}/${owner}/${repo}/releases/${encodeURIComponent(tag)}/download/${fileSegments(file)}`,
  /** File `file` of the newest successful build of any tag, of trusted code. */
  latestReleaseDownload: (base: string, owner: string, repo: string, file: string) =>
    `${base}/${owner}/${repo}/releases/latest/download/${fileSegments(file)}`,
  /** File `file` of target `target` of the newest build of commit `sha` where it succeeded. */
  commitDownload: (
    base: string,
    owner: string,
    repo: string,
    sha: string,
    target: string,
    file: string,
  ) => `${base}/${owner}/${repo}/commit/${sha}/${encodeURIComponent(target)}/${fileSegments(file)}`,
  /** File `file` of target `target` of the newest build of branch `branch` where it succeeded. */
  branchDownload: (
    base: string,
    owner: string,
    repo: string,
    branch: string,
    target: string,
    file: string,
  ) =>
    `${base}/${owner}/${repo}/branches/${encodeURIComponent(branch)}/latest/${encodeURIComponent(target)}/${fileSegments(file)}`,
};

/** An artifact's name (its path under /out) as URL path segments, each percent-encoded. */
export function fileSegments(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}
