import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Fence } from '../db/queries/jobs';

/** An attempt, and the worker that claimed it. */
export interface Attempt extends Fence {
  workerId: string;
}

/**
 * The host directories of one attempt, bound into its container: `src` at /src and `out` at
 * /out. Both live in `path`, `<workDir>/runs/<job>.<attempt>.<worker id, URI-encoded>`.
 */
export interface RunDirectory {
  path: string;
  src: string;
  out: string;
}

const NAME = /^(\d+)\.(\d+)\.(.+)$/;

/**
 * Makes the attempt's run directory under `<workDir>/runs` with empty `src` and `out`. `runs` and
 * each run directory are mode 0700, so no other user of the host reaches what a container left
 * there (setuid files, device nodes). Throws the file system's error (EEXIST if it exists).
 */
export async function createRunDirectory(workDir: string, attempt: Attempt): Promise<RunDirectory> {
  const runs = join(workDir, 'runs');
  await mkdir(runs, { recursive: true, mode: 0o700 });
  const path = join(
    runs,
    `${attempt.jobId}.${attempt.attempt}.${encodeURIComponent(attempt.workerId)}`,
  );
  await mkdir(path, { mode: 0o700 });
  const directory = { path, src: join(path, 'src'), out: join(path, 'out') };
  await Promise.all([mkdir(directory.src), mkdir(directory.out)]);
  return directory;
}

/**
 * The run directories under `<workDir>/runs`, with the attempt each belongs to (to find the ones
 * left by a worker that died: db findStaleAttempts). Entries named otherwise are left alone.
 */
export async function listRunDirectories(workDir: string): Promise<(Attempt & { path: string })[]> {
  const runs = join(workDir, 'runs');
  const names = await readdir(runs).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return names.flatMap((name) => {
    const match = NAME.exec(name);
    const workerId = match ? decodeName(match[3]!) : undefined;
    if (!match || workerId === undefined) return [];
    return [
      { path: join(runs, name), jobId: Number(match[1]), attempt: Number(match[2]), workerId },
    ];
  });
}

/**
 * Removes a run directory and everything in it, whoever owns it; symbolic links in it are removed,
 * never followed. Safe to call twice. The container using it must be gone.
 */
export async function removeRunDirectory(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

function decodeName(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}
