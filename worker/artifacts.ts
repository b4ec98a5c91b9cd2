import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from 'minio';
import pRetry from 'p-retry';
import picomatch from 'picomatch';
import { CrossdockError } from '../core/errors';

/** A file the container left in /out: its path there, its path on this host, size and sha256 (hex). */
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
 * Finds the regular files in `outDir` (the host directory a build container had at /out; the
 * container must have exited, so nothing changes it any more) whose path relative to it matches
 * one of `globs` (picomatch syntax, dot files included), and reads each once for its size and
 * sha256. The files stay where they are, for the upload and its retries; they are sorted by name.
 *
 * Nothing the container made is followed: entries are examined with lstat, only real directories
 * are descended into, and a matching file is opened with O_NOFOLLOW and must still be the regular
 * file lstat saw. The worker's user must be able to read what the container wrote.
 *
 * Throws CrossdockError `artifact-invalid` for a matching entry that is not a regular file (a
 * symbolic link, fifo, socket or device), and when no file matches; these are the build's fault
 * and are not retried.
 */
export async function stageArtifacts(options: {
  outDir: string;
  globs: string[];
}): Promise<StagedArtifact[]> {
  const { outDir, globs } = options;
  const matches = picomatch(globs, { dot: true });
  const staged: StagedArtifact[] = [];
  const directories = [''];
  for (let directory = directories.pop(); directory !== undefined; directory = directories.pop()) {
    for (const entry of await readdir(join(outDir, directory))) {
      const name = directory ? `${directory}/${entry}` : entry;
      const path = join(outDir, name);
      const stats = await lstat(path);
      if (stats.isDirectory()) directories.push(name);
      else if (!matches(name)) continue;
      else if (stats.isFile()) staged.push({ name, path, ...(await measure(path, stats)) });
      else
        throw new CrossdockError(
          'artifact-invalid',
          `artifact ${name} is ${await describe(path, stats)}; only regular files under /out are collected: copy the file itself there`,
        );
    }
  }
  if (globs.length > 0 && staged.length === 0) {
    throw new CrossdockError(
      'artifact-invalid',
      `no file in /out matches the target's artifacts ${JSON.stringify(globs)}; write the files to /out or fix the globs`,
    );
  }
  return staged.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Size (bytes read) and sha256 of the regular file at `path`, which lstat saw as `seen`. */
function measure(path: string, seen: Stats): Promise<{ size: number; sha256: string }> {
  return withFile(path, async (file) => {
    const stats = await file.stat();
    if (!stats.isFile() || stats.ino !== seen.ino || stats.dev !== seen.dev)
      throw new Error(`${path} changed while it was being read`);
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of file.createReadStream({
      autoClose: false,
    }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
    if (size !== stats.size)
      throw new Error(`${path}: read ${size} bytes, the file system said ${stats.size}`);
    return { size, sha256: hash.digest('hex') };
  });
}

/**
 * Calls `use` with the file at `path` opened for reading without following a symbolic link (and
 * without blocking on a fifo), and closes it when `use` settles.
 */
async function withFile<T>(path: string, use: (file: FileHandle) => Promise<T>): Promise<T> {
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    return await use(file);
  } finally {
    await file.close();
  }
}

/** What a file that is not a regular one is, in words, for the error message. */
async function describe(path: string, stats: Stats): Promise<string> {
  if (stats.isSymbolicLink())
    return `a symbolic link (to ${await readlink(path).catch(() => '?')})`;
  if (stats.isFIFO()) return 'a named pipe (fifo)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isCharacterDevice()) return 'a character device';
  return 'not a regular file';
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
          withFile(artifact.path, (file) =>
            client.putObject(
              bucket,
              objectKey,
              file.createReadStream({ autoClose: false }),
              artifact.size,
              {
                'Content-Type': 'application/octet-stream',
              },
            ),
          ),
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

/** Deletes objects, ignoring ones already gone. */
export async function removeObjects(client: Client, bucket: string, keys: string[]): Promise<void> {
  if (keys.length > 0) await client.removeObjects(bucket, keys);
}
