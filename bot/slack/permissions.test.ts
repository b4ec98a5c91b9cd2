import { describe, expect, it } from 'vitest';
import { createSlackPermissions, parsePermissions } from './permissions';

const FILE = `
repositories:
  "acme/*":
    build: [S0DEVS]
    approve: [U0MAINT]
  acme/widget:
    release: [U0RM]
    build: [U0CONTRACTOR]
  "open/*":
    build: ["*"]
`;

describe('Slack permissions', () => {
  const asked: string[] = [];
  const groups: Record<string, string[]> = { S0DEVS: ['U0ALICE', 'U0MAINT', 'U0RM'] };
  const permissions = createSlackPermissions(
    parsePermissions(FILE, 'permissions.yml'),
    async (id) => {
      asked.push(id);
      if (!groups[id]) throw new Error('no_such_subteam');
      return groups[id];
    },
  );

  it.each([
    ['U0ALICE', 'build', 'acme/widget', true],
    ['U0CONTRACTOR', 'build', 'acme/widget', true], // the union of matching entries
    ['U0CONTRACTOR', 'build', 'acme/gadget', false],
    ['U0ALICE', 'release', 'acme/widget', false],
    ['U0RM', 'release', 'acme/widget', true],
    ['U0RM', 'release', 'acme/gadget', false],
    ['U0MAINT', 'approve', 'acme/widget', true],
    ['U0ALICE', 'approve', 'acme/widget', false],
    ['U0EVE', 'build', 'open/anything', true],
    ['U0ALICE', 'build', 'elsewhere/repo', false],
    ['U0ALICE', 'build', 'ACME/Widget', true], // GitHub names are case-insensitive
  ] as const)('%s %s %s → %s', async (user, action, repo, expected) => {
    expect(await permissions.allows(user, action, repo)).toBe(expected);
  });

  it('says why, and who may', async () => {
    await expect(permissions.check('U0ALICE', 'release', 'acme/widget')).rejects.toThrow(
      'You may not start release builds (of tags) of acme/widget. <@U0RM> may: ask one of them.',
    );
    await expect(permissions.check('U0EVE', 'build', 'acme/gadget')).rejects.toThrow(
      'You may not build acme/gadget. <!subteam^S0DEVS> may: ask one of them.',
    );
    await expect(permissions.check('U0ALICE', 'build', 'elsewhere/repo')).rejects.toThrow(
      'Nobody may build elsewhere/repo from Slack: the permissions file has no `build` rule for it.',
    );
  });

  it('asks Slack for a group once per minute', async () => {
    const before = asked.length;
    await permissions.allows('U0X', 'build', 'acme/a');
    await permissions.allows('U0Y', 'build', 'acme/b');
    expect(asked.length - before).toBeLessThanOrEqual(1);
  });

  it('lets everyone do everything without a file', async () => {
    const open = createSlackPermissions(undefined, async () => []);
    expect(await open.allows('U0EVE', 'release', 'any/repo')).toBe(true);
  });

  it.each([
    ['repositories: [', 'not valid YAML'],
    ['repos: {}', 'repositories: Invalid input: expected record'],
    [
      'repositories:\n  a/b:\n    build: [alice]',
      'repositories.a/b.build.0: must be a Slack user id',
    ],
    ['repositories:\n  a/b:\n    deploy: ["*"]', 'repositories.a/b: Unrecognized key: "deploy"'],
  ])('refuses a bad file: %j', (text, message) => {
    expect(() => parsePermissions(text, 'permissions.yml')).toThrow(message);
  });
});
