import { Readable } from 'node:stream';
import type { Client } from 'minio';
import parseRange from 'range-parser';
import type { Artifact } from '../db/queries/artifacts';

/**
 * The artifact name that the trailing path of a download URL spells: the path segments after the
 * first `skip` (e.g. 4 for `/artifacts/<id>/download/…`: the empty one before the first "/"
 * counts), each percent-decoded, joined with "/" (the inverse of core/urls.ts `fileSegments`).
 * `pathname` is the URL's raw (still encoded) path. Returns undefined when the path is malformed:
 * a bad escape, an empty, "." or ".." segment, or a segment that decodes to something holding "/"
 * (e.g. `%2e%2e%2f`).
 */
export function fileNameInPath(pathname: string, skip: number): string | undefined {
  const segments = pathname.split('/').slice(skip);
  if (segments.length === 0) return undefined;
  const decoded: string[] = [];
  for (const segment of segments) {
    let name: string;
    try {
      name = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
    if (name === '' || name === '.' || name === '..' || name.includes('/')) return undefined;
    decoded.push(name);
  }
  return decoded.join('/');
}

/** Characters of RFC 8187's attr-char that encodeURIComponent leaves alone but must be escaped. */
const NOT_ATTR_CHAR = /['()*]/g;

/**
 * The Content-Disposition header value that makes a browser save a file as the last path
 * segment of `name` (RFC 6266). The quoted `filename` is an ASCII stand-in in which every
 * character outside printable ASCII, `"` and `\` becomes `_`; when that differs from the real
 * name, `filename*` (RFC 8187, UTF-8, percent-encoded) carries it exactly.
 */
export function attachmentDisposition(name: string): string {
  const basename = name.slice(name.lastIndexOf('/') + 1) || 'download';
  const fallback = basename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  if (fallback === basename) return `attachment; filename="${basename}"`;
  const encoded = encodeURIComponent(basename).replace(
    NOT_ATTR_CHAR,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** Thrown when an artifact's object is missing from the bucket (deleted by retention, or lost). */
export class ArtifactObjectMissing extends Error {
  constructor(readonly objectKey: string) {
    super(`object ${objectKey} is missing`);
    this.name = 'ArtifactObjectMissing';
  }
}

/** The request headers a download honours. */
export interface DownloadConditions {
  /** `Range` (RFC 9110 §14.2): one byte range is served as 206; several get the whole file. */
  range?: string;
  /** `If-Range`: the range applies only while the ETag still matches. */
  ifRange?: string;
  /** `If-None-Match`: 304 when the ETag matches. */
  ifNoneMatch?: string;
}

/**
 * The download response of an artifact: its exact object bytes (none for `HEAD`) with
 * Content-Type application/octet-stream, Content-Length in bytes, Content-Disposition,
 * X-Checksum-Sha256 (hex, as recorded when it was uploaded), a strong ETag (the quoted sha256,
 * so it names the bytes whatever URL serves them) and Accept-Ranges. Honours `conditions`
 * (RFC 9110): If-None-Match → 304; a single satisfiable byte Range → 206 with Content-Range,
 * read from the store as just that part; an unsatisfiable one → 416 with a Content-Range that
 * gives the size. Throws ArtifactObjectMissing when the object is gone from an existing bucket;
 * rethrows the client's error for anything else (a missing bucket, an unreachable store), and
 * throws Error when the object's size differs from the recorded one.
 */
export async function artifactResponse(options: {
  storage: Client;
  bucket: string;
  artifact: Artifact;
  method: string;
  conditions?: DownloadConditions;
}): Promise<Response> {
  const { storage, bucket, artifact } = options;
  const conditions = options.conditions ?? {};
  const stat = await storage
    .statObject(bucket, artifact.objectKey)
    .catch(async (error: unknown) => {
      // A HEAD request's error has no body: a missing bucket (misconfiguration) looks the same.
      if (isMissing(error) && (await storage.bucketExists(bucket))) {
        throw new ArtifactObjectMissing(artifact.objectKey);
      }
      throw error;
    });
  if (stat.size !== artifact.size) {
    throw new Error(
      `artifact ${artifact.id}: object ${artifact.objectKey} has ${stat.size} bytes, the record says ${artifact.size}`,
    );
  }
  const etag = `"${artifact.sha256}"`;
  const headers: Record<string, string> = {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': attachmentDisposition(artifact.name),
    'X-Checksum-Sha256': artifact.sha256,
    'Cache-Control': 'private, max-age=3600',
    ETag: etag,
    'Accept-Ranges': 'bytes',
  };
  if (matchesEtag(conditions.ifNoneMatch, etag))
    return new Response(null, { status: 304, headers });
  const range = byteRange(stat.size, conditions, etag);
  if (range === 'unsatisfiable')
    return new Response(null, {
      status: 416,
      headers: { ...headers, 'Content-Range': `bytes */${stat.size}` },
    });
  const length = range ? range.end - range.start + 1 : stat.size;
  headers['Content-Length'] = String(length);
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${stat.size}`;
  const status = range ? 206 : 200;
  if (options.method === 'HEAD') return new Response(null, { status, headers });
  const object = await (
    range
      ? storage.getPartialObject(bucket, artifact.objectKey, range.start, length)
      : storage.getObject(bucket, artifact.objectKey)
  ).catch((error: unknown) => {
    throw isMissing(error) ? new ArtifactObjectMissing(artifact.objectKey) : error;
  });
  return new Response(Readable.toWeb(object) as ReadableStream<Uint8Array>, { status, headers });
}

/** Whether an If-None-Match header lists `etag` (or is `*`); weak comparison (RFC 9110 §13.1.2). */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}

/**
 * The one byte range to serve (inclusive offsets), undefined for the whole file, or
 * `unsatisfiable`. A Range that is invalid, not in bytes, of several ranges, or whose If-Range is
 * not this ETag is ignored (the whole file), as RFC 9110 §14.2 allows.
 */
function byteRange(
  size: number,
  conditions: DownloadConditions,
  etag: string,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!conditions.range) return undefined;
  if (conditions.ifRange !== undefined && conditions.ifRange.trim() !== etag) return undefined;
  const ranges = parseRange(size, conditions.range, { combine: true });
  if (ranges === -1) return 'unsatisfiable';
  if (ranges === -2 || ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  return ranges[0];
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'NoSuchKey' || code === 'NotFound';
}

/**
 * A presigned GET URL of `artifact`'s object (AWS Signature V4 query string, as MinIO and S3
 * accept it), valid for `seconds`, that makes the store answer with the artifact's
 * Content-Disposition and content type. `storage` must be a client for the endpoint the
 * downloader reaches (the signature covers the host) with its region set, so that signing makes
 * no request.
 */
export async function presignedArtifactUrl(
  storage: Client,
  bucket: string,
  artifact: Artifact,
  seconds: number,
): Promise<string> {
  return storage.presignedGetObject(bucket, artifact.objectKey, seconds, {
    'response-content-disposition': attachmentDisposition(artifact.name),
    'response-content-type': 'application/octet-stream',
  });
}
