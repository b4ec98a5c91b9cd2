import { createHash } from 'node:crypto';
import type { Octokit } from '@octokit/rest';
import type { Client as StorageClient } from 'minio';
import type { Logger } from '../../core/logger';
import type { Database } from '../../db/client';
import { listArtifactsByJob } from '../../db/queries/artifacts';
import { getRepoById } from '../../db/queries/repos';
import {
  claimPullComment,
  listCheckRuns,
  listHolds,
  listPullBuilds,
  listRecentReleases,
  listReleaseArtifactsToUpload,
  listReleases,
  listUnreportedGitHubBuilds,
  releasePullComment,
  forgetPullComment,
  savePullComment,
  saveCheckRun,
  saveReleaseAsset,
} from '../../db/queries/github';
import type { Repo } from '../../db/queries/repos';
import { loadBuildView } from '../build-view';
import { httpStatus } from '../sources/github';
import { startPassLoop, type PassLoop } from '../pass-loop';
import { PULL_COMMENT_MARKER, renderCheckRun, renderPullComment } from './render';

/** The part of an installation's Octokit the reporter uses (Probot's `context.octokit` is one). */
export type GitHubClient = Pick<Octokit, 'rest' | 'request'>;

/** Gives the Octokit of a GitHub App installation (Probot's `probot.auth(installationId)`). */
export type InstallationAuth = (installationId: number) => Promise<GitHubClient>;

export interface GitHubReporter extends PassLoop {
  /** Rewrites a pull request's comment on the next pass (after a hold, refusal or approval). */
  refreshPull(repoId: number, pullNumber: number): void;
  /** Attaches a tag's artifacts to its published releases on the next pass. */
  refreshRelease(repoId: number, tag: string): void;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The name of an artifact as a release asset: its path with `/` as `-`, prefixed with the target
 * unless the name already has it as a word (`hello_2.10_arm64.deb` for arm64), so that the same
 * file name from two targets (SHA256SUMS) stays apart.
 */
export function releaseAssetName(target: string, artifactName: string): string {
  const flat = artifactName.replaceAll('/', '-');
  const escaped = target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[-_.])${escaped}([-_.]|$)`).test(flat) ? flat : `${target}-${flat}`;
}

/**
 * Reports builds to GitHub through the App installation in their `notify.github`: one check run
 * per job (created at the first pass, then updated at each state change, each change sent once:
 * github_check_runs), the pull request's one comment (github_pull_comments; posted by the one
 * pass that claims it, edited afterwards only when its body changed), and a tag's artifacts
 * uploaded to its published releases as soon as they exist (github_release_assets; an asset name
 * GitHub already has is recorded as refused, not retried). Runs in passes of startPassLoop.
 */
export function startGitHubReporter(options: {
  db: Database;
  /** The App's id: a comment is adopted as Crossdock's only if this App made it. */
  appId: number;
  auth: InstallationAuth;
  /** Where artifacts are read from for release uploads. */
  storage: { client: StorageClient; bucket: string };
  portalUrl: string;
  log: Logger;
  pollMs?: number;
}): GitHubReporter {
  const { db, auth, portalUrl, log } = options;
  const pulls = new Map<string, { repoId: number; pullNumber: number }>();
  const releases = new Map<string, { repoId: number; tag: string }>();

  const reportBuild = async (buildId: number) => {
    const view = await loadBuildView(db, buildId);
    const installationId = view?.build.notify.github?.installationId;
    if (!view || installationId === undefined) return;
    const octokit = await auth(installationId);
    const { build, repo } = view;
    const checkRuns = await listCheckRuns(
      db,
      view.jobs.map((job) => job.id),
    );
    for (const job of view.jobs) {
      const known = checkRuns.get(job.id);
      if (known?.reportedState === job.state) continue;
      const fields = renderCheckRun(view, job, portalUrl);
      const target = { owner: repo.owner, repo: repo.name };
      if (known) {
        await octokit.rest.checks.update({ ...target, check_run_id: known.checkRunId, ...fields });
        await saveCheckRun(db, job.id, known.checkRunId, job.state);
      } else {
        const created = await octokit.rest.checks.create({
          ...target,
          head_sha: build.sha,
          ...fields,
        });
        await saveCheckRun(db, job.id, created.data.id, job.state);
      }
      log.debug({ buildId, jobId: job.id, state: job.state }, 'check run updated');
    }
    if (build.pullNumber !== null) await reportPull(repo, build.pullNumber, octokit);
    // Uploaded in the pass's release stage, once per tag however many of its builds changed.
    if (build.tag !== null)
      releases.set(`${repo.id}@${build.tag}`, { repoId: repo.id, tag: build.tag });
  };

  const reportPull = async (repo: Repo, pullNumber: number, octokit: GitHubClient) => {
    const pullBuilds = await listPullBuilds(db, repo.id, pullNumber);
    const artifactsByJob = await listArtifactsByJob(
      db,
      pullBuilds.flatMap(({ jobs }) => jobs.map((job) => job.id)),
    );
    const held = (await listHolds(db, repo.id, pullNumber)).map((hold) => ({
      sha: hold.sha,
      text: hold.request.text,
    }));
    const claim = await claimPullComment(db, repo.id, pullNumber);
    const body = renderPullComment(
      { pullNumber, builds: pullBuilds, artifactsByJob, held, notice: claim.notice },
      portalUrl,
    );
    const target = { owner: repo.owner, repo: repo.name };
    if (claim.post) {
      try {
        // A comment this App posted from a process that died before recording it is adopted,
        // not doubled; a look-alike someone else wrote is not.
        let mine: { id: number } | undefined;
        for (let page = 1; !mine; page++) {
          const { data } = await octokit.rest.issues.listComments({
            ...target,
            issue_number: pullNumber,
            per_page: 100,
            page,
          });
          mine = data.find(
            (comment) =>
              comment.body?.startsWith(PULL_COMMENT_MARKER) &&
              comment.performed_via_github_app?.id === options.appId,
          );
          if (data.length < 100) break;
        }
        const commentId = mine
          ? (await octokit.rest.issues.updateComment({ ...target, comment_id: mine.id, body })).data
              .id
          : (await octokit.rest.issues.createComment({ ...target, issue_number: pullNumber, body }))
              .data.id;
        await savePullComment(db, repo.id, pullNumber, commentId, digest(body));
        log.info({ pullNumber, commentId }, 'pull request comment posted');
      } catch (error) {
        await releasePullComment(db, repo.id, pullNumber);
        throw error;
      }
    } else if (claim.commentId && claim.bodyDigest !== digest(body)) {
      try {
        await octokit.rest.issues.updateComment({ ...target, comment_id: claim.commentId, body });
      } catch (error) {
        // Someone deleted it: the next pass posts it again.
        if (httpStatus(error) === 404) await forgetPullComment(db, repo.id, pullNumber);
        throw error;
      }
      await savePullComment(db, repo.id, pullNumber, claim.commentId, digest(body));
    }
  };

  const uploadReleaseAssets = async (repo: Repo, tag: string) => {
    for (const release of await listReleases(db, repo.id, tag)) {
      const pending = await listReleaseArtifactsToUpload(db, release.releaseId, repo.id, tag);
      if (pending.length === 0) continue;
      const client = await auth(release.installationId);
      for (const artifact of pending) {
        const name = releaseAssetName(artifact.target, artifact.name);
        const data = await readObject(options.storage, artifact.objectKey);
        try {
          const uploaded = await client.rest.repos.uploadReleaseAsset({
            owner: repo.owner,
            repo: repo.name,
            release_id: release.releaseId,
            url: release.uploadUrl,
            name,
            data: data as unknown as string,
            // fetch sets Content-Length from the buffer (GitHub requires it).
            headers: { 'content-type': 'application/octet-stream' },
          });
          await saveReleaseAsset(db, {
            releaseId: release.releaseId,
            artifactId: artifact.id,
            name,
            assetId: uploaded.data.id,
          });
          log.info(
            { releaseId: release.releaseId, name, size: data.length },
            'release asset uploaded',
          );
        } catch (error) {
          if (httpStatus(error) !== 422) throw error;
          // The same file already there (an upload whose answer was lost) is adopted.
          const { data: existing } = await client.rest.repos.listReleaseAssets({
            owner: repo.owner,
            repo: repo.name,
            release_id: release.releaseId,
            per_page: 100,
          });
          const same = existing.find(
            (asset) =>
              asset.name === name && asset.size === data.length && asset.state === 'uploaded',
          );
          if (same) {
            await saveReleaseAsset(db, {
              releaseId: release.releaseId,
              artifactId: artifact.id,
              name,
              assetId: same.id,
            });
            continue;
          }
          const reason = `GitHub refused the asset name ${name}: the release already has an asset by that name`;
          await saveReleaseAsset(db, {
            releaseId: release.releaseId,
            artifactId: artifact.id,
            name,
            error: reason,
          });
          log.warn({ releaseId: release.releaseId, name }, 'release asset refused');
        }
      }
    }
  };

  const pass = async () => {
    const attempt = async (what: Record<string, unknown>, action: () => Promise<void>) => {
      try {
        await action();
      } catch (error) {
        log.warn({ err: error, ...what }, 'reporting to GitHub failed; retrying on the next pass');
      }
    };
    for (const buildId of await listUnreportedGitHubBuilds(db))
      await attempt({ buildId }, () => reportBuild(buildId));
    for (const [key, { repoId, pullNumber }] of pulls) {
      pulls.delete(key);
      await attempt({ repoId, pullNumber }, async () => {
        const repo = await getRepoById(db, repoId);
        if (!repo?.githubInstallationId) return;
        await reportPull(repo, pullNumber, await auth(repo.githubInstallationId));
      });
    }
    // Releases asked for, and recent ones again in case an upload failed: each tag once.
    for (const release of await listRecentReleases(db))
      releases.set(`${release.repoId}@${release.tag}`, release);
    const wanted = [...releases.values()];
    releases.clear();
    for (const { repoId, tag } of wanted) {
      await attempt({ repoId, tag }, async () => {
        const repo = await getRepoById(db, repoId);
        if (repo) await uploadReleaseAssets(repo, tag);
      });
    }
  };

  const loop = startPassLoop({ db, pass, log, pollMs: options.pollMs });
  return {
    ...loop,
    refreshPull(repoId, pullNumber) {
      pulls.set(`${repoId}#${pullNumber}`, { repoId, pullNumber });
      loop.poke();
    },
    refreshRelease(repoId, tag) {
      releases.set(`${repoId}@${tag}`, { repoId, tag });
      loop.poke();
    },
  };
}

/** An object's bytes, whole (release assets are uploaded with a Content-Length). */
async function readObject(
  storage: { client: StorageClient; bucket: string },
  key: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.client.getObject(storage.bucket, key))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
