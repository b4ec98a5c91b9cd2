import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETENTION_POLICY,
  expiryAfter,
  isExpired,
  retentionCutoff,
  retentionOf,
  type RetentionFacts,
} from './retention';

const FINISHED = new Date('2026-11-21T10:30:00Z');
const facts = (overrides: Partial<RetentionFacts>): RetentionFacts => ({
  pinned: false,
  tag: null,
  pullNumber: null,
  branch: null,
  finishedAt: FINISHED,
  artifactsDeletedAt: null,
  latestOfBranchFor: [],
  targets: ['amd64', 'arm64'],
  ...overrides,
});
const policy = DEFAULT_RETENTION_POLICY;

describe('retentionOf', () => {
  it.each([
    [
      'a pull request build: 14 days after it finished',
      facts({ pullNumber: 123, branch: 'feature' }),
      { class: 'pull-request', expiresAt: new Date('2026-12-05T10:30:00Z') },
      'expires 2026-12-05',
    ],
    [
      'an older branch build: 30 days after it finished',
      facts({ branch: 'main' }),
      { class: 'branch', expiresAt: new Date('2026-12-21T10:30:00Z') },
      'expires 2026-12-21',
    ],
    [
      'the latest build of a branch for every target: kept',
      facts({ branch: 'main', latestOfBranchFor: ['amd64', 'arm64'] }),
      { class: 'branch', expiresAt: null },
      'kept: latest build of main',
    ],
    [
      'the latest build of a branch for some targets: kept, saying which',
      facts({ branch: 'main', latestOfBranchFor: ['arm64'] }),
      { class: 'branch', expiresAt: null },
      'kept: latest build of main for arm64',
    ],
    [
      'a tag build: kept forever, whatever its age',
      facts({ tag: 'v1.2.0', finishedAt: new Date('2020-01-01T00:00:00Z') }),
      { class: 'tag', expiresAt: null },
      'kept: tag v1.2.0',
    ],
    [
      'a pinned pull request build: kept',
      facts({ pinned: true, pullNumber: 7 }),
      { class: 'pinned', expiresAt: null },
      'kept: pinned',
    ],
    [
      'pinned wins over tag',
      facts({ pinned: true, tag: 'v1.2.0' }),
      { class: 'pinned', expiresAt: null },
      'kept: pinned',
    ],
    [
      'a tag wins over a pull request number',
      facts({ tag: 'v2.0.0', pullNumber: 9 }),
      { class: 'tag', expiresAt: null },
      'kept: tag v2.0.0',
    ],
    [
      'a pull request build is never "latest of a branch"',
      facts({ pullNumber: 5, branch: 'main', latestOfBranchFor: ['amd64'] }),
      { class: 'pull-request', expiresAt: new Date('2026-12-05T10:30:00Z') },
      'expires 2026-12-05',
    ],
    [
      'a build of a bare sha: as an older branch build',
      facts({}),
      { class: 'other', expiresAt: new Date('2026-12-21T10:30:00Z') },
      'expires 2026-12-21',
    ],
    [
      'a build still running: expiry counted from when it finishes',
      facts({ pullNumber: 3, finishedAt: null }),
      { class: 'pull-request', expiresAt: null },
      'expires 14 days after it finishes',
    ],
    [
      'a branch build still running: it may become the latest',
      facts({ branch: 'main', finishedAt: null }),
      { class: 'branch', expiresAt: null },
      'expires 30 days after it finishes, unless it is the latest build of main',
    ],
    [
      'a build whose artifacts were deleted says when',
      facts({ pullNumber: 3, artifactsDeletedAt: new Date('2026-12-06T01:00:00Z') }),
      { class: 'pull-request', deletedAt: new Date('2026-12-06T01:00:00Z') },
      'artifacts deleted 2026-12-06',
    ],
    [
      'pinned after its artifacts were deleted: still says they are gone',
      facts({ pinned: true, artifactsDeletedAt: new Date('2026-12-06T01:00:00Z') }),
      { class: 'pinned', expiresAt: null },
      'artifacts deleted 2026-12-06',
    ],
  ])('%s', (_name, build, expected, reason) => {
    const info = retentionOf(build, policy);
    expect(info).toMatchObject(expected);
    expect(info.reason).toBe(reason);
  });

  it('uses the policy it is given', () => {
    const short = { pullRequestDays: 1, branchDays: 2 };
    expect(retentionOf(facts({ pullNumber: 1 }), short).expiresAt).toEqual(
      new Date('2026-11-22T10:30:00Z'),
    );
    expect(retentionOf(facts({ branch: 'dev' }), short).expiresAt).toEqual(
      new Date('2026-11-23T10:30:00Z'),
    );
    expect(retentionOf(facts({ pullNumber: 1, finishedAt: null }), short).reason).toBe(
      'expires 1 day after it finishes',
    );
  });
});

describe('isExpired', () => {
  const pull = retentionOf(facts({ pullNumber: 1 }), policy);

  it('is due from the instant it expires, not a millisecond before', () => {
    expect(isExpired(pull, new Date(pull.expiresAt!.getTime() - 1))).toBe(false);
    expect(isExpired(pull, pull.expiresAt!)).toBe(true);
  });

  it('never for kept builds, running builds or builds already cleaned', () => {
    const far = new Date('2100-01-01T00:00:00Z');
    expect(isExpired(retentionOf(facts({ tag: 'v1' }), policy), far)).toBe(false);
    expect(isExpired(retentionOf(facts({ pinned: true }), policy), far)).toBe(false);
    expect(
      isExpired(retentionOf(facts({ branch: 'main', latestOfBranchFor: ['amd64'] }), policy), far),
    ).toBe(false);
    expect(isExpired(retentionOf(facts({ pullNumber: 1, finishedAt: null }), policy), far)).toBe(
      false,
    );
    const deleted = facts({ pullNumber: 1, artifactsDeletedAt: FINISHED });
    expect(isExpired(retentionOf(deleted, policy), far)).toBe(false);
  });
});

describe('days', () => {
  it('are 24 hours, whatever the calendar (no DST shift)', () => {
    // Across the end of European summer time.
    const start = new Date('2026-10-20T12:00:00Z');
    expect(expiryAfter(start, 14).toISOString()).toBe('2026-11-03T12:00:00.000Z');
    expect(retentionCutoff(new Date('2026-11-03T12:00:00Z'), 14)).toEqual(start);
  });
});
