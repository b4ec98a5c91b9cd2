import { describe, expect, it } from 'vitest';
import { loadRetentionConfig } from './config';

describe('loadRetentionConfig', () => {
  it('fills in the defaults', () => {
    expect(loadRetentionConfig({})).toEqual({
      policy: { pullRequestDays: 14, branchDays: 30 },
      cleanupIntervalMs: 3_600_000,
      dryRun: false,
    });
  });

  it('reads every setting', () => {
    expect(
      loadRetentionConfig({
        CROSSDOCK_RETENTION_PULL_REQUEST_DAYS: '7',
        CROSSDOCK_RETENTION_BRANCH_DAYS: '90',
        CROSSDOCK_RETENTION_CLEANUP_INTERVAL_MINUTES: '0',
        CROSSDOCK_RETENTION_DRY_RUN: 'true',
      }),
    ).toEqual({
      policy: { pullRequestDays: 7, branchDays: 90 },
      cleanupIntervalMs: 0,
      dryRun: true,
    });
  });

  it.each([
    ['CROSSDOCK_RETENTION_PULL_REQUEST_DAYS', '0'],
    ['CROSSDOCK_RETENTION_PULL_REQUEST_DAYS', '1.5'],
    ['CROSSDOCK_RETENTION_BRANCH_DAYS', 'forever'],
    ['CROSSDOCK_RETENTION_CLEANUP_INTERVAL_MINUTES', '-5'],
    ['CROSSDOCK_RETENTION_DRY_RUN', 'yes'],
  ])('refuses %s=%s, naming it', (name, value) => {
    expect(() => loadRetentionConfig({ [name]: value })).toThrow(
      new RegExp(`^invalid retention configuration:\\n  ${name}: `),
    );
  });
});
