import picomatch from 'picomatch';
import { parse } from 'yaml';
import { z } from 'zod';
import { CrossdockError } from '../../core/errors';

/**
 * Who may do what from Slack, per repository. `build` starts builds; `release` starts builds of
 * tags (release builds); `approve` builds untrusted code (a fork's pull request) and approves
 * such requests held for someone else. Cancelling a build is for its requester and whoever may
 * build its repository.
 */
export type SlackAction = 'build' | 'release' | 'approve';

const SLACK_ID = /^(?:[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,}|\*)$/;

const principals = z
  .array(
    z
      .string()
      .regex(SLACK_ID, 'must be a Slack user id (U…/W…), a user group id (S…), or * for anyone'),
  )
  .default([]);

/**
 * The permissions file (YAML), e.g.
 *
 *   repositories:
 *     "acme/*":              # a picomatch glob of owner/name
 *       build: ["*"]         # Slack user ids, user group ids, or * for anyone
 *       release: [S0RELEASE]
 *       approve: [U0ALICE, S0MAINTAINERS]
 *
 * A repository gets the union of the entries whose glob matches it; one that matches none may not
 * be built from Slack at all.
 */
export const permissionsFileSchema = z
  .object({
    repositories: z.record(
      z.string().min(1),
      z.object({ build: principals, release: principals, approve: principals }).strict(),
    ),
  })
  .strict();

export type PermissionsFile = z.infer<typeof permissionsFileSchema>;

/**
 * Parses the permissions file's text; throws an Error naming the file, the field and what is
 * wrong (for the bot's configuration to report at boot).
 */
export function parsePermissions(text: string, path: string): PermissionsFile {
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid YAML: ${(error as Error).message}`);
  }
  const result = permissionsFileSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return result.data;
}

/** The members of a Slack user group (usergroups.users.list), e.g. ['U0ALICE']. */
export type GroupMembers = (groupId: string) => Promise<string[]>;

export interface SlackPermissions {
  /**
   * Resolves if `userId` may do `action` on `repo` (owner/name); otherwise throws CrossdockError
   * `no-permission` whose message says why and who may.
   */
  check(userId: string, action: SlackAction, repo: string): Promise<void>;
  /** Like check, as a boolean. */
  allows(userId: string, action: SlackAction, repo: string): Promise<boolean>;
}

const WHAT: Record<SlackAction, string> = {
  build: 'build',
  release: 'start release builds (of tags) of',
  approve: "approve builds of forks' pull requests in",
};

/**
 * The permission policy of a permissions file, with user groups' members from `members` (cached
 * for `cacheMs`, default 60 000 ms). Without a file (undefined), everyone may do everything.
 */
export function createSlackPermissions(
  file: PermissionsFile | undefined,
  members: GroupMembers,
  cacheMs = 60_000,
): SlackPermissions {
  const entries = Object.entries(file?.repositories ?? {}).map(([glob, rules]) => ({
    matches: picomatch(glob, { nocase: true }),
    rules,
  }));
  const cache = new Map<string, { at: number; members: Promise<string[]> }>();
  const groupMembers = (groupId: string) => {
    const cached = cache.get(groupId);
    if (cached && Date.now() - cached.at < cacheMs) return cached.members;
    const fetched = members(groupId);
    cache.set(groupId, { at: Date.now(), members: fetched });
    fetched.catch(() => cache.delete(groupId));
    return fetched;
  };
  const allowed = (action: SlackAction, repo: string) =>
    entries.filter((entry) => entry.matches(repo)).flatMap((entry) => entry.rules[action]);

  const allows = async (userId: string, action: SlackAction, repo: string) => {
    if (!file) return true;
    const who = allowed(action, repo);
    if (who.includes('*') || who.includes(userId)) return true;
    for (const group of who.filter((id) => id.startsWith('S'))) {
      if ((await groupMembers(group)).includes(userId)) return true;
    }
    return false;
  };

  return {
    allows,
    async check(userId, action, repo) {
      if (await allows(userId, action, repo)) return;
      const who = allowed(action, repo);
      const mention = (id: string) => (id.startsWith('S') ? `<!subteam^${id}>` : `<@${id}>`);
      throw new CrossdockError(
        'no-permission',
        who.length === 0
          ? `Nobody may ${WHAT[action]} ${repo} from Slack: the permissions file has no \`${action}\` rule for it. Ask the operators to add one.`
          : `You may not ${WHAT[action]} ${repo}. ${who.map(mention).join(', ')} may: ask one of them.`,
      );
    },
  };
}
