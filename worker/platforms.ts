import { readFileSync, readdirSync } from 'node:fs';

/** QEMU's user-mode binary names (qemu-<name>) → OCI platforms (OCI image index spec). */
const QEMU_PLATFORMS: Record<string, string> = {
  aarch64: 'linux/arm64',
  arm: 'linux/arm/v7',
  i386: 'linux/386',
  mips64el: 'linux/mips64le',
  ppc64le: 'linux/ppc64le',
  riscv64: 'linux/riscv64',
  s390x: 'linux/s390x',
  loongarch64: 'linux/loong64',
};

/** Node's `process.arch` → OCI architecture. */
const NODE_ARCHES: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
};

/** The OCI platform of this host, e.g. linux/amd64. */
export function hostPlatform(arch: string = process.arch): string {
  return `linux/${NODE_ARCHES[arch] ?? arch}`;
}

/**
 * The OCI platforms this host can run containers of by QEMU emulation: the binfmt_misc handlers
 * (Linux Documentation/admin-guide/binfmt-misc.rst) named qemu-* that are enabled and have the
 * F flag (the interpreter is opened when registered, so it works inside containers), as Debian's
 * qemu-user-static registers them. `native` is left out. Empty when binfmt_misc is not mounted.
 */
export function emulatedPlatforms(
  native: string[],
  binfmtDir = '/proc/sys/fs/binfmt_misc',
): string[] {
  let entries: string[];
  try {
    entries = readdirSync(binfmtDir);
  } catch {
    return [];
  }
  const platforms = new Set<string>();
  for (const entry of entries) {
    const platform = QEMU_PLATFORMS[entry.replace(/^qemu-/, '')];
    if (!entry.startsWith('qemu-') || !platform || native.includes(platform)) continue;
    const handler = readFileSync(`${binfmtDir}/${entry}`, 'utf8');
    const flags = /^flags: (\S*)$/m.exec(handler)?.[1] ?? '';
    if (handler.startsWith('enabled') && flags.includes('F')) platforms.add(platform);
  }
  return [...platforms].sort();
}
