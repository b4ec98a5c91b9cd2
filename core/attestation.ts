/**
 * Files the worker adds to every job's artifacts (worker/provenance.ts): the job's SHA256SUMS
 * and its in-toto statement of SLSA provenance. A build's own artifacts may not use these names.
 */
export const CHECKSUMS_FILE = 'SHA256SUMS';
export const PROVENANCE_FILE = 'provenance.intoto.json';
export const RESERVED_ARTIFACT_NAMES: readonly string[] = [CHECKSUMS_FILE, PROVENANCE_FILE];
