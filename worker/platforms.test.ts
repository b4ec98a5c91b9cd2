import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emulatedPlatforms, hostPlatform } from './platforms';

/** A binfmt_misc handler file as the kernel shows it (Documentation/admin-guide/binfmt-misc.rst). */
const handler = (enabled: boolean, flags: string) =>
  `${enabled ? 'enabled' : 'disabled'}\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: ${flags}\noffset 0\nmagic 7f454c46\nmask ffffffff\n`;

describe('platform detection', () => {
  it('maps Node architectures to OCI platforms', () => {
    expect(hostPlatform('x64')).toBe('linux/amd64');
    expect(hostPlatform('arm64')).toBe('linux/arm64');
  });

  it('serves by emulation the enabled qemu handlers with the F flag, except native ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'binfmt-'));
    writeFileSync(join(dir, 'qemu-aarch64'), handler(true, 'PF'));
    writeFileSync(join(dir, 'qemu-riscv64'), handler(true, 'POCF'));
    writeFileSync(join(dir, 'qemu-s390x'), handler(false, 'F'));
    writeFileSync(join(dir, 'qemu-ppc64le'), handler(true, 'P'));
    writeFileSync(join(dir, 'qemu-x86_64'), handler(true, 'F'));
    writeFileSync(join(dir, 'python3.11'), handler(true, 'F'));
    writeFileSync(join(dir, 'status'), 'enabled\n');
    expect(emulatedPlatforms(['linux/amd64'], dir)).toEqual(['linux/arm64', 'linux/riscv64']);
    expect(emulatedPlatforms(['linux/arm64'], dir)).toEqual(['linux/riscv64']);
    expect(emulatedPlatforms(['linux/amd64'], join(dir, 'missing'))).toEqual([]);
  });
});
