import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { posix } from 'node:path';
import type { Client } from 'minio';
import picomatch from 'picomatch';
import tar from 'tar-stream';
import { CrossdockError } from '../core/errors';

/** An uploaded artifact: its path under /out, object key, size in bytes and sha256 (hex). */
export interface UploadedArtifact {
  name: string;
  objectKey: string;
  size: number;
  sha256: string;
}

/**
 * Reads the tar stream of /out (entries under `out/`, as the Docker Engine's archive endpoint
 * returns it) and uploads every regular file whose path relative to /out matches one of `globs`
 * (picomatch syntax) to `bucket` at `keyFor(name)`, computing size and sha256 as it streams.
 *
 * Throws CrossdockError `artifact-invalid` for a matching entry that is a link or whose path
 * leaves /out, and when no file matches. On any error, objects already uploaded are removed
 * before it throws, so no partial set is left behind.
 */
export async function uploadArtifacts(options: {
  archive: Readable;
  globs: string[];
  client: Client;
  bucket: string;
  keyFor: (name: string) => string;
}): Promise<UploadedArtifact[]> {
  const { archive, globs, client, bucket, keyFor } = options;
  const matches = picomatch(globs, { dot: true });
  const uploaded: UploadedArtifact[] = [];
  const seen: string[] = [];
  const extract = tar.extract();
  archive.pipe(extract);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const name = relativeToOut(header.name);
      if (name === undefined || !matches(name)) {
        entry.resume();
        continue;
      }
      if (header.type !== 'file') {
        entry.resume();
        if (header.type === 'directory') continue;
        throw new CrossdockError(
          'artifact-invalid',
          `artifact ${name} is a ${header.type === 'symlink' ? 'symbolic link' : header.type} (to ${header.linkname ?? '?'}); only regular files under /out are collected: copy the file itself there`,
        );
      }
      seen.push(name);
      const hash = createHash('sha256');
      let size = 0;
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      const objectKey = keyFor(name);
      await client.putObject(bucket, objectKey, entry.pipe(hashing), header.size ?? 0, {
        'Content-Type': 'application/octet-stream',
      });
      if (size !== header.size) {
        throw new Error(
          `artifact ${name}: read ${size} bytes, the archive header said ${header.size}`,
        );
      }
      uploaded.push({ name, objectKey, size, sha256: hash.digest('hex') });
    }
    if (globs.length > 0 && uploaded.length === 0) {
      throw new CrossdockError(
        'artifact-invalid',
        `no file in /out matches the target's artifacts ${JSON.stringify(globs)}; write the files to /out or fix the globs`,
      );
    }
    return uploaded;
  } catch (error) {
    archive.destroy();
    await removeObjects(
      client,
      bucket,
      uploaded.map((artifact) => artifact.objectKey),
    );
    throw error;
  }
}

/** `out/a/b.tar.gz` → `a/b.tar.gz`; undefined for /out itself and for paths that leave it. */
function relativeToOut(entryName: string): string | undefined {
  const normalized = posix.normalize(entryName);
  if (normalized.startsWith('/') || !normalized.startsWith('out/')) return undefined;
  const name = normalized.slice('out/'.length).replace(/\/$/, '');
  if (!name || name === '..' || name.startsWith('../')) return undefined;
  return name;
}

/** Deletes objects, ignoring ones already gone. */
export async function removeObjects(client: Client, bucket: string, keys: string[]): Promise<void> {
  if (keys.length > 0) await client.removeObjects(bucket, keys);
}
