import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestBucket } from '../test/support/services';
import { stageArtifacts, uploadArtifacts } from './artifacts';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

// /out as a build container leaves it on the host: these tests make what a hostile script could.
describe('stageArtifacts', () => {
  let dir: string;
  let out: string;
  let outside: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'crossdock-artifacts-'));
    out = join(dir, 'out');
    outside = join(dir, 'outside');
    mkdirSync(out);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'not for the build\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('finds the matching regular files, dot files and nested ones included, sorted by name, in place', async () => {
    mkdirSync(join(out, 'dist/linux'), { recursive: true });
    writeFileSync(join(out, 'dist/linux/app'), 'binary\n');
    writeFileSync(join(out, 'dist/.checksums'), 'sums\n');
    writeFileSync(join(out, 'notes.md'), 'ignored\n');
    writeFileSync(join(out, 'empty.txt'), '');
    const staged = await stageArtifacts({ outDir: out, globs: ['dist/**', '*.txt'] });
    expect(staged).toEqual([
      {
        name: 'dist/.checksums',
        path: join(out, 'dist/.checksums'),
        size: 5,
        sha256: sha256('sums\n'),
      },
      {
        name: 'dist/linux/app',
        path: join(out, 'dist/linux/app'),
        size: 7,
        sha256: sha256('binary\n'),
      },
      { name: 'empty.txt', path: join(out, 'empty.txt'), size: 0, sha256: sha256('') },
    ]);
  });

  // Each maker returns what undoes it, if anything must be.
  const refusals: [string, (path: string) => unknown, string][] = [
    [
      'a symbolic link to a file outside',
      (path) => symlinkSync(join(outside, 'secret'), path),
      `a symbolic link (to OUTSIDE/secret)`,
    ],
    [
      'a symbolic link to a directory outside',
      (path) => symlinkSync(outside, path),
      'a symbolic link (to OUTSIDE)',
    ],
    [
      'a relative symbolic link with ..',
      (path) => symlinkSync('../outside/secret', path),
      'a symbolic link (to ../outside/secret)',
    ],
    ['a fifo', (path) => execFileSync('mkfifo', [path]), 'a named pipe (fifo)'],
    ['a socket', (path) => listen(path), 'a socket'],
  ];
  if (process.getuid?.() === 0)
    refusals.push([
      'a device',
      (path) => execFileSync('mknod', [path, 'c', '1', '3']),
      'a character device',
    ]);

  it.each(refusals)('refuses %s that matches, with artifact-invalid', async (_, make, what) => {
    const made = await make(join(out, 'artifact'));
    try {
      const staging = stageArtifacts({ outDir: out, globs: ['artifact', 'artifact/**'] });
      await expect(staging).rejects.toMatchObject({
        code: 'artifact-invalid',
        message: `artifact artifact is ${what.replace('OUTSIDE', outside)}; only regular files under /out are collected: copy the file itself there`,
      });
    } finally {
      if (typeof made === 'function') await made();
    }
  });

  it('ignores what does not match without opening it, and never descends into a linked directory', async () => {
    symlinkSync(outside, join(out, 'linked'));
    execFileSync('mkfifo', [join(out, 'pipe')]);
    writeFileSync(join(out, 'real'), 'real\n');
    await expect(stageArtifacts({ outDir: out, globs: ['real'] })).resolves.toHaveLength(1);
    await expect(stageArtifacts({ outDir: out, globs: ['linked/secret'] })).rejects.toMatchObject({
      code: 'artifact-invalid',
      message: `no file in /out matches the target's artifacts ["linked/secret"]; write the files to /out or fix the globs`,
    });
  });

  it('needs no file when the target declares no artifacts', async () => {
    await expect(stageArtifacts({ outDir: out, globs: [] })).resolves.toEqual([]);
  });

  it('uploads a staged file, but not one replaced by a symbolic link since', async () => {
    const bucket = await createTestBucket();
    try {
      writeFileSync(join(out, 'a.txt'), 'a\n');
      writeFileSync(join(out, 'b.txt'), 'b\n');
      const staged = await stageArtifacts({ outDir: out, globs: ['*.txt'] });
      unlinkSync(join(out, 'b.txt'));
      symlinkSync(join(outside, 'secret'), join(out, 'b.txt'));
      const upload = uploadArtifacts({
        staged,
        client: bucket.client,
        bucket: bucket.storage.bucket,
        keyFor: (name) => `artifacts/${name}`,
        retry: { retries: 0, minDelayMs: 1 },
      });
      await expect(upload).rejects.toMatchObject({
        code: 'infrastructure',
        message: expect.stringMatching(/uploading artifact b\.txt: ELOOP/),
      });
      expect(await bucket.keys()).toEqual([]);
    } finally {
      await bucket.remove();
    }
  });
});

/** Listens on a unix socket at `path`; resolves with what closes it. */
async function listen(path: string): Promise<() => Promise<void>> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
