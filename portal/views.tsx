import { raw } from 'hono/html';
import { createContext, useContext, type Child } from 'hono/jsx';
import { CHECKSUMS_FILE, PROVENANCE_FILE, RESERVED_ARTIFACT_NAMES } from '../core/attestation';
import { formatBytes, formatToolchain } from '../core/format';
import { portalUrls } from '../core/urls';
import type { Build, BuildWithJobs, Job } from '../db/queries/builds';
import type {
  CommitSummary,
  RefSummary,
  RepoSummary,
  SearchHit,
  TagSummary,
} from '../db/queries/portal';
import type { Repo } from '../db/queries/repos';
import type { PlatformQueue, WorkerStatus } from '../db/queries/workers';
import { PORTAL_SCRIPT, PORTAL_STYLE } from './assets';
import { attemptSummary, type BuildDetails, type JobDetails } from './build-details';
import { releaseFileUrl, type ReleaseFile } from './release';
import { workerState } from '../db/queries/workers';

/**
 * The portal's pages, rendered on the server with hono/jsx. Every value is written as a JSX
 * child or attribute, which escapes it; nothing user-controlled goes through `raw`.
 * Every link comes from core/urls.ts `portalUrls` with `base` = the portal's public URL.
 */

/** What every page's frame shows of the request: who is signed in, and whether one can sign in. */
export interface PageRequest {
  /** The signed-in user's login; undefined when anonymous. */
  login: string | undefined;
  /** Whether sign-in is configured (PORTAL_OIDC_ISSUER). */
  signIn: boolean;
  /** The path and query of this page, to come back to after signing in. */
  path: string;
}

/** Provided by the portal around each page it renders (portal/app.tsx `render`). */
export const PageRequestContext = createContext<PageRequest>({
  login: undefined,
  signIn: false,
  path: '/',
});

/** The header's account links: the user and sign-out form, or a sign-in link. */
function Account(props: { base: string }) {
  const request = useContext(PageRequestContext);
  if (request.login !== undefined)
    return (
      <>
        <a href={portalUrls.apiTokens(props.base)}>{request.login}</a>
        <form class="inline" method="post" action={portalUrls.signOut(props.base)}>
          <button type="submit">Sign out</button>
        </form>
      </>
    );
  if (!request.signIn) return <></>;
  return <a href={portalUrls.signIn(props.base, request.path)}>Sign in</a>;
}

/**
 * The page frame: title, header with the home link and the navigation, and `children` as the
 * main content, the portal's style sheet and its one script (portal/assets.ts). With `refreshSeconds` a
 * browser without scripts reloads the page that often (`<noscript><meta http-equiv="refresh">`):
 * live pages work without the script too.
 */
export function Layout(props: {
  base: string;
  title: string;
  refreshSeconds?: number | undefined;
  children?: Child;
}) {
  return (
    <>
      {raw('<!doctype html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          {props.refreshSeconds === undefined ? (
            ''
          ) : (
            <noscript>
              <meta http-equiv="refresh" content={String(props.refreshSeconds)} />
            </noscript>
          )}
          <script src={PORTAL_SCRIPT.url(props.base)} defer></script>
          <title>{`${props.title} · Crossdock`}</title>
          <link rel="stylesheet" href={PORTAL_STYLE.url(props.base)} />
        </head>
        <body>
          <header>
            <a class="home" href={`${props.base}/`}>
              Crossdock
            </a>
            <span class="muted">builds and downloads</span>
            <nav>
              <a href={`${props.base}/`}>Repositories</a>
              <a href={portalUrls.workers(props.base)}>Workers</a>
              <Account base={props.base} />
            </nav>
          </header>
          <main>{props.children}</main>
        </body>
      </html>
    </>
  );
}

/** A build or job state, coloured by outcome. */
export function State(props: { state: string }) {
  return <span class={`state state-${props.state}`}>{props.state.replace('_', ' ')}</span>;
}

/** An instant as "2024-05-01 12:34:56 UTC", machine-readable in `datetime`; "—" when null. */
export function Time(props: { at: Date | null }) {
  if (!props.at) return <span class="muted">—</span>;
  const iso = props.at.toISOString();
  return <time datetime={iso}>{`${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`}</time>;
}

/** A value or a muted "—" when it is null, undefined or empty. */
function Maybe(props: { value: string | number | null | undefined }) {
  return props.value === null || props.value === undefined || props.value === '' ? (
    <span class="muted">—</span>
  ) : (
    <>{String(props.value)}</>
  );
}

/**
 * The home page: what runs and waits now (jobs running, queue per platform, live workers), the
 * most recent builds, and the repositories that have been built.
 */
export function HomePage(props: {
  base: string;
  repos: RepoSummary[];
  recent: BuildWithJobs[];
  queue: PlatformQueue[];
  liveWorkers: number;
}) {
  const { base } = props;
  const running = props.recent.flatMap(({ build, repo, jobs }) =>
    jobs.filter((job) => job.state === 'running').map((job) => ({ build, repo, job })),
  );
  return (
    <Layout base={props.base} title="Builds">
      <h1>Builds</h1>
      <p>
        <a href={portalUrls.workers(base)}>{`${props.liveWorkers} live workers`}</a>
        {props.queue.map(
          (row) => ` · ${row.runPlatform}: ${row.running} running, ${row.queued} queued`,
        )}
      </p>
      <h2>Running jobs</h2>
      {running.length === 0 ? (
        <p class="muted">No job is running.</p>
      ) : (
        <ul>
          {running.map(({ build, repo, job }) => (
            <li>
              <a href={portalUrls.jobLog(base, job.id)}>{`${job.target} of build #${build.id}`}</a>
              {` · ${repo.owner}/${repo.name} ${build.ref}`}
            </li>
          ))}
        </ul>
      )}
      <h2>Recent builds</h2>
      {props.recent.length === 0 ? (
        <p class="muted">No builds yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Build</th>
              <th>Repository</th>
              <th>Ref</th>
              <th>State</th>
              <th>Jobs</th>
              <th>Requested</th>
            </tr>
          </thead>
          <tbody>
            {props.recent.map(({ build, repo, jobs }) => (
              <tr>
                <td>
                  <a href={portalUrls.build(base, build.id)}>{`#${build.id}`}</a>
                </td>
                <td>
                  <a href={portalUrls.repo(base, repo.owner, repo.name)}>
                    {`${repo.owner}/${repo.name}`}
                  </a>
                </td>
                <td>
                  <code>{build.ref}</code>
                </td>
                <td>
                  <State state={build.state} />
                </td>
                <td>
                  {jobs.map((job) => (
                    <>
                      <a href={portalUrls.jobLog(base, job.id)}>{job.target}</a>{' '}
                      <State state={job.state} />{' '}
                    </>
                  ))}
                </td>
                <td>
                  <Time at={build.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Repositories</h2>
      {props.repos.length === 0 ? (
        <p class="muted">No repository has been built yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Repository</th>
              <th>Builds</th>
              <th>Last build</th>
            </tr>
          </thead>
          <tbody>
            {props.repos.map(({ repo, buildCount, lastBuildAt }) => (
              <tr>
                <td>
                  <a href={portalUrls.repo(props.base, repo.owner, repo.name)}>
                    {`${repo.owner}/${repo.name}`}
                  </a>
                </td>
                <td>{buildCount}</td>
                <td>
                  <Time at={lastBuildAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

/** Where a build came from: pull request, branch, tag. */
function RefCells(props: { build: Build }) {
  const { build } = props;
  return (
    <>
      <td>
        <code>{build.ref}</code>
      </td>
      <td>
        <Maybe value={build.pullNumber === null ? null : `#${build.pullNumber}`} />
      </td>
      <td>
        <Maybe value={build.branch} />
      </td>
      <td>
        <Maybe value={build.tag} />
      </td>
    </>
  );
}

/** A newest build's cells: its state, how many builds there were (when given), when requested. */
function LatestCells(props: { build: Build; buildCount?: number }) {
  return (
    <>
      <td>
        <State state={props.build.state} />
      </td>
      {props.buildCount === undefined ? null : <td>{props.buildCount}</td>}
      <td>
        <Time at={props.build.createdAt} />
      </td>
    </>
  );
}

/** Branches or pull requests of a repository, each with its newest build. */
function RefsTable(props: {
  base: string;
  repo: Repo;
  refs: RefSummary[];
  kind: 'branch' | 'pull';
}) {
  const { base, repo } = props;
  return (
    <table>
      <thead>
        <tr>
          <th>{props.kind === 'branch' ? 'Branch' : 'Pull request'}</th>
          <th>Newest build</th>
          <th>State</th>
          <th>Builds</th>
          <th>Requested</th>
        </tr>
      </thead>
      <tbody>
        {props.refs.map(({ name, latest, buildCount }) => (
          <tr>
            <td>
              <a
                href={
                  props.kind === 'branch'
                    ? portalUrls.branch(base, repo.owner, repo.name, name)
                    : portalUrls.pull(base, repo.owner, repo.name, Number(name))
                }
              >
                {props.kind === 'branch' ? name : `#${name}`}
              </a>
            </td>
            <td>
              <a href={portalUrls.build(base, latest.id)}>{`#${latest.id}`}</a>{' '}
              <code>{latest.sha.slice(0, 12)}</code>
            </td>
            <LatestCells build={latest} buildCount={buildCount} />
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * A repository: its branches and pull requests with their newest builds, its recently built
 * commits, and the tags that were built (linked to their release pages).
 */
export function RepoPage(props: {
  base: string;
  repo: Repo;
  commits: CommitSummary[];
  tags: TagSummary[];
  branches: RefSummary[];
  pulls: RefSummary[];
}) {
  const { base, repo } = props;
  const commitUrl = (sha: string) => portalUrls.commit(base, repo.owner, repo.name, sha);
  return (
    <Layout base={base} title={`${repo.owner}/${repo.name}`}>
      <h1>{`${repo.owner}/${repo.name}`}</h1>
      <p>
        <a href={portalUrls.latestRelease(base, repo.owner, repo.name)}>Latest release</a> ·{' '}
        <a href={portalUrls.releasesFeed(base, repo.owner, repo.name)}>releases feed</a>
        {repo.visibility === 'private' ? ' · private' : ''}
      </p>
      <h2>Branches</h2>
      {props.branches.length === 0 ? (
        <p class="muted">No branch has been built.</p>
      ) : (
        <RefsTable base={base} repo={repo} refs={props.branches} kind="branch" />
      )}
      <h2>Pull requests</h2>
      {props.pulls.length === 0 ? (
        <p class="muted">No pull request has been built.</p>
      ) : (
        <RefsTable base={base} repo={repo} refs={props.pulls} kind="pull" />
      )}
      <h2>Commits</h2>
      {props.commits.length === 0 ? (
        <p class="muted">No builds yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Commit</th>
              <th>Ref</th>
              <th>Pull request</th>
              <th>Branch</th>
              <th>Tag</th>
              <th>State</th>
              <th>Builds</th>
              <th>Requested</th>
            </tr>
          </thead>
          <tbody>
            {props.commits.map(({ sha, latest, buildCount }) => (
              <tr>
                <td>
                  <a href={commitUrl(sha)}>
                    <code>{sha.slice(0, 12)}</code>
                  </a>
                </td>
                <RefCells build={latest} />
                <LatestCells build={latest} buildCount={buildCount} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Tags</h2>
      {props.tags.length === 0 ? (
        <p class="muted">No tag has been built.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Tag</th>
              <th>Commit</th>
              <th>State</th>
              <th>Requested</th>
            </tr>
          </thead>
          <tbody>
            {props.tags.map(({ tag, latest }) => (
              <tr>
                <td>
                  <a href={portalUrls.release(base, repo.owner, repo.name, tag)}>{tag}</a>
                </td>
                <td>
                  <a href={commitUrl(latest.sha)}>
                    <code>{latest.sha.slice(0, 12)}</code>
                  </a>
                </td>
                <LatestCells build={latest} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

/**
 * What a job's state alone does not say, one line each: why it waits (when queued), its attempt
 * and infrastructure retries, a cancel asked for while it runs, who canceled it, and the job
 * whose outcome it reused (linked to that job's log).
 */
export function JobNotes(props: { base: string; details: JobDetails }) {
  const { base } = props;
  const { job, waitingReason } = props.details;
  const attempt = attemptSummary(job);
  const notes: Child[] = [];
  if (waitingReason) notes.push(<li class="waiting">{waitingReason}</li>);
  if (attempt) notes.push(<li class="attempt">{attempt}</li>);
  if (job.state === 'running' && job.cancelRequestedAt) {
    notes.push(
      <li class="cancel-requested">
        {`cancel requested by ${job.canceledBy ?? 'an operator'} `}
        <Time at={job.cancelRequestedAt} />
      </li>,
    );
  }
  if (job.state === 'canceled') {
    notes.push(<li class="canceled-by">{`canceled by ${job.canceledBy ?? 'an operator'}`}</li>);
  }
  if (job.reuseOfJobId !== null) {
    notes.push(
      <li class="reused">
        reused from{' '}
        <a href={portalUrls.jobLog(base, job.reuseOfJobId)}>{`job ${job.reuseOfJobId}`}</a>
      </li>,
    );
  }
  return notes.length === 0 ? <></> : <ul class="notes">{notes}</ul>;
}

/** A job's error, unless it only repeats "canceled by …", which JobNotes already says. */
function jobError(job: Job): string | null {
  return job.state === 'canceled' && job.error === `canceled by ${job.canceledBy ?? 'an operator'}`
    ? null
    : job.error;
}

/**
 * The jobs of a build: target, platform, toolchain, state with JobNotes, worker, exit code,
 * error, log.
 */
export function JobsTable(props: { base: string; jobs: JobDetails[] }) {
  return (
    <table>
      <thead>
        <tr>
          <th>Target</th>
          <th>Platform</th>
          <th>Toolchain</th>
          <th>State</th>
          <th>Worker</th>
          <th>Exit code</th>
          <th>Error</th>
          <th>Log</th>
        </tr>
      </thead>
      <tbody>
        {props.jobs.map((details) => {
          const { job } = details;
          return (
            <tr id={`job-${job.id}`}>
              <td>{job.target}</td>
              <td>
                <code>{job.platform}</code>
              </td>
              <td>{formatToolchain(job)}</td>
              <td>
                <State state={job.state} />
                <JobNotes base={props.base} details={details} />
              </td>
              <td>
                <Maybe value={job.workerId} />
              </td>
              <td>
                <Maybe value={job.exitCode} />
              </td>
              <td class="error">
                <Maybe value={jobError(job)} />
              </td>
              <td>
                <a href={portalUrls.jobLog(props.base, job.id)}>log</a>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** A size in bytes, with its binary-unit form when that is shorter: "68.4 KiB (70000 bytes)". */
export function Size(props: { bytes: number }) {
  const text =
    props.bytes < 1024
      ? `${props.bytes} bytes`
      : `${formatBytes(props.bytes)} (${props.bytes} bytes)`;
  return <>{text}</>;
}

/** The artifacts of a build's jobs: name (download link), platform, size, sha256. */
export function ArtifactsTable(props: { base: string; jobs: JobDetails[] }) {
  const rows = props.jobs.flatMap(({ job, artifacts }) =>
    artifacts.map((artifact) => ({ job, artifact })),
  );
  if (rows.length === 0) return <p class="muted">No artifacts.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Artifact</th>
          <th>Platform</th>
          <th>Size</th>
          <th>SHA-256</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(({ job, artifact }) => (
          <tr>
            <td>
              <a href={portalUrls.artifactDownload(props.base, artifact.id, artifact.name)}>
                {artifact.name}
              </a>{' '}
              <a class="muted" href={portalUrls.artifact(props.base, artifact.id)}>
                details
              </a>
            </td>
            <td>
              <code>{job.platform}</code>
            </td>
            <td>
              <Size bytes={artifact.size} />
            </td>
            <td>
              <code class="sha256">{artifact.sha256}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One build: who asked for what, its state and times, its jobs and its artifacts. */
export function BuildSection(props: { base: string; details: BuildDetails; heading: 'h2' | 'h1' }) {
  const { base, details } = props;
  const { build } = details;
  const title = <a href={portalUrls.build(base, build.id)}>{`Build #${build.id}`}</a>;
  return (
    <section>
      {props.heading === 'h1' ? <h1>{`Build #${build.id}`}</h1> : <h2>{title}</h2>}
      <p>
        <State state={build.state} /> · <code>{build.ref}</code>
        {build.pullNumber === null ? '' : ` · pull request #${build.pullNumber}`}
        {build.branch ? ` · branch ${build.branch}` : ''}
        {build.tag ? ` · tag ${build.tag}` : ''} ·{' '}
        {`${build.trigger} request by ${build.requester}`}
      </p>
      <p class="muted">
        requested <Time at={build.createdAt} /> · started <Time at={build.startedAt} /> · finished{' '}
        <Time at={build.finishedAt} />
      </p>
      <p class="retention">Artifacts: {details.retention.reason}</p>
      <h3>Jobs</h3>
      <JobsTable base={base} jobs={details.jobs} />
      <h3>Artifacts</h3>
      <ArtifactsTable base={base} jobs={details.jobs} />
    </section>
  );
}

/**
 * A button that copies `text` to the clipboard: hidden until the portal's script shows it (it
 * does nothing without the script).
 */
export function CopyButton(props: { text: string; label: string }) {
  return (
    <>
      {' '}
      <button type="button" hidden data-copy={props.text} title="Copy to the clipboard">
        {props.label}
      </button>
    </>
  );
}

/**
 * The release page of a tag: its build (commit, finish time), how long its artifacts are kept,
 * then its files grouped by platform, each with its stable download link, size and sha256 (with
 * copy buttons), each target's provenance, and the release's SHA256SUMS. A file that several
 * targets made links to its commit URL per target.
 */
export function ReleasePage(props: { base: string; details: BuildDetails; files: ReleaseFile[] }) {
  const { base, details, files } = props;
  const { build, repo } = details;
  const tag = build.tag!;
  const platforms = [...new Set(files.map((file) => file.platform))];
  return (
    <Layout base={base} title={`${repo.owner}/${repo.name} ${tag}`}>
      <Breadcrumbs base={base} repo={repo} sha={build.sha} />
      <h1>{`${repo.name} ${tag}`}</h1>
      <p>
        <State state={build.state} /> · commit <code>{build.sha.slice(0, 12)}</code> · finished{' '}
        <Time at={build.finishedAt} /> ·{' '}
        <a href={portalUrls.build(base, build.id)}>{`build #${build.id}`}</a>
      </p>
      <p>
        <a href={portalUrls.releaseDownload(base, repo.owner, repo.name, tag, CHECKSUMS_FILE)}>
          SHA256SUMS
        </a>{' '}
        — check the files with <code>sha256sum --check --ignore-missing SHA256SUMS</code>
      </p>
      <p class="retention">Artifacts: {details.retention.reason}</p>
      {files.length === 0 ? <p class="muted">This release has no files.</p> : ''}
      {platforms.map((platform) => (
        <section>
          <h2>
            <code>{platform}</code>
          </h2>
          {files
            .filter((file) => file.platform === platform && file.name === PROVENANCE_FILE)
            .map((file) => (
              <p class="muted">
                {`Provenance of ${file.target} (in-toto, SLSA v1): `}
                <a href={releaseFileUrl(base, details, file)}>{PROVENANCE_FILE}</a>
              </p>
            ))}
          <table>
            <thead>
              <tr>
                <th>File</th>
                <th>Target</th>
                <th>Size</th>
                <th>SHA-256</th>
              </tr>
            </thead>
            <tbody>
              {files
                .filter(
                  (file) =>
                    file.platform === platform && !RESERVED_ARTIFACT_NAMES.includes(file.name),
                )
                .map((file) => {
                  const url = releaseFileUrl(base, details, file);
                  return (
                    <tr>
                      <td>
                        <a href={url}>{file.listedName}</a>
                        <CopyButton text={url} label="Copy link" />
                      </td>
                      <td>{file.target}</td>
                      <td>
                        <Size bytes={file.size} />
                      </td>
                      <td>
                        <code class="sha256">{file.sha256}</code>
                        <CopyButton text={file.sha256} label="Copy" />
                      </td>
                    </tr>
                  );
                })}
            </tbody>
          </table>
        </section>
      ))}
    </Layout>
  );
}

/** What a search hit is, in words. */
function hitLabel(hit: SearchHit): string {
  const { build } = hit;
  if (hit.kind === 'pull') return `pull request #${build.pullNumber}`;
  if (hit.kind === 'tag') return `tag ${build.tag}`;
  if (hit.kind === 'branch') return `branch ${build.branch}`;
  return `commit ${build.sha.slice(0, 12)}`;
}

/**
 * The search page: a form (GET /search?q=) and the hits (db/queries/portal.ts `searchBuilds`):
 * what matched, its repository, its newest build's state and a link to its commit.
 */
export function SearchPage(props: { base: string; query: string; hits: SearchHit[] }) {
  const { base, query, hits } = props;
  return (
    <Layout base={base} title={query ? `Search: ${query}` : 'Search'}>
      <h1>Search</h1>
      <form method="get" action={`${base}/search`}>
        <input
          type="search"
          name="q"
          value={query}
          placeholder="sha prefix, #pull request, tag or branch"
        />{' '}
        <button type="submit">Search</button>
      </form>
      {query && hits.length === 0 ? <p class="muted">Nothing matches.</p> : ''}
      {hits.length ? (
        <table>
          <thead>
            <tr>
              <th>Match</th>
              <th>Repository</th>
              <th>Newest build</th>
            </tr>
          </thead>
          <tbody>
            {hits.map((hit) => (
              <tr>
                <td>
                  <a href={portalUrls.commit(base, hit.repo.owner, hit.repo.name, hit.build.sha)}>
                    {hitLabel(hit)}
                  </a>
                </td>
                <td>{`${hit.repo.owner}/${hit.repo.name}`}</td>
                <td>
                  <a href={portalUrls.build(base, hit.build.id)}>{`#${hit.build.id}`}</a>{' '}
                  <State state={hit.build.state} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        ''
      )}
    </Layout>
  );
}

/** Links back to a repository and, optionally, one of its commits. */
function Breadcrumbs(props: { base: string; repo: Repo; sha?: string }) {
  const { base, repo, sha } = props;
  return (
    <p>
      <a href={portalUrls.repo(base, repo.owner, repo.name)}>{`${repo.owner}/${repo.name}`}</a>
      {sha ? (
        <>
          {' / '}
          <a href={portalUrls.commit(base, repo.owner, repo.name, sha)}>
            <code>{sha.slice(0, 12)}</code>
          </a>
        </>
      ) : (
        ''
      )}
    </p>
  );
}

/** Every build of one commit, newest first. */
export function CommitPage(props: {
  base: string;
  repo: Repo;
  sha: string;
  builds: BuildDetails[];
}) {
  const { base, repo, sha } = props;
  return (
    <Layout base={base} title={`${repo.owner}/${repo.name}@${sha.slice(0, 12)}`}>
      <Breadcrumbs base={base} repo={repo} />
      <h1>
        Commit <code>{sha}</code>
      </h1>
      {props.builds.map((details) => (
        <BuildSection base={base} details={details} heading="h2" />
      ))}
    </Layout>
  );
}

/** One build of a commit. */
export function BuildPage(props: { base: string; details: BuildDetails }) {
  const { base, details } = props;
  return (
    <Layout base={base} title={`Build #${details.build.id}`}>
      <Breadcrumbs base={base} repo={details.repo} sha={details.build.sha} />
      <BuildSection base={base} details={details} heading="h1" />
    </Layout>
  );
}

/** How often, in seconds, the log page of an unfinished job reloads itself. */
export const LOG_REFRESH_SECONDS = 3;

/**
 * One attempt of a job's log: `lines` are its lines as HTML (portal/log-html.ts, which escapes
 * the log's text), each with a link to itself (#L12), with a link to the raw text and links to
 * every attempt (1 … `job.attempt`). While `live` (the latest attempt of a queued or running
 * job) the page follows the log through `eventsUrl` (Server-Sent Events, portal/live-log.ts),
 * or, without scripts, reloads itself every LOG_REFRESH_SECONDS. `waitingReason` says why a
 * queued job waits.
 */
export function LogPage(props: {
  base: string;
  repo: Repo;
  build: Build;
  job: Job;
  /** The attempt shown. */
  attempt: number;
  lines: string[];
  live: boolean;
  eventsUrl: string;
  waitingReason?: string | undefined;
}) {
  const { base, build, job, attempt } = props;
  const latest = attempt === job.attempt;
  const rawUrl = `${portalUrls.jobLog(base, job.id)}.txt${latest ? '' : `?attempt=${attempt}`}`;
  const attempts = Array.from({ length: job.attempt }, (_, index) => index + 1);
  return (
    <Layout
      base={base}
      title={`Log of ${job.target} · build #${build.id}`}
      refreshSeconds={props.live ? LOG_REFRESH_SECONDS : undefined}
    >
      <Breadcrumbs base={base} repo={props.repo} sha={build.sha} />
      <h1>{`Log of ${job.target}`}</h1>
      <p class="muted">
        <a href={portalUrls.build(base, build.id)}>{`build #${build.id}`}</a> · job {job.id} ·{' '}
        <span class={`state state-${job.state}`} data-job-state>
          {job.state.replace('_', ' ')}
        </span>
        {` · attempt ${attempt}${latest ? '' : ` of ${job.attempt} (an earlier attempt)`} · `}
        <a href={rawUrl}>raw text</a>
      </p>
      {attempts.length > 1 ? (
        <p class="attempts">
          {'Attempts: '}
          {attempts.map((number) =>
            number === attempt ? (
              <strong>{String(number)}</strong>
            ) : (
              <a href={portalUrls.jobAttemptLog(base, job.id, number)}>{String(number)}</a>
            ),
          )}
        </p>
      ) : (
        ''
      )}
      {props.live ? (
        <p class="live" id="live">{`live — refreshes every ${LOG_REFRESH_SECONDS} s`}</p>
      ) : (
        ''
      )}
      {props.waitingReason ? <p class="muted waiting">{props.waitingReason}</p> : ''}
      {job.reuseOfJobId !== null ? (
        <p>
          This job reused the outcome of an identical job:{' '}
          <a
            href={portalUrls.jobLog(base, job.reuseOfJobId)}
          >{`see the log of job ${job.reuseOfJobId}`}</a>
          .
        </p>
      ) : (
        ''
      )}
      {props.lines.length > 0 ? (
        ''
      ) : attempt === 0 ? (
        <p class="muted" id="log-empty">
          The job has not started yet.
        </p>
      ) : (
        <p class="muted" id="log-empty">
          The log is empty so far.
        </p>
      )}
      <pre
        id="log"
        class="log"
        hidden={props.lines.length === 0}
        data-events={props.live ? props.eventsUrl : undefined}
      >
        {raw(props.lines.join('\n'))}
      </pre>
    </Layout>
  );
}

/** "12 s ago", "5 min ago", "3 h ago", "2 d ago": how long before `now` the instant `at` was. */
export function age(at: Date, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** One worker of the fleet: state, host, platforms, labels, slots, heartbeat, jobs, images. */
function WorkerRow(props: { base: string; worker: WorkerStatus; now: Date }) {
  const { base, worker } = props;
  const state = workerState(worker);
  const images = Object.entries(worker.images).sort(([a], [b]) => a.localeCompare(b));
  return (
    <tr id={`worker-${worker.id}`}>
      <td>
        <code>{worker.id}</code>
        <div class="muted">{`version ${worker.version}`}</div>
      </td>
      <td>
        <span class={`worker-${state}`}>{state}</span>
        {worker.stoppedAt && state === 'stopped' ? (
          <div class="muted">
            <Time at={worker.stoppedAt} />
          </div>
        ) : (
          ''
        )}
      </td>
      <td>
        {worker.host}
        <div class="muted">{`pid ${worker.pid}`}</div>
      </td>
      <td>
        <code>{worker.platforms.join(', ')}</code>
        {worker.emulatedPlatforms.length > 0 ? (
          <div class="muted">
            {'emulated: '}
            <code>{worker.emulatedPlatforms.join(', ')}</code>
          </div>
        ) : (
          ''
        )}
      </td>
      <td>
        <Maybe value={worker.labels.join(', ')} />
      </td>
      <td>{`${worker.runningJobIds.length}/${worker.slots}`}</td>
      <td>
        <Time at={worker.lastHeartbeatAt} />
        <div class="muted">{`${age(worker.lastHeartbeatAt, props.now)} · every ${worker.heartbeatSeconds} s`}</div>
      </td>
      <td>
        {worker.runningJobIds.length === 0 ? (
          <span class="muted">—</span>
        ) : (
          worker.runningJobIds.map((id, index) => (
            <>
              {index > 0 ? ', ' : ''}
              <a href={portalUrls.jobLog(base, id)}>{`job ${id}`}</a>
            </>
          ))
        )}
      </td>
      <td>
        {images.length === 0 ? (
          <span class="muted">—</span>
        ) : (
          <details>
            <summary>{images.length === 1 ? '1 image' : `${images.length} images`}</summary>
            <ul class="notes">
              {images.map(([name, digest]) => (
                <li>
                  <code>{name}</code> <code class="sha256">{digest}</code>
                </li>
              ))}
            </ul>
          </details>
        )}
      </td>
    </tr>
  );
}

/**
 * The fleet: every registered worker (live first; lost and stopped ones stay listed) and, per run
 * platform, the queued and running jobs with the live workers and free slots serving it.
 * `now` is the time the page is rendered, for the heartbeats' ages.
 */
export function WorkersPage(props: {
  base: string;
  workers: WorkerStatus[];
  queue: PlatformQueue[];
  now: Date;
}) {
  const { base } = props;
  return (
    <Layout base={base} title="Workers">
      <h1>Workers</h1>
      {props.workers.length === 0 ? (
        <p class="muted">No worker has registered yet.</p>
      ) : (
        <table class="workers">
          <thead>
            <tr>
              <th>Worker</th>
              <th>State</th>
              <th>Host</th>
              <th>Platforms</th>
              <th>Labels</th>
              <th>Slots used</th>
              <th>Last heartbeat</th>
              <th>Running jobs</th>
              <th>Images</th>
            </tr>
          </thead>
          <tbody>
            {props.workers.map((worker) => (
              <WorkerRow base={base} worker={worker} now={props.now} />
            ))}
          </tbody>
        </table>
      )}
      <h2>Queue</h2>
      {props.queue.length === 0 ? (
        <p class="muted">Nothing is queued or running.</p>
      ) : (
        <table class="queue">
          <thead>
            <tr>
              <th>Run platform</th>
              <th>Queued</th>
              <th>Running</th>
              <th>Live workers</th>
              <th>Free slots</th>
            </tr>
          </thead>
          <tbody>
            {props.queue.map((row) => (
              <tr id={`queue-${row.runPlatform}`}>
                <td>
                  <code>{row.runPlatform}</code>
                  {row.queued > 0 && row.workers === 0 ? (
                    <div class="error">no live worker serves it</div>
                  ) : (
                    ''
                  )}
                </td>
                <td>{row.queued}</td>
                <td>{row.running}</td>
                <td>{row.workers}</td>
                <td>{row.freeSlots}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

/** The 400 page: what was wrong with the address (`message`, shown escaped). */
export function BadRequestPage(props: { base: string; message: string }) {
  return (
    <Layout base={props.base} title="Bad request">
      <h1>Bad request</h1>
      <p>{props.message}</p>
    </Layout>
  );
}

/**
 * The 404 page. A private repository's pages answer it too to whoever is not signed in (its
 * existence is not told); they are offered to sign in.
 */
export function NotFoundPage(props: { base: string }) {
  const request = useContext(PageRequestContext);
  return (
    <Layout base={props.base} title="Not found">
      <h1>Not found</h1>
      <p>
        There is nothing at this address. Start from the <a href={`${props.base}/`}>repositories</a>
        .
      </p>
      {request.login === undefined && request.signIn ? (
        <p>
          If it belongs to a private repository,{' '}
          <a href={portalUrls.signIn(props.base, request.path)}>sign in</a> to see it.
        </p>
      ) : (
        ''
      )}
    </Layout>
  );
}

/** The 500 page: says something failed, shows no internals. */
export function ErrorPage(props: { base: string }) {
  return (
    <Layout base={props.base} title="Error">
      <h1>Something went wrong</h1>
      <p>The portal could not show this page. The error has been logged; try again shortly.</p>
    </Layout>
  );
}
