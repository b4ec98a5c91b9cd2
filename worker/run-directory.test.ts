import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRunDirectory, listRunDirectories, removeRunDirectory } from './run-directory';

describe('run directories', () => {
  let workDir: string;
  beforeEach(() => {
    workDir = mkdtempSync(join(tmpdir(), 'crossdock-runs-'));
  });
  afterEach(() => rmSync(workDir, { recursive: true, force: true }));

  it('are made private with empty src and out, and listed with their attempt, any worker id', async () => {
    const workerId = 'build-07/a b%.c';
    const run = await createRunDirectory(workDir, { jobId: 42, attempt: 3, workerId });
    expect(statSync(join(workDir, 'runs')).mode & 0o777).toBe(0o700);
    expect(statSync(run.path).mode & 0o777).toBe(0o700);
    expect(statSync(run.src).isDirectory() && statSync(run.out).isDirectory()).toBe(true);
    mkdirSync(join(workDir, 'runs', 'not-a-run'));
    mkdirSync(join(workDir, 'runs', '1.2.%zz'));
    expect(await listRunDirectories(workDir)).toEqual([
      { path: run.path, jobId: 42, attempt: 3, workerId },
    ]);
    await expect(createRunDirectory(workDir, { jobId: 42, attempt: 3, workerId })).rejects.toThrow(
      /EEXIST/,
    );
  });

  it('are removed with what the container left, links removed and not followed, twice safely', async () => {
    const kept = join(workDir, 'kept');
    writeFileSync(kept, 'outside the run directory\n');
    const run = await createRunDirectory(workDir, { jobId: 1, attempt: 1, workerId: 'w' });
    symlinkSync(workDir, join(run.out, 'up'));
    symlinkSync(kept, join(run.src, 'file'));
    await removeRunDirectory(run.path);
    await removeRunDirectory(run.path);
    expect(await listRunDirectories(workDir)).toEqual([]);
    expect(statSync(kept).isFile()).toBe(true);
  });

  it('are none before the first', async () => {
    expect(await listRunDirectories(workDir)).toEqual([]);
  });
});
