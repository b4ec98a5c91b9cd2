import { describe, expect, it } from 'vitest';
import {
  commandHelp,
  parseBuildCommand,
  parseCommand,
  type BuildCommand,
  type Command,
} from './command';
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

describe('parseCommand: the Slack grammar', () => {
  it.each<[string, Command]>([
    ['help', { kind: 'help' }],
    ['status', { kind: 'status' }],
    ['status 42', { kind: 'status', buildId: 42 }],
    ['status #42', { kind: 'status', buildId: 42 }],
    ['cancel 42', { kind: 'cancel', buildId: 42 }],
    ['retry #9', { kind: 'retry', buildId: 9 }],
    ['list', { kind: 'list', mine: false }],
    ['list mine', { kind: 'list', mine: true }],
    ['targets', { kind: 'targets' }],
    ['targets acme/widget', { kind: 'targets', repo: { owner: 'acme', name: 'widget' } }],
    ['use acme/widget', { kind: 'use', repo: { owner: 'acme', name: 'widget' } }],
    ['  workers ', { kind: 'workers' }],
    // Near-misses of command words that read as builds of real refs stay builds.
    [
      'user main',
      { kind: 'build', targets: ['user'], ref: { kind: 'name', name: 'main' }, force: false },
    ],
  ])('parses %j', (text, expected) => {
    expect(parseCommand(text)).toMatchObject(expected);
  });

  it.each([
    ['stauts', 'Unknown command `stauts`: did you mean `/build status`?'],
    ['canel 42', 'Unknown command `canel`: did you mean `/build cancel 42`?'],
    ['retyr #42', 'did you mean `/build retry #42`?'],
    ['lsit', 'did you mean `/build list`?'],
    ['wrokers', 'did you mean `/build workers`?'],
    ['cancel', 'Which build? Write `/build cancel 42`'],
    ['retry', 'Which build? Write `/build retry 42`'],
    ['status 4 5', 'Too many words after `status`'],
    ['list yours', '`list` takes only `mine`'],
    ['targets acme', '`acme` is not a repository; write it as owner/repo.'],
    ['targets a/b c/d', 'Too many words after `targets`'],
    ['use', "Write `/build use acme/widget` to make it this channel's default."],
    ['use acme/widget now', 'Too many words after `use`'],
    ['workers all', 'Too many words after `workers`'],
    ['help me', 'Too many words after `help`'],
  ])('refuses %j', (text, message) => {
    expect(() => parseCommand(text)).toThrow(message);
  });

  it('generates the help of each front end from one table', () => {
    const slack = commandHelp('slack');
    for (const syntax of [
      '/build <targets> <ref> [in owner/repo] [--force]',
      '/build status [id]',
      '/build cancel <id>',
      '/build retry <id>',
      '/build list [mine]',
      '/build targets [owner/repo]',
      '/build use owner/repo',
      '/build workers',
      '/build help',
    ])
      expect(slack).toContain(`\`${syntax}\``);
    expect(commandHelp('github')).toContain('`/build cancel [id]`');
    expect(commandHelp('github')).not.toContain('/build workers');
  });
});
