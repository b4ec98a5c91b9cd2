import { readFileSync, readdirSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CrossdockError } from './errors';
import { memoryBytes, parseRecipe, recipeJsonSchema, runPlatform } from './recipe';

const examplesDir = new URL('../deploy/examples/', import.meta.url);
const exampleOf = (name: string) =>
  readFileSync(new URL(`${name}/crossdock.yml`, examplesDir), 'utf8');
const example = exampleOf('hello');

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

/** A one-target recipe with `fields` (YAML lines under the target, indented by the helper). */
const recipeWith = (...fields: string[]) =>
  `targets:\n  arm64:\n${fields.map((field) => `    ${field}\n`).join('')}`;

describe('parseRecipe', () => {
  it('reads the GNU hello example with defaults filled in', () => {
    const recipe = parseRecipe(example);
    expect(Object.keys(recipe.targets)).toEqual(['amd64', 'arm64', 'arm64-emulated']);
    expect(recipe.targets.arm64).toMatchObject({
      platform: 'linux/arm64',
      toolchains: ['native', 'cross', 'emulated'],
      images: {
        cross: 'crossdock/builder-debian:bookworm',
        native: 'crossdock/builder-debian:bookworm-arm64',
        emulated: 'crossdock/builder-debian:bookworm-arm64',
      },
      artifacts: ['hello-linux-*'],
      network: false,
      timeoutMinutes: 60,
      resources: {},
      caches: [],
    });
    expect(recipe.targets.amd64).toMatchObject({
      toolchains: ['native'],
      images: { native: 'crossdock/builder-debian:bookworm' },
    });
    expect(recipe.targets['arm64-emulated']).toMatchObject({
      toolchains: ['emulated'],
      images: { emulated: 'crossdock/builder-debian:bookworm-arm64' },
    });
    expect(runPlatform('linux/arm64', 'cross')).toBe('linux/amd64');
    expect(runPlatform('linux/arm64', 'emulated')).toBe('linux/arm64');
    expect(recipe.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('puts allowed toolchain modes in the policy order and fills in images per mode', () => {
    const target = parseRecipe(
      recipeWith(
        'platform: linux/arm64',
        'toolchain: [emulated, cross, emulated]',
        'image: { cross: x, emulated: y }',
        'script: make',
      ),
    ).targets.arm64!;
    expect(target.toolchains).toEqual(['cross', 'emulated']);
    // An emulated target also runs natively on an arm64 worker, in the same image.
    expect(target.images).toEqual({ cross: 'x', native: 'y', emulated: 'y' });
  });

  it('reads resources and caches', () => {
    const target = parseRecipe(
      recipeWith(
        'platform: linux/arm64',
        'image: x',
        'script: make',
        'resources: { cpus: 1.5, memory: 4g }',
        'caches: [ccache, go, /root/.m2, ccache]',
      ),
    ).targets.arm64!;
    expect(target.resources).toEqual({ cpus: 1.5, memoryBytes: 4 * 1024 ** 3 });
    expect(target.caches).toEqual(['ccache', 'go', '/root/.m2']);
    expect([memoryBytes(512), memoryBytes('512m'), memoryBytes('1.5GiB')]).toEqual([
      512 * 1024 ** 2,
      512 * 1024 ** 2,
      1.5 * 1024 ** 3,
    ]);
  });

  it('reads a Dockerfile target', () => {
    const target = parseRecipe(
      recipeWith('platform: linux/arm64', 'toolchain: emulated', 'dockerfile: build/Dockerfile'),
    ).targets.arm64!;
    expect(target.dockerfile).toEqual({ file: 'build/Dockerfile', context: '.' });
    expect(target.script).toBe('');
  });

  it.each([
    ['targets: [', /^\.crossdock\.yml line 1: not valid YAML/],
    ['{}', /^\.crossdock\.yml line 1, targets: is required$/],
    ['targets: {}', /targets: must declare at least one target/],
    [
      recipeWith('platform: arm64', 'image: x', 'script: make'),
      /^\.crossdock\.yml line 3, targets\.arm64\.platform: must be an OCI platform such as linux\/arm64$/,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'toolchain: magic'),
      /line 6, targets\.arm64\.toolchain: /,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'scirpt: make'),
      /targets\.arm64: unknown field scirpt/,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x'),
      /line 3, targets\.arm64\.script: is required \(or give a dockerfile\)$/,
    ],
    [
      recipeWith(
        'platform: linux/arm64',
        'toolchain: [cross, emulated]',
        'image: { cross: x }',
        'script: make',
      ),
      /line 5, targets\.arm64\.image: names no image for toolchain emulated$/,
    ],
    [
      recipeWith(
        'platform: linux/arm64',
        'image: x',
        'script: make',
        'resources: { memory: lots }',
      ),
      /targets\.arm64\.resources\.memory: /,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'caches: [npm]'),
      /targets\.arm64\.caches\.0: /,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'caches: [/out/cache]'),
      /targets\.arm64\.caches\.0: must not contain \. or \.\. nor be under \/src or \/out$/,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', "artifacts: ['../etc/*']"),
      /line 6, targets\.arm64\.artifacts\.0: must be a glob relative to \/out without \.\. \(e\.g\. dist\/\*\.tar\.gz\)$/,
    ],
    [
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'artifacts: [/etc/passwd]'),
      /targets\.arm64\.artifacts\.0: must be a glob relative to \/out/,
    ],
    [
      recipeWith('platform: linux/arm64', 'dockerfile: Dockerfile', 'script: make'),
      /line 5, targets\.arm64\.script: a dockerfile target takes no script/,
    ],
    [
      recipeWith('platform: linux/arm64', 'dockerfile: Dockerfile', 'toolchain: cross'),
      /targets\.arm64\.toolchain: a dockerfile target builds in images of its platform/,
    ],
    [
      recipeWith('platform: linux/arm64', 'dockerfile: Dockerfile', 'secrets: [TOKEN]'),
      /targets\.arm64\.secrets: a dockerfile target takes no secrets \(build arguments/,
    ],
  ])('refuses %j naming the line and field', (text, message) => {
    expect(errorOf(text)).toMatch(message);
  });
});

describe('the published JSON Schema', () => {
  const published = JSON.parse(
    readFileSync(new URL('../docs/crossdock.schema.json', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(published);

  it('is what core/recipe.ts says (run `npm run schema` after changing the recipe)', () => {
    expect(published).toEqual(recipeJsonSchema());
  });

  it.each(readdirSync(examplesDir).filter((name) => !name.includes('.')))(
    'accepts the %s example',
    (name) => {
      const valid = validate(parse(exampleOf(name)));
      expect(validate.errors ?? []).toEqual([]);
      expect(valid).toBe(true);
    },
  );

  it('refuses what the parser refuses field by field', () => {
    const refused = [
      recipeWith('platform: arm64', 'image: x', 'script: make'),
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'toolchain: magic'),
      recipeWith('platform: linux/arm64', 'image: x', 'scirpt: make'),
      recipeWith('platform: linux/arm64', 'image: x', 'script: make', 'caches: [npm]'),
    ];
    for (const text of refused) expect(validate(parse(text)), text).toBe(false);
  });
});
