import { Readable } from 'node:stream';
import type { Client } from 'minio';
import type { Artifact } from '../db/queries/artifacts';

/**
 * The artifact name that the trailing path of a download URL spells: the path segments after
 * `/artifacts/<id>/download/`, each percent-decoded, joined with "/" (the inverse of
 * core/urls.ts `portalUrls.artifactDownload`). `pathname` is the URL's raw (still encoded)
 * path. Returns undefined when the path is malformed: a bad escape, an empty, "." or ".."
 * segment, or a segment that decodes to something holding "/" (e.g. `%2e%2e%2f`).
 */
export function downloadPathName(pathname: string): string | undefined {
  const segments = pathname.split('/').slice(4);
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

/**
 * The download response of an artifact: its exact object bytes (none for `HEAD`) with
 * Content-Type application/octet-stream, Content-Length in bytes, Content-Disposition and
 * X-Checksum-Sha256 (hex, as recorded when it was uploaded). Throws ArtifactObjectMissing when
 * the object is gone from an existing bucket; rethrows the client's error for anything else (a
 * missing bucket, an unreachable store), and throws Error when the object's size differs from
 * the recorded one.
 */
export async function artifactResponse(options: {
  storage: Client;
  bucket: string;
  artifact: Artifact;
  method: string;
}): Promise<Response> {
  const { storage, bucket, artifact } = options;
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
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(stat.size),
    'Content-Disposition': attachmentDisposition(artifact.name),
    'X-Checksum-Sha256': artifact.sha256,
    'Cache-Control': 'private, max-age=3600',
  };
  if (options.method === 'HEAD') return new Response(null, { headers });
  const object = await storage.getObject(bucket, artifact.objectKey).catch((error: unknown) => {
    throw isMissing(error) ? new ArtifactObjectMissing(artifact.objectKey) : error;
  });
  return new Response(Readable.toWeb(object) as ReadableStream<Uint8Array>, { headers });
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'NoSuchKey' || code === 'NotFound';
}
