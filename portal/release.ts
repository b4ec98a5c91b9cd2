import { CHECKSUMS_FILE } from '../core/attestation';
import { portalUrls } from '../core/urls';
import type { SearchHit } from '../db/queries/portal';
import { buildRefToJson, type BuildDetails } from './build-details';

/** One file of a release as its page and SHA256SUMS list it. */
export interface ReleaseFile {
  /** The name it is listed and downloaded by: the artifact's name, or `<target>/<name>` when several targets made a file of that name. */
  listedName: string;
  /** The artifact's own name (its path under /out). */
  name: string;
  target: string;
  platform: string;
  artifactId: number;
  size: number;
  sha256: string;
}

/**
 * The files of a release build: the artifacts of its succeeded jobs, ordered by platform, target
 * and name. A name made by several targets is listed as `<target>/<name>` for each.
 */
export function releaseFiles(details: BuildDetails): ReleaseFile[] {
  const jobs = details.jobs.filter(({ job }) => job.state === 'succeeded');
  const counts = new Map<string, number>();
  for (const { artifacts } of jobs)
    for (const artifact of artifacts)
      counts.set(artifact.name, (counts.get(artifact.name) ?? 0) + 1);
  return jobs
    .flatMap(({ job, artifacts }) =>
      artifacts.map((artifact) => ({
        listedName:
          counts.get(artifact.name)! > 1 ? `${job.target}/${artifact.name}` : artifact.name,
        name: artifact.name,
        target: job.target,
        platform: job.platform,
        artifactId: artifact.id,
        size: artifact.size,
        sha256: artifact.sha256,
      })),
    )
    .sort(
      (a, b) =>
        a.platform.localeCompare(b.platform) ||
        a.target.localeCompare(b.target) ||
        a.name.localeCompare(b.name),
    );
}

/**
 * The SHA256SUMS file of a release: one line per file, `<sha256 hex>  <listed name>\n`, sorted by
 * name, in the format `sha256sum --check` reads (GNU coreutils: hash, two spaces for binary-safe
 * text mode, name). Names holding a newline or backslash are left out: coreutils escapes them in
 * a form other tools do not read.
 */
export function sha256Sums(files: ReleaseFile[]): string {
  return files
    .filter((file) => !/[\n\\]/.test(file.listedName))
    .map((file) => `${file.sha256}  ${file.listedName}\n`)
    .sort((a, b) => a.slice(66).localeCompare(b.slice(66)))
    .join('');
}

/**
 * The JSON form of a release (GET /api/v1/repos/:owner/:repo/releases/:tag): its tag, commit,
 * build, finish time (ISO 8601), page and SHA256SUMS URLs, and its files with size (bytes),
 * sha256 (hex) and stable download URL.
 */
export function releaseToJson(base: string, details: BuildDetails, files: ReleaseFile[]) {
  const { build, repo } = details;
  const tag = build.tag!;
  return {
    repo: `${repo.owner}/${repo.name}`,
    tag,
    sha: build.sha,
    buildId: build.id,
    buildUrl: portalUrls.build(base, build.id),
    finishedAt: build.finishedAt?.toISOString() ?? null,
    url: portalUrls.release(base, repo.owner, repo.name, tag),
    sha256SumsUrl: portalUrls.releaseDownload(base, repo.owner, repo.name, tag, CHECKSUMS_FILE),
    files: files.map((file) => ({
      name: file.listedName,
      target: file.target,
      platform: file.platform,
      size: file.size,
      sha256: file.sha256,
      downloadUrl: releaseFileUrl(base, details, file),
    })),
  };
}

/** The JSON form of a search hit: what matched, its repository and its newest build. */
export function searchHitToJson(base: string, hit: SearchHit) {
  const { build, repo } = hit;
  return {
    kind: hit.kind,
    ...buildRefToJson(build, repo),
    buildId: build.id,
    buildUrl: portalUrls.build(base, build.id),
    commitUrl: portalUrls.commit(base, repo.owner, repo.name, build.sha),
  };
}

/**
 * Where a release file is downloaded: its stable release URL, or its commit URL per target when
 * several targets made a file of its name.
 */
export function releaseFileUrl(base: string, details: BuildDetails, file: ReleaseFile): string {
  const { build, repo } = details;
  return file.listedName === file.name
    ? portalUrls.releaseDownload(base, repo.owner, repo.name, build.tag!, file.name)
    : portalUrls.commitDownload(base, repo.owner, repo.name, build.sha, file.target, file.name);
}
