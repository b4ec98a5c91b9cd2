import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join, posix } from 'node:path';
import type { Client } from 'minio';
import pRetry from 'p-retry';
import picomatch from 'picomatch';
import tar from 'tar-stream';
import { CrossdockError } from '../core/errors';

/** A file copied out of a container's /out: its path there, local copy, size and sha256 (hex). */
export interface StagedArtifact {
  name: string;
  path: string;
  size: number;
  sha256: string;
}

/** An uploaded artifact: its path under /out, object key, size in bytes and sha256 (hex). */
export interface UploadedArtifact {
  name: string;
  objectKey: string;
  size: number;
  sha256: string;
}

/**
 * Reads the tar stream of /out (entries under `out/`, as the Docker Engine's archive endpoint
 * returns it) and copies every regular file whose path relative to /out matches one of `globs`
 * (picomatch syntax) into directory `dir`, computing size and sha256 as it goes. Files are staged
 * on local disk so that an upload that fails can be tried again.
 *
 * Throws CrossdockError `artifact-invalid` for a matching entry that is a link, and when no file
 * matches; these are the build's fault and are not retried.
 */
export async function stageArtifacts(options: {
  archive: Readable;
  globs: string[];
  dir: string;
}): Promise<StagedArtifact[]> {
  const { archive, globs, dir } = options;
  const matches = picomatch(globs, { dot: true });
  const staged: StagedArtifact[] = [];
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
      const hash = createHash('sha256');
      let size = 0;
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          size += chunk.length;
          callback(null, chunk);
        },
      });
      const path = join(dir, String(staged.length));
      await pipeline(entry, hashing, createWriteStream(path));
      if (size !== header.size) {
        throw new Error(
          `artifact ${name}: read ${size} bytes, the archive header said ${header.size}`,
        );
      }
      staged.push({ name, path, size, sha256: hash.digest('hex') });
    }
  } catch (error) {
    archive.destroy();
    throw error;
  }
  if (globs.length > 0 && staged.length === 0) {
    throw new CrossdockError(
      'artifact-invalid',
      `no file in /out matches the target's artifacts ${JSON.stringify(globs)}; write the files to /out or fix the globs`,
    );
  }
  return staged;
}

/** How uploads are retried: `retries` more tries, waiting `minDelayMs`, doubling each time. */
export interface RetryPolicy {
  retries: number;
  minDelayMs: number;
}

/**
 * Uploads staged artifacts to `bucket` at `keyFor(name)`. Each object is tried again with
 * exponential backoff (p-retry) when object storage fails; `onRetry` hears of each failed try.
 * If one still fails, the objects already uploaded (and any incomplete multipart upload) are
 * removed as far as storage allows, and CrossdockError `infrastructure` is thrown.
 */
export async function uploadArtifacts(options: {
  staged: StagedArtifact[];
  client: Client;
  bucket: string;
  keyFor: (name: string) => string;
  retry: RetryPolicy;
  onRetry?: (message: string) => void;
}): Promise<UploadedArtifact[]> {
  const { staged, client, bucket, keyFor, retry } = options;
  const uploaded: UploadedArtifact[] = [];
  for (const artifact of staged) {
    const objectKey = keyFor(artifact.name);
    try {
      await pRetry(
        () =>
          client.putObject(bucket, objectKey, createReadStream(artifact.path), artifact.size, {
            'Content-Type': 'application/octet-stream',
          }),
        {
          retries: retry.retries,
          minTimeout: retry.minDelayMs,
          factor: 2,
          onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
            if (retriesLeft > 0)
              options.onRetry?.(
                `uploading ${artifact.name} failed (try ${attemptNumber}: ${error.message}); trying again`,
              );
          },
        },
      );
    } catch (error) {
      await client.removeIncompleteUpload(bucket, objectKey).catch(() => {});
      await removeObjects(
        client,
        bucket,
        uploaded.map((done) => done.objectKey),
      ).catch(() => {});
      throw new CrossdockError(
        'infrastructure',
        `object storage failed ${retry.retries + 1} times uploading artifact ${artifact.name}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    uploaded.push({ name: artifact.name, objectKey, size: artifact.size, sha256: artifact.sha256 });
  }
  return uploaded;
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
