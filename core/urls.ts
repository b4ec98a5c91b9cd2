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
  jobLog: (base: string, jobId: number) => `${base}/jobs/${jobId}/log`,
  /** The exact bytes of one artifact; `file` is its name (path under /out), URL-encoded per segment. */
  artifactDownload: (base: string, artifactId: number, file: string) =>
    `${base}/artifacts/${artifactId}/download/${file.split('/').map(encodeURIComponent).join('/')}`,
};
