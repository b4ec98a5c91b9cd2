import { describe, expect, it } from 'vitest';
import { parseBuildCommand, parseCommand, type BuildCommand, type Command } from './command';
import { CrossdockError } from './errors';

describe('parseCommand', () => {
  it.each<[string, Partial<BuildCommand>]>([
    ['arm64 pr-123', { targets: ['arm64'], ref: { kind: 'pull', number: 123 } }],
    ['arm64 #7', { targets: ['arm64'], ref: { kind: 'pull', number: 7 } }],
    ['amd64,arm64 main', { targets: ['amd64', 'arm64'], ref: { kind: 'name', name: 'main' } }],
    ['all v2.4.0', { targets: 'all', ref: { kind: 'name', name: 'v2.4.0' } }],
    ['arm64 release/2.x', { targets: ['arm64'], ref: { kind: 'name', name: 'release/2.x' } }],
    ['arm64 1a2b3c4', { targets: ['arm64'], ref: { kind: 'sha', sha: '1a2b3c4' } }],
    [
      'arm64 acme/widget#12',
      {
        targets: ['arm64'],
        ref: { kind: 'pull', number: 12 },
        repo: { owner: 'acme', name: 'widget' },
      },
    ],
    [
      '  arm64   main   in acme/widget  ',
      {
        targets: ['arm64'],
        ref: { kind: 'name', name: 'main' },
        repo: { owner: 'acme', name: 'widget' },
      },
    ],
    ['arm64 main --force', { targets: ['arm64'], force: true }],
    ['arm64,arm64 main', { targets: ['arm64'] }],
  ])('parses %j', (text, expected) => {
    expect(parseCommand(text)).toMatchObject({ kind: 'build', force: false, ...expected });
  });

  it.each([
    ['', 'Missing a target or a ref.'],
    ['arm64', 'Missing a target or a ref.'],
    ['arm64 pr-1 extra', 'Too many words'],
    ['arm64 pr-1 --fast', 'Unknown option `--fast`'],
    ['arm64 main in', '`in` must be followed by owner/repo'],
    ['arm64 main in widget', '`widget` is not a repository; write it as owner/repo.'],
    ['arm64 acme/widget#1 in acme/other', 'Name the repository once'],
    ['arm$64 main', '`arm$64` is not a target name'],
    ['arm64 ../etc', '`../etc` is not a ref'],
    ['arm64 -rf', '`-rf` is not a ref'],
    ['cancel', 'Which build? Write `/build cancel 42`'],
    ['retry 12 13', 'Too many words after `retry`'],
    ['cancel abc', '`abc` is not a build number'],
  ])('refuses %j', (text, message) => {
    let caught: unknown;
    try {
      parseCommand(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CrossdockError);
    expect((caught as CrossdockError).code).toBe('bad-command');
    expect((caught as CrossdockError).message).toContain(message);
  });
});

describe('parseCommand in a pull request comment (the context names the ref)', () => {
  const context = { defaultRef: { kind: 'pull', number: 123 } } as const;
  it.each<[string, Command]>([
    [
      'arm64',
      { kind: 'build', targets: ['arm64'], ref: context.defaultRef, repo: undefined, force: false },
    ],
    [
      'all --force',
      { kind: 'build', targets: 'all', ref: context.defaultRef, repo: undefined, force: true },
    ],
    [
      'arm64 main',
      {
        kind: 'build',
        targets: ['arm64'],
        ref: { kind: 'name', name: 'main' },
        repo: undefined,
        force: false,
      },
    ],
    ['cancel', { kind: 'cancel' }],
    ['retry', { kind: 'retry' }],
    ['retry 42', { kind: 'retry', buildId: 42 }],
    ['cancel #7', { kind: 'cancel', buildId: 7 }],
    ['help', { kind: 'help' }],
  ])('parses %j', (text, expected) => {
    expect(parseCommand(text, context)).toEqual(expected);
  });

  it('refuses what the context cannot complete', () => {
    expect(() => parseCommand('', context)).toThrow('Missing a target or a ref.');
    expect(() => parseBuildCommand('cancel 4')).toThrow('`cancel` cannot be used here.');
  });
});
