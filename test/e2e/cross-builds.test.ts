import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listArtifactsForJobs } from '../../db/queries/artifacts';
import { builds, jobs } from '../../db/schema';
import { RESERVED_ARTIFACT_NAMES } from '../../worker/provenance';
import { startStack } from '../support/stack';

const run = promisify(execFile);
const ROOT = new URL('../../', import.meta.url).pathname;
/** The arm64 builder image deploy/setup.sh builds: arm64 binaries run in it under QEMU. */
const ARM64_IMAGE = 'crossdock/builder-debian:bookworm-arm64';

/** ELF e_machine values (System V gABI, "ELF Header"). */
const EM_X86_64 = 62;
const EM_AARCH64 = 183;

/** The ELF machine of an executable's bytes; throws if they are not ELF. */
function elfMachine(bytes: Buffer): number {
  if (bytes.subarray(0, 4).toString('latin1') !== '\x7fELF') throw new Error('not an ELF file');
  return bytes.readUInt16LE(18);
}

/**
 * Real projects from Debian source packages, each with its recipe from deploy/examples, built
 * through the whole stack (`crossdock build all … --wait`, a worker, MinIO) for amd64 natively
 * and for arm64 by cross-compiling; GNU hello also by emulation. Every binary's ELF machine is
 * checked, and the arm64 ones run under QEMU user emulation (binfmt_misc) in the arm64 builder
 * image.
 */
describe('cross-builds of Debian source packages', () => {
  let stack: Awaited<ReturnType<typeof startStack>>;
  let scratch: string;
  const cli = (args: string[]) => stack.cli(args, 'matrix');

  /** Builds every target of deploy/examples/PACKAGE at main; returns its binaries by target. */
  async function buildAll(pkg: string) {
    const cloneUrl = join(stack.gitRoot, 'debian', `${pkg}.git`);
    await run('bash', [join(ROOT, 'deploy/examples/make-source-repo.sh'), pkg, cloneUrl]);
    await cli(['repo', 'add', `debian/${pkg}`, '--git-url', cloneUrl]);
    const { stdout } = await cli(['build', 'all', 'main', 'in', `debian/${pkg}`, '--wait']);
    const buildId = Number(/build #(\d+)/.exec(stdout)?.[1]);
    const [build] = await stack.db.select().from(builds).where(eq(builds.id, buildId));
    expect(build?.state, stdout).toBe('succeeded');
    const built = await stack.db.select().from(jobs).where(eq(jobs.buildId, buildId));
    const binaries = new Map<
      string,
      { toolchain: string; imageDigest: string | null; bytes: Buffer; path: string }
    >();
    for (const job of built) {
      // The executable: every recipe here also may leave a .tar.gz of the installed tree.
      // (and SHA256SUMS and the provenance).
      const artifact = (await listArtifactsForJobs(stack.db, [job.id])).find(
        (a) => !a.name.endsWith('.tar.gz') && !RESERVED_ARTIFACT_NAMES.includes(a.name),
      );
      expect(artifact, `the executable of ${pkg} ${job.target}`).toBeDefined();
      const stream = await stack.bucket.client.getObject(
        stack.bucket.storage.bucket,
        artifact!.objectKey,
      );
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      const path = join(scratch, `${pkg}-${job.target}`);
      writeFileSync(path, bytes, { mode: 0o755 });
      binaries.set(job.target, {
        toolchain: job.toolchain,
        imageDigest: job.imageDigest,
        bytes,
        path,
      });
    }
    return binaries;
  }

  /** Runs an arm64 binary with `args` in the arm64 builder image (QEMU user emulation). */
  const runArm64 = async (path: string, args: string[], input: string | Buffer = '') => {
    const child = run('docker', [
      'run',
      '--rm',
      '-i',
      '--network',
      'none',
      '-v',
      `${path}:/usr/local/bin/under-test:ro`,
      ARM64_IMAGE,
      '/usr/local/bin/under-test',
      ...args,
    ]);
    child.child.stdin?.end(input);
    return (await child).stdout;
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'crossdock-matrix-'));
    stack = await startStack({ workerSlots: 2 });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('has its builder images listed with platform, recipe digest and id; the arm64 one is arm64 inside', async () => {
    const { stdout } = await run('bash', [join(ROOT, 'deploy/builders/build.sh'), '--list']);
    const rows = stdout.trim().split('\n').slice(1);
    const row = (image: string) => rows.find((line) => line.startsWith(`${image} `))?.split(/\s+/);
    expect(row('crossdock/builder-debian:bookworm')).toEqual([
      'crossdock/builder-debian:bookworm',
      'linux/amd64',
      expect.stringMatching(/^[0-9a-f]{12}$/),
      expect.any(String),
      expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    ]);
    expect(row(ARM64_IMAGE)?.[1]).toBe('linux/arm64');
    const uname = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      ARM64_IMAGE,
      'uname',
      '-m',
    ]);
    expect(uname.stdout).toBe('aarch64\n');
  });

  it('builds GNU hello (autotools) natively, cross-compiled and emulated', async () => {
    const hello = await buildAll('hello');
    expect([...hello.keys()].sort()).toEqual(['amd64', 'arm64', 'arm64-emulated']);
    const amd64 = hello.get('amd64')!;
    expect(amd64.toolchain).toBe('native');
    expect(elfMachine(amd64.bytes)).toBe(EM_X86_64);
    expect((await run(amd64.path, ['--version'])).stdout).toMatch(/^hello \(GNU Hello\) 2\.10/);
    for (const [target, toolchain] of [
      ['arm64', 'cross'],
      ['arm64-emulated', 'emulated'],
    ] as const) {
      const binary = hello.get(target)!;
      expect(binary.toolchain).toBe(toolchain);
      expect(elfMachine(binary.bytes)).toBe(EM_AARCH64);
      expect(await runArm64(binary.path, ['--version'])).toMatch(/^hello \(GNU Hello\) 2\.10/);
      expect(await runArm64(binary.path, [])).toBe('Hello, world!\n');
    }
  }, 900_000);

  it('builds brotli (CMake) natively and cross-compiled; the arm64 build decodes what amd64 encoded', async () => {
    const brotli = await buildAll('brotli');
    const amd64 = brotli.get('amd64')!;
    const arm64 = brotli.get('arm64')!;
    expect([amd64.toolchain, arm64.toolchain]).toEqual(['native', 'cross']);
    expect(elfMachine(amd64.bytes)).toBe(EM_X86_64);
    expect(elfMachine(arm64.bytes)).toBe(EM_AARCH64);
    expect(await runArm64(arm64.path, ['--version'])).toMatch(/^brotli 1\.0\.9/);
    const text = join(ROOT, 'README.md');
    await run(amd64.path, ['-f', '-o', join(scratch, 'readme.br'), text]);
    const decoded = await runArm64(
      arm64.path,
      ['-d', '-c', '/dev/stdin'],
      readFileSync(join(scratch, 'readme.br')),
    );
    expect(decoded).toBe(readFileSync(text, 'utf8'));
  }, 900_000);

  it('builds GNU FriBidi (Meson) natively, cross-compiled and from its Dockerfile for both platforms; all reorder the same text', async () => {
    const fribidi = await buildAll('fribidi');
    const amd64 = fribidi.get('amd64')!;
    const arm64 = fribidi.get('arm64')!;
    expect([amd64.toolchain, arm64.toolchain]).toEqual(['native', 'cross']);
    expect(elfMachine(amd64.bytes)).toBe(EM_X86_64);
    expect(elfMachine(arm64.bytes)).toBe(EM_AARCH64);
    expect(await runArm64(arm64.path, ['--version'])).toMatch(/fribidi.*1\.0\.8/i);
    // The Dockerfile targets: built for their platform by the Engine, /out of the final stage.
    const dockerfile = readFileSync(join(ROOT, 'deploy/examples/fribidi/Dockerfile'));
    const dockerfileDigest = `sha256:${createHash('sha256').update(dockerfile).digest('hex')}`;
    const amd64Docker = fribidi.get('amd64-docker')!;
    const arm64Docker = fribidi.get('arm64-docker')!;
    expect([amd64Docker.toolchain, arm64Docker.toolchain]).toEqual(['native', 'emulated']);
    expect([amd64Docker.imageDigest, arm64Docker.imageDigest]).toEqual([
      dockerfileDigest,
      dockerfileDigest,
    ]);
    expect(elfMachine(amd64Docker.bytes)).toBe(EM_X86_64);
    expect(elfMachine(arm64Docker.bytes)).toBe(EM_AARCH64);
    // CapRTL charset: capital letters are right-to-left, so a capitalised word is reversed.
    const input = 'hello WORLD\n';
    const args = ['--charset', 'CapRTL', '--nopad', '--ltr'];
    const onAmd64 = await new Promise<string>((resolve, reject) => {
      const child = execFile(amd64.path, args, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
      child.stdin?.end(input);
    });
    expect(onAmd64).toBe('hello DLROW\n');
    expect(await runArm64(arm64.path, args, input)).toBe(onAmd64);
    expect(await runArm64(arm64Docker.path, args, input)).toBe(onAmd64);
    const onAmd64Docker = await new Promise<string>((resolve, reject) => {
      const child = execFile(amd64Docker.path, args, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
      child.stdin?.end(input);
    });
    expect(onAmd64Docker).toBe(onAmd64);
  }, 900_000);
});
