import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { artifactKey } from '../../core/storage';
import type { Database } from '../../db/client';
import { createBuild, type NewBuild, type NewJob } from '../../db/queries/builds';
import { claimJob, completeJob, type NewArtifact } from '../../db/queries/jobs';
import { createPortalApp, type PortalDeps } from '../../portal/app';
import type { TestBucket, TestDatabase } from './services';

/** A job of target `target` on `platform` with a trivial recipe, as portal tests request them. */
export const portalJob = (target: string, platform: string): NewJob => ({
  target,
  platform,
  toolchains: ['native', 'cross'],
  image: 'crossdock/builder-debian:bookworm',
  spec: { script: 'make', artifacts: ['**'], env: {}, network: false, timeoutMinutes: 30 },
});

/**
 * A build request of acme/`repo` at `sha` as portal tests make them: `main` requested by the CLI,
 * one amd64 job; `overrides` replace any of it.
 */
export const portalBuildRequest = (
  repo: string,
  sha: string,
  overrides: Partial<NewBuild> = {},
): NewBuild => ({
  repo: { owner: 'acme', name: repo, cloneUrl: `/srv/git/${repo}.git`, source: 'git' },
  sha,
  ref: 'main',
  trigger: 'cli',
  requester: 'cli:test',
  recipeDigest: 'sha256:0',
  jobs: [portalJob('amd64', 'linux/amd64')],
  ...overrides,
});

/** What one target's job ends as, and the files (name → bytes) it made. */
export type JobOutcome = { state: 'succeeded' | 'failed'; files?: Record<string, Buffer> };

/**
 * Uploads `files` (name → bytes) to `bucket` as claimed `job` of build `input` would (keys of
 * core/storage.ts `artifactKey`), and returns the artifact rows to complete the job with.
 */
export async function uploadArtifacts(
  bucket: TestBucket,
  input: NewBuild,
  job: { id: number; attempt: number; target: string },
  files: Record<string, Buffer>,
): Promise<NewArtifact[]> {
  const artifacts: NewArtifact[] = [];
  for (const [file, content] of Object.entries(files)) {
    const objectKey = artifactKey({
      owner: input.repo.owner,
      repo: input.repo.name,
      sha: input.sha,
      target: job.target,
      jobId: job.id,
      attempt: job.attempt,
      file,
    });
    await bucket.client.putObject(bucket.storage.bucket, objectKey, content, content.length);
    const sha256 = createHash('sha256').update(content).digest('hex');
    artifacts.push({ name: file, objectKey, size: content.length, sha256 });
  }
  return artifacts;
}

/**
 * Stores build `input`, claims each of its jobs as a worker would and completes it as
 * `outcomes[target]` says, uploading its files to `bucket` first (so every artifact row has its
 * object). Returns the build's id.
 */
export async function finishBuild(
  db: Database,
  bucket: TestBucket,
  input: NewBuild,
  outcomes: Record<string, JobOutcome>,
): Promise<number> {
  const { build } = await createBuild(db, input);
  for (;;) {
    const claimed = await claimJob(db, {
      workerId: 'worker-a',
      platforms: [...new Set(input.jobs.map((job) => job.platform))],
      leaseSeconds: 60,
    });
    if (!claimed) break;
    const fence = { jobId: claimed.job.id, attempt: claimed.job.attempt };
    const outcome = outcomes[claimed.job.target];
    if (!outcome) throw new Error(`no outcome given for target ${claimed.job.target}`);
    const artifacts = await uploadArtifacts(bucket, input, claimed.job, outcome.files ?? {});
    await completeJob(db, fence, {
      state: outcome.state,
      exitCode: outcome.state === 'succeeded' ? 0 : 1,
      artifacts,
    });
  }
  return build.id;
}

/**
 * A portal on a test's database and bucket at `portalUrl`, logging nothing, with `options` on
 * top (a page cache, presigned links, sign-in…).
 */
export function createTestPortal(
  database: TestDatabase,
  bucket: TestBucket,
  options: Partial<PortalDeps> & { portalUrl: string },
) {
  return createPortalApp({
    db: database.db,
    storage: bucket.client,
    bucket: bucket.storage.bucket,
    log: pino({ level: 'silent' }),
    ...options,
  });
}
