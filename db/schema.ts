import { sql } from 'drizzle-orm';
import { TOOLCHAIN_MODES, type DockerfileBuild, type ToolchainMode } from '../core/recipe';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  type AnyPgColumn,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * Crossdock's tables. Terms as in DESIGN.md: a build is one request (repository, commit,
 * trigger, requester); a job is one target of a build; an artifact is a file a job produced.
 * Migrations in db/migrations are generated from this file by `npm run db:generate`.
 */

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
};

export const BUILD_STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type BuildState = (typeof BUILD_STATES)[number];
export const JOB_STATES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'canceled',
  'timed_out',
] as const;
export type JobState = (typeof JOB_STATES)[number];
/** Job states that end a job without success: what a retry builds again. */
export const UNSUCCESSFUL_JOB_STATES: readonly JobState[] = ['failed', 'canceled', 'timed_out'];
/** Build states after which nothing changes. */
export const FINAL_BUILD_STATES: readonly BuildState[] = ['succeeded', 'failed', 'canceled'];
/**
 * What started a build: a Slack command, a pull request's `build:` label (or a push to a labelled
 * pull request), a `/build` comment, a pushed tag or published release, a check run's "Re-run",
 * the API, or the CLI.
 */
export const TRIGGERS = ['slack', 'label', 'comment', 'tag', 'rerun', 'api', 'cli'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const REPO_VISIBILITIES = ['public', 'private'] as const;
export type RepoVisibility = (typeof REPO_VISIBILITIES)[number];

export const repos = pgTable(
  'repos',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    owner: text('owner').notNull(),
    name: text('name').notNull(),
    /** Where workers clone from: https://…/owner/name.git, or a path for plain git. */
    cloneUrl: text('clone_url').notNull(),
    /** `github` (refs and files read through the REST API) or `git` (read with git itself). */
    source: text('source', { enum: ['github', 'git'] }).notNull(),
    /**
     * The GitHub App installation that has the repository, from its webhooks: workers clone with a
     * short-lived token of it, and the bot reports to GitHub through it.
     */
    githubInstallationId: bigint('github_installation_id', { mode: 'number' }),
    /**
     * Who may see the repository's builds, logs and artifacts in the portal: `public` anyone,
     * `private` only a signed-in user or a personal API token (docs/portal.md "Access").
     */
    visibility: text('visibility', { enum: REPO_VISIBILITIES }).notNull().default('public'),
    ...timestamps,
  },
  (table) => [uniqueIndex('repos_owner_name').on(table.owner, table.name)],
);

/** A build with a Slack message whose final state has not been reported (see listBuildsWithOpenMessages). */
export const UNREPORTED_BUILD = sql.raw(
  `(reported_state is null or reported_state in ('queued', 'running')) and notify -> 'slack' ? 'ts'`,
);

export const builds = pgTable(
  'builds',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    repoId: bigint('repo_id', { mode: 'number' })
      .notNull()
      .references(() => repos.id),
    sha: text('sha').notNull(),
    /** The ref as the requester wrote it: `pr-123`, `main`, `v2.4.0`, a sha. */
    ref: text('ref').notNull(),
    pullNumber: integer('pull_number'),
    branch: text('branch'),
    tag: text('tag'),
    trigger: text('trigger', { enum: TRIGGERS }).notNull(),
    requester: text('requester').notNull(),
    state: text('state', { enum: BUILD_STATES }).notNull().default('queued'),
    recipeDigest: text('recipe_digest').notNull(),
    /**
     * Whether the code built is trusted: false for a pull request from a fork (or a request by
     * someone outside the team). Untrusted builds get no secrets and their own cache volumes, and
     * a trusted build never reuses their outcome.
     */
    trusted: boolean('trusted').notNull().default(true),
    /** Identifies a request so that a replay attaches to the same build (unique when set). */
    requestKey: text('request_key'),
    /** Where the requester is told of progress, e.g. {"slack":{"channel":"C1","ts":"1.2"}}. */
    notify: jsonb('notify').$type<BuildNotify>().notNull().default({}),
    /** The last state reported to `notify`, so each change is reported once. */
    reportedState: text('reported_state'),
    /** A pinned build's artifacts are kept whatever the retention rules say (docs/retention.md). */
    pinned: boolean('pinned').notNull().default(false),
    /** When the cleanup job deleted the build's artifacts (objects and rows); null while kept. */
    artifactsDeletedAt: timestamp('artifacts_deleted_at', { withTimezone: true }),
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (table) => [
    uniqueIndex('builds_request_key').on(table.requestKey),
    index('builds_repo_sha').on(table.repoId, table.sha),
    // A pull request's and a branch's builds: superseded builds, and their pages in the portal.
    index('builds_repo_pull')
      .on(table.repoId, table.pullNumber)
      .where(sql`pull_number is not null`),
    // With id: "a newer build of this branch" (retention's latest build per branch and target)
    // is a range of the index, not a scan of the branch's whole history.
    index('builds_repo_branch')
      .on(table.repoId, table.branch, table.id)
      .where(sql`pull_number is null and tag is null`),
    // A repository's tag builds: its release pages and their downloads, the latest release,
    // the releases feed. A small part of its builds; it names only columns that never change.
    index('builds_repo_tag')
      .on(table.repoId, table.tag, table.id)
      .where(sql`tag is not null`),
    // Builds with a Slack message whose final state is not reported yet. It must not name
    // `state`: then a change of state (two per job) can be a HOT update, writing no index.
    index('builds_unreported')
      .on(table.id)
      .where(sql`${UNREPORTED_BUILD}`),
    // Builds reported to GitHub (check runs, the pull request's comment, release assets). It
    // names only columns that never change, so it costs no HOT update.
    index('builds_github')
      .on(table.createdAt)
      .where(sql`notify ? 'github'`),
    // Builds whose artifacts the retention cleanup may still delete (db/queries/retention.ts):
    // tag builds, pinned builds and those already cleaned are left out, so it stays the size of
    // the retention window. It names no column a build's progress changes (HOT updates).
    index('builds_retention')
      .on(table.id)
      .where(sql`artifacts_deleted_at is null and tag is null and not pinned`),
  ],
);

export interface BuildNotify {
  slack?: { channel: string; ts?: string; user?: string };
  /** Report to GitHub through this App installation: a check run per job, the PR's comment. */
  github?: { installationId: number };
}

/** Infrastructure failures after which a job fails instead of being queued again. */
export const DEFAULT_MAX_INFRA_FAILURES = 3;

export const jobs = pgTable(
  'jobs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    buildId: bigint('build_id', { mode: 'number' })
      .notNull()
      .references(() => builds.id, { onDelete: 'cascade' }),
    target: text('target').notNull(),
    /** The target's OCI platform, e.g. linux/arm64. */
    platform: text('platform').notNull(),
    /**
     * The toolchain modes the recipe allows, in the routing policy's order (native, cross,
     * emulated); the claim picks the first the claiming worker can run, unless a free live worker
     * could run an earlier one (crossdock_toolchain_for, docs/recipe.md "Routing").
     */
    toolchains: text('toolchains', { enum: TOOLCHAIN_MODES }).array().notNull(),
    /** The mode it runs or ran in: set by each claim; while queued, the best one it allows. */
    toolchain: text('toolchain', { enum: TOOLCHAIN_MODES }).notNull(),
    /** The platform of its container in `toolchain` mode: linux/amd64 for cross toolchains. */
    runPlatform: text('run_platform').notNull(),
    /** The builder image of `toolchain` mode (spec.images has every allowed mode's). */
    image: text('image').notNull(),
    /** The target as read from the recipe (script, env, artifact globs, network, timeout). */
    spec: jsonb('spec').$type<JobSpec>().notNull(),
    state: text('state', { enum: JOB_STATES }).notNull().default('queued'),
    /** Raised at each claim; every write by a worker is fenced by it. */
    attempt: integer('attempt').notNull().default(0),
    workerId: text('worker_id'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true }),
    imageDigest: text('image_digest'),
    exitCode: integer('exit_code'),
    error: text('error'),
    /** Higher runs first: see JOB_PRIORITY. */
    priority: integer('priority').notNull().default(0),
    /** Labels a worker must carry to run this job (all of them), e.g. {kvm}. */
    labels: text('labels')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    /** Attempts lost to infrastructure failures (worker lost, Docker or storage errors). */
    infraFailures: integer('infra_failures').notNull().default(0),
    /** After this many infrastructure failures the job fails instead of being queued again. */
    maxInfraFailures: integer('max_infra_failures').notNull().default(DEFAULT_MAX_INFRA_FAILURES),
    /** Set when someone canceled the job while it ran; its worker stops it and records it. */
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
    /** Who or what canceled it: `slack:U123`, `superseded by build 42`, … */
    canceledBy: text('canceled_by'),
    /**
     * Set when this job does not run itself: an identical job (same repository, sha, target,
     * recipe and builder image) had succeeded or was queued or running when it was requested.
     * It takes that job's outcome and artifacts.
     */
    reuseOfJobId: bigint('reuse_of_job_id', { mode: 'number' }).references(
      (): AnyPgColumn => jobs.id,
      { onDelete: 'set null' },
    ),
    ...timestamps,
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (table) => [
    uniqueIndex('jobs_build_target').on(table.buildId, table.target),
    index('jobs_claimable')
      .on(table.priority.desc(), table.id)
      .where(sql`state = 'queued' and reuse_of_job_id is null`),
    index('jobs_running_lease')
      .on(table.leaseExpiresAt)
      .where(sql`state = 'running'`),
    index('jobs_reuse_of')
      .on(table.reuseOfJobId)
      .where(sql`reuse_of_job_id is not null`),
    check('jobs_attempt_nonnegative', sql`attempt >= 0`),
  ],
);

/** Claim order: release tags, then pull requests, then everything else (manual builds). */
export const JOB_PRIORITY = { release: 30, pullRequest: 20, manual: 10 } as const;

export interface JobSpec {
  /** Empty for a Dockerfile build. */
  script: string;
  /** The builder image of each allowed toolchain mode. */
  images: Partial<Record<ToolchainMode, string>>;
  dockerfile?: DockerfileBuild;
  /** CPUs and memory (bytes) the container may use; the worker's defaults when unset. */
  resources?: { cpus?: number; memoryBytes?: number };
  /** Cache kinds (CACHE_KINDS) and absolute paths kept in volumes between builds. */
  caches?: string[];
  artifacts: string[];
  env: Record<string, string>;
  network: boolean;
  timeoutMinutes: number;
  /** Names of worker-configured secrets put in the container's environment. */
  secrets?: string[];
}

export const artifacts = pgTable(
  'artifacts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    /** Path relative to /out, e.g. hello-linux-arm64.tar.gz. */
    name: text('name').notNull(),
    objectKey: text('object_key').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    sha256: text('sha256').notNull(),
    ...timestamps,
  },
  (table) => [
    uniqueIndex('artifacts_job_name').on(table.jobId, table.name),
    // Rows sharing an object (a reused job's copies): the cleanup keeps an object they still show.
    index('artifacts_object_key').on(table.objectKey),
  ],
);

export const jobLogChunks = pgTable(
  'job_log_chunks',
  {
    jobId: bigint('job_id', { mode: 'number' })
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    seq: integer('seq').notNull(),
    data: text('data').notNull(),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.jobId, table.attempt, table.seq] })],
);

export const workers = pgTable('workers', {
  id: text('id').primaryKey(),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  version: text('version').notNull(),
  /** OCI platforms it runs containers for natively, e.g. {linux/amd64}. */
  platforms: text('platforms').array().notNull(),
  /** OCI platforms it runs by QEMU emulation (binfmt_misc), e.g. {linux/arm64,linux/riscv64}. */
  emulatedPlatforms: text('emulated_platforms')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  labels: text('labels')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  /** How many jobs it runs at once. */
  slots: integer('slots').notNull().default(1),
  /** Seconds between its heartbeats; it counts as lost after two without one. */
  heartbeatSeconds: real('heartbeat_seconds').notNull().default(5),
  /** Builder images it has: image name → image id (sha256:…). */
  images: jsonb('images').$type<Record<string, string>>().notNull().default({}),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  lastHeartbeatAt: timestamp('last_heartbeat_at', { withTimezone: true }).notNull().defaultNow(),
  stoppedAt: timestamp('stopped_at', { withTimezone: true }),
  online: boolean('online').notNull().default(true),
});

/** The check run (docs.github.com/rest/checks/runs) that shows a job on GitHub. */
export const githubCheckRuns = pgTable('github_check_runs', {
  jobId: bigint('job_id', { mode: 'number' })
    .primaryKey()
    .references(() => jobs.id, { onDelete: 'cascade' }),
  checkRunId: bigint('check_run_id', { mode: 'number' }).notNull(),
  /** The job state the check run last showed, so that each change is sent once. */
  reportedState: text('reported_state', { enum: JOB_STATES }).notNull(),
  ...timestamps,
});

/** Crossdock's one comment on a pull request, edited in place (never posted twice). */
export const githubPullComments = pgTable(
  'github_pull_comments',
  {
    repoId: bigint('repo_id', { mode: 'number' })
      .notNull()
      .references(() => repos.id, { onDelete: 'cascade' }),
    pullNumber: integer('pull_number').notNull(),
    /** Null while the comment is being posted: whoever inserted the row posts it. */
    commentId: bigint('comment_id', { mode: 'number' }),
    /** sha256 of the body last written, so that an unchanged table is not written again. */
    bodyDigest: text('body_digest'),
    /** A line about the last command on the pull request (refusals, approvals), shown on top. */
    notice: text('notice'),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.repoId, table.pullNumber] })],
);

/**
 * A build request on a fork's pull request by someone without write access, held until a
 * maintainer approves its head sha with `/ok-to-build`.
 */
export const githubHolds = pgTable(
  'github_holds',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    repoId: bigint('repo_id', { mode: 'number' })
      .notNull()
      .references(() => repos.id, { onDelete: 'cascade' }),
    pullNumber: integer('pull_number').notNull(),
    sha: text('sha').notNull(),
    /** The request, replayed on approval: command text, trigger, requester, request key. */
    request: jsonb('request').$type<HeldRequest>().notNull(),
    /** The neutral check run that says the head awaits approval. */
    checkRunId: bigint('check_run_id', { mode: 'number' }),
    /** The build made when it was approved. */
    buildId: bigint('build_id', { mode: 'number' }).references(() => builds.id, {
      onDelete: 'set null',
    }),
    releasedAt: timestamp('released_at', { withTimezone: true }),
    ...timestamps,
  },
  (table) => [
    index('github_holds_pull').on(table.repoId, table.pullNumber, table.sha),
    // One open hold per request; a request held again after its hold was dropped holds anew.
    uniqueIndex('github_holds_request')
      .on(sql`(request ->> 'requestKey')`)
      .where(sql`released_at is null`),
  ],
);

export interface HeldRequest {
  text: string;
  trigger: Trigger;
  requester: string;
  /** Identifies the hold (unique among open holds). */
  requestKey: string;
  /** How the build made on approval is keyed (BuildRequest.dedupe), so a replay finds it. */
  dedupe: 'delivery' | 'request';
  deliveryId: string;
  installationId: number;
  cancelSuperseded?: boolean;
}

/** A maintainer's `/ok-to-build`: that head sha of a fork's pull request may be built. */
export const githubApprovals = pgTable(
  'github_approvals',
  {
    repoId: bigint('repo_id', { mode: 'number' })
      .notNull()
      .references(() => repos.id, { onDelete: 'cascade' }),
    pullNumber: integer('pull_number').notNull(),
    sha: text('sha').notNull(),
    approvedBy: text('approved_by').notNull(),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.repoId, table.pullNumber, table.sha] })],
);

/** A published GitHub release whose tag's artifacts are attached to it as they appear. */
export const githubReleases = pgTable(
  'github_releases',
  {
    releaseId: bigint('release_id', { mode: 'number' }).primaryKey(),
    repoId: bigint('repo_id', { mode: 'number' })
      .notNull()
      .references(() => repos.id, { onDelete: 'cascade' }),
    tag: text('tag').notNull(),
    /** The release's upload URL template (RFC 6570), e.g. https://uploads.github.com/…/assets{?name,label}. */
    uploadUrl: text('upload_url').notNull(),
    installationId: bigint('installation_id', { mode: 'number' }).notNull(),
    ...timestamps,
  },
  (table) => [index('github_releases_tag').on(table.repoId, table.tag)],
);

/** An artifact attached to a release (or refused by GitHub, with why). */
export const githubReleaseAssets = pgTable(
  'github_release_assets',
  {
    releaseId: bigint('release_id', { mode: 'number' })
      .notNull()
      .references(() => githubReleases.releaseId, { onDelete: 'cascade' }),
    artifactId: bigint('artifact_id', { mode: 'number' })
      .notNull()
      .references(() => artifacts.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    assetId: bigint('asset_id', { mode: 'number' }),
    error: text('error'),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.releaseId, table.artifactId] })],
);

/** A Slack channel's default repository, set with `/build use owner/repo`. */
export const slackChannels = pgTable('slack_channels', {
  channelId: text('channel_id').primaryKey(),
  /** `owner/name`; checked against the source host when set. */
  repo: text('repo').notNull(),
  setBy: text('set_by').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** A Slack user's preferences: whether a direct message tells them when their build ends. */
export const slackUsers = pgTable('slack_users', {
  userId: text('user_id').primaryKey(),
  directMessages: boolean('direct_messages').notNull().default(true),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * A Slack request for untrusted code (a fork's pull request) held until someone who may approve
 * fork builds clicks Approve on its message; then the build of exactly `request.resolved.sha` is
 * made and the same message shows it.
 */
export const slackHolds = pgTable('slack_holds', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /** The slash command's trigger_id: a retried command finds its hold instead of making another. */
  requestId: text('request_id').notNull().unique(),
  channelId: text('channel_id').notNull(),
  /** The message's ts, set once it is posted. */
  messageTs: text('message_ts'),
  request: jsonb('request').$type<SlackHeldRequest>().notNull(),
  state: text('state', { enum: ['held', 'approved', 'dismissed'] })
    .notNull()
    .default('held'),
  decidedBy: text('decided_by'),
  decidedAt: timestamp('decided_at', { withTimezone: true }),
  buildId: bigint('build_id', { mode: 'number' }).references(() => builds.id, {
    onDelete: 'set null',
  }),
  ...timestamps,
});

export interface SlackHeldRequest {
  text: string;
  /** owner/name */
  repo: string;
  userId: string;
  /** The commit and ref as resolved when the request was made (ResolvedRef). */
  resolved: {
    sha: string;
    pullNumber?: number;
    branch?: string;
    tag?: string;
    trusted: boolean;
  };
  targets: string[];
}

/**
 * Something posted to Slack at most once, claimed before it is posted: a failed job's log in the
 * build message's thread (`kind` thread-log, jobId set), or the direct message to the requester
 * when the build ends (`kind` direct-message, jobId 0).
 */
export const slackPosts = pgTable(
  'slack_posts',
  {
    buildId: bigint('build_id', { mode: 'number' })
      .notNull()
      .references(() => builds.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['thread-log', 'direct-message'] }).notNull(),
    jobId: bigint('job_id', { mode: 'number' }).notNull().default(0),
    /** The posted message's ts; null while the post is in flight. */
    ts: text('ts'),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.buildId, table.kind, table.jobId] })],
);

/**
 * A refused request: who asked for what and why they were refused (e.g. no permission to start
 * release builds of acme/widget), kept for the operators' audit.
 */
export const refusals = pgTable(
  'refusals',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** `slack` or `github`. */
    frontEnd: text('front_end').notNull(),
    /** Who asked, e.g. slack:U123. */
    actor: text('actor').notNull(),
    /** What was refused: build, release, approve, cancel, retry, use. */
    action: text('action').notNull(),
    /** owner/name, when the request named one. */
    repo: text('repo'),
    reason: text('reason').notNull(),
    ...timestamps,
  },
  (table) => [index('refusals_created').on(table.createdAt)],
);

/** A person known to the portal: signed in through the OpenID Connect provider at least once. */
export const users = pgTable(
  'users',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** The provider's issuer URL and the user's `sub` claim: together they name the person. */
    issuer: text('issuer').notNull(),
    subject: text('subject').notNull(),
    /** For display: the `preferred_username`, else `email`, else `sub` claim. */
    login: text('login').notNull(),
    email: text('email'),
    ...timestamps,
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
  },
  (table) => [uniqueIndex('users_issuer_subject').on(table.issuer, table.subject)],
);

/**
 * A credential of a user: a browser session (`session`, from signing in; a cookie) or a personal
 * API token (`api`, for scripts; `Authorization: Bearer`). Only the SHA-256 of the secret is kept.
 */
export const userTokens = pgTable(
  'user_tokens',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: bigint('user_id', { mode: 'number' })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['session', 'api'] }).notNull(),
    /** The user's name for an API token, e.g. "release script". */
    name: text('name').notNull(),
    /** Hex SHA-256 of the secret. */
    secretHash: text('secret_hash').notNull(),
    ...timestamps,
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (table) => [
    uniqueIndex('user_tokens_secret_hash').on(table.secretHash),
    index('user_tokens_user').on(table.userId),
  ],
);
