import type { ClaimedJob } from '../db/queries/jobs';
import type { StagedArtifact } from './artifacts';

export { CHECKSUMS_FILE, PROVENANCE_FILE, RESERVED_ARTIFACT_NAMES } from '../core/attestation';

/** The SLSA buildType of Crossdock's provenance: what its external and internal parameters mean. */
export const BUILD_TYPE = 'https://crossdock.local/provenance/job/v1';

/**
 * The checksums of `artifacts` in the format of GNU coreutils' `sha256sum` (and GoReleaser's
 * checksums.txt): one `<64 hex>  <name>` line each, sorted by name, so that
 * `sha256sum --check SHA256SUMS` verifies a downloaded set.
 */
export function checksumsFile(artifacts: Pick<StagedArtifact, 'name' | 'sha256'>[]): string {
  return [...artifacts]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((artifact) => `${artifact.sha256}  ${artifact.name}\n`)
    .join('');
}

/** What the provenance records of one run beyond the claimed job. */
export interface RunFacts {
  /** The builder image's id (sha256:…). */
  imageDigest: string;
  worker: { id: string; host: string; version: string };
  /** When the build container started and when it exited. */
  startedOn: Date;
  finishedOn: Date;
}

/**
 * The provenance of one job's artifacts: an in-toto Statement v1 (github.com/in-toto/attestation,
 * spec/v1/statement.md) whose predicate is SLSA Provenance v1 (slsa.dev/spec/v1.0/provenance):
 * subjects are the artifacts with their sha256; externalParameters the repository, commit, ref,
 * target and recipe digest; resolvedDependencies the sources (gitCommit) and the builder image
 * (sha256); runDetails the worker and the container's start and end times. docs/provenance.md.
 */
export function provenanceStatement(
  { job, build, repo }: ClaimedJob,
  artifacts: Pick<StagedArtifact, 'name' | 'sha256'>[],
  facts: RunFacts,
): Record<string, unknown> {
  const repository = `${repo.owner}/${repo.name}`;
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: artifacts.map((artifact) => ({
      name: artifact.name,
      digest: { sha256: artifact.sha256 },
    })),
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: {
          repository,
          ref: build.ref,
          commit: build.sha,
          target: job.target,
          platform: job.platform,
          recipe: { path: '.crossdock.yml', digest: { sha256: build.recipeDigest } },
          trigger: build.trigger,
          requester: build.requester,
        },
        internalParameters: {
          toolchain: job.toolchain,
          runPlatform: job.runPlatform,
          image: job.image,
          trusted: build.trusted,
        },
        resolvedDependencies: [
          {
            uri: `git+${repo.cloneUrl}@${build.sha}`,
            digest: { gitCommit: build.sha },
          },
          {
            uri: `docker-image:${job.image}`,
            digest: { sha256: facts.imageDigest.replace(/^sha256:/, '') },
          },
        ],
      },
      runDetails: {
        builder: {
          id: `crossdock-worker:${facts.worker.id}`,
          version: { crossdock: facts.worker.version, host: facts.worker.host },
        },
        metadata: {
          invocationId: `crossdock:build/${build.id}/job/${job.id}/attempt/${job.attempt}`,
          startedOn: facts.startedOn.toISOString(),
          finishedOn: facts.finishedOn.toISOString(),
        },
      },
    },
  };
}
