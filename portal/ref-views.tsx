import type { RetentionInfo } from '../core/retention';
import { portalUrls } from '../core/urls';
import type { Artifact } from '../db/queries/artifacts';
import type { Build, Job } from '../db/queries/builds';
import type { LatestOfTarget } from '../db/queries/portal';
import type { Repo } from '../db/queries/repos';
import type { BuildDetails } from './build-details';
import { BuildSection, CopyButton, Layout, Size, State, Time } from './views';

/**
 * Pages of a branch, a pull request and an artifact. Every value is written as a JSX child or
 * attribute, which escapes it (branch and file names are the users').
 */

/** A table of builds, newest first: number, commit, ref, state, requester, times. */
function BuildsTable(props: { base: string; repo: Repo; builds: Build[] }) {
  const { base, repo } = props;
  if (props.builds.length === 0) return <p class="muted">No builds.</p>;
  return (
    <table>
      <thead>
        <tr>
          <th>Build</th>
          <th>Commit</th>
          <th>State</th>
          <th>Requested by</th>
          <th>Requested</th>
          <th>Finished</th>
        </tr>
      </thead>
      <tbody>
        {props.builds.map((build) => (
          <tr>
            <td>
              <a href={portalUrls.build(base, build.id)}>{`#${build.id}`}</a>
            </td>
            <td>
              <a href={portalUrls.commit(base, repo.owner, repo.name, build.sha)}>
                <code>{build.sha.slice(0, 12)}</code>
              </a>
            </td>
            <td>
              <State state={build.state} />
            </td>
            <td>{build.requester}</td>
            <td>
              <Time at={build.createdAt} />
            </td>
            <td>
              <Time at={build.finishedAt} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/**
 * A branch: per target, its newest successful build of trusted code and that job's files by
 * their stable "latest of the branch" URLs, with a status badge; then its recent builds.
 */
export function BranchPage(props: {
  base: string;
  repo: Repo;
  branch: string;
  latest: LatestOfTarget[];
  builds: Build[];
}) {
  const { base, repo, branch } = props;
  const badge = portalUrls.branchBadge(base, repo.owner, repo.name, branch);
  return (
    <Layout base={base} title={`${repo.owner}/${repo.name} ${branch}`}>
      <p>
        <a href={portalUrls.repo(base, repo.owner, repo.name)}>{`${repo.owner}/${repo.name}`}</a>
      </p>
      <h1>
        {`Branch ${branch} `}
        <img src={badge} alt="build status" />
      </h1>
      <p class="muted">
        Badge for a README: <code>{badge}</code>
        <CopyButton text={badge} label="Copy" />
      </p>
      <h2>Latest successful build per target</h2>
      {props.latest.length === 0 ? (
        <p class="muted">No target has succeeded on this branch yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Target</th>
              <th>Build</th>
              <th>Files (stable links)</th>
            </tr>
          </thead>
          <tbody>
            {props.latest.map((entry) => (
              <tr>
                <td>
                  {entry.target} <code class="muted">{entry.platform}</code>
                </td>
                <td>
                  <a href={portalUrls.build(base, entry.build.id)}>{`#${entry.build.id}`}</a>{' '}
                  <code>{entry.build.sha.slice(0, 12)}</code> · <Time at={entry.build.finishedAt} />
                </td>
                <td>
                  {entry.artifacts.length === 0 ? (
                    <span class="muted">no files</span>
                  ) : (
                    <ul class="notes">
                      {entry.artifacts.map((artifact) => {
                        const url = portalUrls.branchDownload(
                          base,
                          repo.owner,
                          repo.name,
                          branch,
                          entry.target,
                          artifact.name,
                        );
                        return (
                          <li>
                            <a href={url}>{artifact.name}</a> (<Size bytes={artifact.size} />)
                            <CopyButton text={url} label="Copy link" />
                          </li>
                        );
                      })}
                    </ul>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Recent builds</h2>
      <BuildsTable base={base} repo={repo} builds={props.builds} />
    </Layout>
  );
}

/** A pull request: its newest build in full, then all its recent builds. */
export function PullPage(props: {
  base: string;
  repo: Repo;
  pullNumber: number;
  latest: BuildDetails;
  builds: Build[];
}) {
  const { base, repo } = props;
  return (
    <Layout base={base} title={`${repo.owner}/${repo.name}#${props.pullNumber}`}>
      <p>
        <a href={portalUrls.repo(base, repo.owner, repo.name)}>{`${repo.owner}/${repo.name}`}</a>
      </p>
      <h1>{`Pull request #${props.pullNumber}`}</h1>
      {props.latest.build.trusted ? (
        ''
      ) : (
        <p class="muted">
          Built from a fork: untrusted code, built without secrets; never on release pages.
        </p>
      )}
      <BuildSection base={base} details={props.latest} heading="h2" />
      <h2>All builds</h2>
      <BuildsTable base={base} repo={repo} builds={props.builds} />
    </Layout>
  );
}

/** An artifact: its name, size and sha256, where it came from, its links, how long it is kept. */
export function ArtifactPage(props: {
  base: string;
  repo: Repo;
  build: Build;
  retention: RetentionInfo;
  job: Job;
  artifact: Artifact;
}) {
  const { base, repo, build, retention, job, artifact } = props;
  const download = portalUrls.artifactDownload(base, artifact.id, artifact.name);
  const byCommit = portalUrls.commitDownload(
    base,
    repo.owner,
    repo.name,
    build.sha,
    job.target,
    artifact.name,
  );
  return (
    <Layout base={base} title={artifact.name}>
      <p>
        <a href={portalUrls.repo(base, repo.owner, repo.name)}>{`${repo.owner}/${repo.name}`}</a>
        {' / '}
        <a href={portalUrls.build(base, build.id)}>{`build #${build.id}`}</a>
      </p>
      <h1>{artifact.name}</h1>
      <table>
        <tbody>
          <tr>
            <th>Download</th>
            <td>
              <a href={download}>{artifact.name}</a> (<Size bytes={artifact.size} />)
              <CopyButton text={download} label="Copy link" />
            </td>
          </tr>
          <tr>
            <th>SHA-256</th>
            <td>
              <code class="sha256">{artifact.sha256}</code>
              <CopyButton text={artifact.sha256} label="Copy" />
            </td>
          </tr>
          <tr>
            <th>Stable link (commit and target)</th>
            <td>
              <code>{byCommit}</code>
              <CopyButton text={byCommit} label="Copy" />
            </td>
          </tr>
          <tr>
            <th>Made by</th>
            <td>
              {`job ${job.id}, target ${job.target} (`}
              <code>{job.platform}</code>
              {') · '}
              <a href={portalUrls.jobLog(base, job.id)}>log</a>
            </td>
          </tr>
          <tr>
            <th>Commit</th>
            <td>
              <a href={portalUrls.commit(base, repo.owner, repo.name, build.sha)}>
                <code>{build.sha}</code>
              </a>{' '}
              <code>{build.ref}</code> · <State state={build.state} />
              {build.trusted ? '' : ' · untrusted code'}
            </td>
          </tr>
          <tr>
            <th>Stored</th>
            <td>
              <Time at={artifact.createdAt} />
            </td>
          </tr>
          <tr>
            <th>Kept</th>
            <td class="retention">{retention.reason}</td>
          </tr>
        </tbody>
      </table>
    </Layout>
  );
}
