import { describe, expect, it } from 'vitest';
import { commentCommands, labelTargets } from './commands';

describe('build labels', () => {
  it.each<[string[], ReturnType<typeof labelTargets>]>([
    [['build:arm64'], ['arm64']],
    [
      ['bug', 'build:arm64', 'build:amd64', 'build:arm64'],
      ['arm64', 'amd64'],
    ],
    [['build:arm64', 'build:all'], 'all'],
    [['bug', 'build', 'build:'], undefined],
    [[], undefined],
  ])('%j asks for %j', (labels, expected) => {
    expect(labelTargets(labels)).toEqual(expected);
  });
});

describe('commands in a comment', () => {
  it.each<[string, ReturnType<typeof commentCommands>]>([
    ['/build arm64', [{ kind: 'build', text: 'arm64' }]],
    ['LGTM\r\n/build cancel\r\n', [{ kind: 'build', text: 'cancel' }]],
    ['/ok-to-build', [{ kind: 'ok-to-build' }]],
    ['/ok-to-build\n/build all', [{ kind: 'ok-to-build' }, { kind: 'build', text: 'all' }]],
    ['/build', [{ kind: 'build', text: '' }]],
    ['> /build arm64\nquoted, not run', []],
    ['```\n/build arm64\n```', []],
    ['please /build arm64', []],
    ['/builder arm64', []],
    ['/ok-to-build-all', []],
    ['/ok-to-build 1a2b3c4', [{ kind: 'ok-to-build', sha: '1a2b3c4' }]],
    ['/ok-to-build please', []],
  ])('%j', (body, expected) => {
    expect(commentCommands(body)).toEqual(expected);
  });
});
