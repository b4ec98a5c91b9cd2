import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CrossdockError } from './errors';
import { parseRecipe, runPlatform } from './recipe';

const example = readFileSync(
  new URL('../deploy/examples/hello/crossdock.yml', import.meta.url),
  'utf8',
);

function errorOf(text: string): string {
  try {
    parseRecipe(text);
  } catch (error) {
    expect(error).toBeInstanceOf(CrossdockError);
    expect((error as CrossdockError).code).toBe('recipe-invalid');
    return (error as Error).message;
  }
  throw new Error('expected the recipe to be refused');
}

describe('parseRecipe', () => {
  it('reads the GNU hello example with defaults filled in', () => {
    const recipe = parseRecipe(example);
    expect(Object.keys(recipe.targets)).toEqual(['amd64', 'arm64', 'arm64-emulated']);
    expect(recipe.targets.arm64).toMatchObject({
      platform: 'linux/arm64',
      toolchain: 'cross',
      image: 'crossdock/builder-debian:bookworm',
      artifacts: ['hello-linux-*'],
      network: false,
      timeout_minutes: 60,
    });
    expect(runPlatform(recipe.targets.arm64!)).toBe('linux/amd64');
    expect(runPlatform(recipe.targets.amd64!)).toBe('linux/amd64');
    expect(recipe.targets['arm64-emulated']).toMatchObject({
      toolchain: 'emulated',
      image: 'crossdock/builder-debian:bookworm-arm64',
    });
    expect(runPlatform(recipe.targets['arm64-emulated']!)).toBe('linux/arm64');
    expect(recipe.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['targets: [', /^\.crossdock\.yml line 1: not valid YAML/],
    ['{}', /^\.crossdock\.yml line 1, targets: is required$/],
    ['targets: {}', /targets: must declare at least one target/],
    [
      'targets:\n  arm64:\n    platform: arm64\n    image: x\n    script: make\n',
      /^\.crossdock\.yml line 3, targets\.arm64\.platform: must be an OCI platform such as linux\/arm64$/,
    ],
    [
      'targets:\n  arm64:\n    platform: linux/arm64\n    image: x\n    script: make\n    toolchain: magic\n',
      /line 6, targets\.arm64\.toolchain: /,
    ],
    [
      'targets:\n  arm64:\n    platform: linux/arm64\n    image: x\n    scirpt: make\n',
      /targets\.arm64: unknown field scirpt/,
    ],
    [
      'targets:\n  arm64:\n    platform: linux/arm64\n    image: x\n',
      /line 3, targets\.arm64\.script: is required$/,
    ],
  ])('refuses %j naming the line and field', (text, message) => {
    expect(errorOf(text)).toMatch(message);
  });
});
