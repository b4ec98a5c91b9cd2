import { z } from 'zod';
import { parseEnv } from '../../core/config';
import { DEFAULT_RETENTION_POLICY, type RetentionPolicy } from '../../core/retention';

const days = (fallback: number) => z.coerce.number().int().min(1).max(36_500).default(fallback);

const schema = z.object({
  CROSSDOCK_RETENTION_PULL_REQUEST_DAYS: days(DEFAULT_RETENTION_POLICY.pullRequestDays),
  CROSSDOCK_RETENTION_BRANCH_DAYS: days(DEFAULT_RETENTION_POLICY.branchDays),
  CROSSDOCK_RETENTION_CLEANUP_INTERVAL_MINUTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 60)
    .default(60),
  CROSSDOCK_RETENTION_DRY_RUN: z
    .enum(['true', 'false', '1', '0'], { message: 'must be true or false' })
    .default('false')
    .transform((value) => value === 'true' || value === '1'),
});

/** How the portal keeps artifacts and runs the cleanup (docs/retention.md). */
export interface RetentionConfig {
  /** Days pull request builds, and older branch builds and other builds, are kept. */
  policy: RetentionPolicy;
  /**
   * Milliseconds between cleanup runs in the portal; 0 when the portal runs none (the operator
   * runs `npm run cleanup` from cron or a systemd timer instead).
   */
  cleanupIntervalMs: number;
  /** Only log what the cleanup would delete; delete nothing. */
  dryRun: boolean;
}

/**
 * Reads and validates the retention settings from `env` (names in docs/configuration.md, all
 * optional). Throws an Error naming each bad variable, e.g. "invalid retention configuration:\n
 * CROSSDOCK_RETENTION_PULL_REQUEST_DAYS: Too small: expected number to be >=1".
 */
export function loadRetentionConfig(env: NodeJS.ProcessEnv = process.env): RetentionConfig {
  const c = parseEnv(schema, env, 'retention');
  return {
    policy: {
      pullRequestDays: c.CROSSDOCK_RETENTION_PULL_REQUEST_DAYS,
      branchDays: c.CROSSDOCK_RETENTION_BRANCH_DAYS,
    },
    cleanupIntervalMs: c.CROSSDOCK_RETENTION_CLEANUP_INTERVAL_MINUTES * 60_000,
    dryRun: c.CROSSDOCK_RETENTION_DRY_RUN,
  };
}
