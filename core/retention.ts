/**
 * Artifact retention: how long a build's artifacts are kept (docs/retention.md). Pure rules; the
 * database query that finds the builds due for deletion (db/queries/retention.ts `dueBuilds`)
 * encodes the same rules in SQL, and a test checks that the two agree.
 *
 * Every build falls into exactly one class, tried in this order:
 *
 * 1. `pinned`: someone pinned it (`builds.pinned`). Kept until unpinned.
 * 2. `tag`: a build of a tag (`v1.2.0`). Kept forever: release managers' installers and the
 *    release download URLs must keep working.
 * 3. `pull-request`: a build of a pull request. Expires `pullRequestDays` (default 14) after it
 *    finished.
 * 4. `branch`: a build of a branch (not a pull request, not a tag). The latest build of the
 *    branch, per target, is kept: for each target, the newest build of the branch, of trusted
 *    code, whose job for that target succeeded — exactly the build that
 *    `/:owner/:repo/branches/<branch>/latest/<target>/<file>` serves, so that URL never breaks.
 *    A build that is the latest for any of its targets keeps all its artifacts. Any other branch
 *    build (an older one, a failed one, one of untrusted code) expires `branchDays` (default 30)
 *    after it finished.
 * 5. `other`: anything else, e.g. a build of a bare sha. Expires `branchDays` after it finished.
 *
 * A build that has not finished yet does not expire (its expiry is counted from when it
 * finishes). Days are periods of 24 hours (86,400,000 ms), counted from `finished_at`.
 */

import { plural } from './format';

/** The retention classes, in the order they are tried. */
export const RETENTION_CLASSES = ['pinned', 'tag', 'pull-request', 'branch', 'other'] as const;
export type RetentionClass = (typeof RETENTION_CLASSES)[number];

/** How long builds that expire are kept, in whole days after they finished. */
export interface RetentionPolicy {
  /** Pull request builds. */
  pullRequestDays: number;
  /** Branch builds that are not the latest of their branch, and builds of anything else. */
  branchDays: number;
}

/** The defaults: GitHub Actions keeps artifacts 90 days; a self-hosted store is smaller. */
export const DEFAULT_RETENTION_POLICY: RetentionPolicy = { pullRequestDays: 14, branchDays: 30 };

const DAY_MS = 86_400_000;

/** What the rules need to know of a build (columns of `builds`, and one fact about its jobs). */
export interface RetentionFacts {
  pinned: boolean;
  tag: string | null;
  pullNumber: number | null;
  branch: string | null;
  /** When it finished; null while queued or running. */
  finishedAt: Date | null;
  /** When the cleanup deleted its artifacts; null while they are kept. */
  artifactsDeletedAt: Date | null;
  /**
   * The targets for which this is the latest build of its branch (see class `branch` above),
   * sorted; empty for a build that is not of a branch.
   */
  latestOfBranchFor: readonly string[];
  /** All targets of the build, sorted: to say "latest for amd64" when it is not for all. */
  targets: readonly string[];
}

/** What retention says of one build, for pages and for the cleanup. */
export interface RetentionInfo {
  class: RetentionClass;
  /**
   * When its artifacts expire: from then on the cleanup may delete them (it runs every interval,
   * so they go at the next run after). Null when they are kept (pinned, tag, latest of its
   * branch) or when the build has not finished yet.
   */
  expiresAt: Date | null;
  /** When the cleanup deleted its artifacts; null while they are kept. */
  deletedAt: Date | null;
  /**
   * For people, one of: "kept: pinned", "kept: tag v1.2.0", "kept: latest build of main",
   * "kept: latest build of main for arm64", "expires 2026-12-05", "expires 14 days after it
   * finishes" (or for a running branch build "expires 30 days after it finishes, unless it is
   * the latest build of main"), "artifacts deleted 2026-12-06". Dates are UTC (YYYY-MM-DD).
   */
  reason: string;
}

/** `date` as YYYY-MM-DD in UTC, as retention reasons write it. */
export function formatRetentionDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** `finishedAt` plus `days` days of 24 hours. */
export function expiryAfter(finishedAt: Date, days: number): Date {
  return new Date(finishedAt.getTime() + days * DAY_MS);
}

/**
 * The latest instant a build may have finished and be due at `now`, for a class kept `days`
 * days: `now` minus `days` days of 24 hours. A build is due when `finishedAt <= cutoff`.
 */
export function retentionCutoff(now: Date, days: number): Date {
  return new Date(now.getTime() - days * DAY_MS);
}

/**
 * The retention class of a build, when its artifacts expire, and why, under `policy` (see the
 * rules at the top of this file). Pure; throws nothing.
 */
export function retentionOf(build: RetentionFacts, policy: RetentionPolicy): RetentionInfo {
  const deletedAt = build.artifactsDeletedAt;
  const kept = (cls: RetentionClass, reason: string): RetentionInfo => ({
    class: cls,
    expiresAt: null,
    deletedAt,
    reason: deletedAt ? `artifacts deleted ${formatRetentionDate(deletedAt)}` : reason,
  });
  const expiring = (cls: RetentionClass, days: number): RetentionInfo => {
    const expiresAt = build.finishedAt ? expiryAfter(build.finishedAt, days) : null;
    const unless = cls === 'branch' ? `, unless it is the latest build of ${build.branch}` : '';
    const reason = deletedAt
      ? `artifacts deleted ${formatRetentionDate(deletedAt)}`
      : expiresAt
        ? `expires ${formatRetentionDate(expiresAt)}`
        : `expires ${plural(days, 'day')} after it finishes${unless}`;
    return { class: cls, expiresAt, deletedAt, reason };
  };

  if (build.pinned) return kept('pinned', 'kept: pinned');
  if (build.tag !== null) return kept('tag', `kept: tag ${build.tag}`);
  if (build.pullNumber !== null) return expiring('pull-request', policy.pullRequestDays);
  if (build.branch !== null) {
    const latest = build.latestOfBranchFor;
    if (latest.length === 0) return expiring('branch', policy.branchDays);
    const all = build.targets.every((target) => latest.includes(target));
    return kept(
      'branch',
      `kept: latest build of ${build.branch}${all ? '' : ` for ${latest.join(', ')}`}`,
    );
  }
  return expiring('other', policy.branchDays);
}

/**
 * Whether the cleanup deletes the build's artifacts at `now`: they expired (`expiresAt <= now`)
 * and are not deleted yet.
 */
export function isExpired(info: RetentionInfo, now: Date): boolean {
  return info.deletedAt === null && info.expiresAt !== null && info.expiresAt <= now;
}
