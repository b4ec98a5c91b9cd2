import { CrossdockError } from './errors';

/**
 * The `/build` command grammar, shared by Slack, pull-request comments and the CLI.
 *
 *   <target>[,<target>…] <ref> [in <owner>/<repo>] [--force]
 *   cancel [<build id>]
 *   retry [<build id>]
 *   help
 *
 * where ref is `pr-N`, `#N`, `<owner>/<repo>#N`, a branch, a tag, or a commit sha (7–40 hex digits).
 * `all` as the target list means every target of the recipe. Where the context names a ref (a
 * pull request's comment: its head), the ref may be left out; so may the build id of `cancel` and
 * `retry` (the pull request's latest build).
 */
export type RefSpec =
  { kind: 'pull'; number: number } | { kind: 'name'; name: string } | { kind: 'sha'; sha: string };

/** A repository as `owner/name`, as on GitHub. */
export interface RepoName {
  owner: string;
  name: string;
}

export interface BuildCommand {
  kind: 'build';
  targets: string[] | 'all';
  ref: RefSpec;
  repo?: RepoName;
  force: boolean;
}

/** `cancel` or `retry` of a build: the given id, or the context's latest build when omitted. */
export type BuildActionCommand =
  { kind: 'cancel'; buildId?: number } | { kind: 'retry'; buildId?: number };

export type Command = BuildCommand | BuildActionCommand | { kind: 'help' };

/** What the place a command was typed in supplies when the command leaves it out. */
export interface CommandContext {
  /** The ref built when the command names none, e.g. the pull request a comment is on. */
  defaultRef?: RefSpec;
}

export const USAGE =
  'Usage: `/build <target>[,<target>…] <ref> [in owner/repo]`, for example ' +
  '`/build arm64 pr-123`, `/build amd64,arm64 main`, `/build all v2.4.0 in acme/widget`. ' +
  'A ref is `pr-123`, `#123`, `owner/repo#123`, a branch, a tag or a commit sha.';

const TARGET = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
const OWNER_REPO = /^([a-z0-9](?:[a-z0-9-]{0,38}))\/([a-z0-9._-]{1,100})$/i;
const SHA = /^[0-9a-f]{7,40}$/;
// git check-ref-format, simplified: no spaces, control characters, `..`, `~^:?*[\`, leading `-`.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
const REF_NAME = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\x00-\x1f\x7f]{1,250}(?<![./])$/;

/** Parses `owner/repo`; throws `bad-command` naming the accepted form. */
export function parseRepoName(text: string): RepoName {
  const match = OWNER_REPO.exec(text);
  if (!match) {
    throw new CrossdockError(
      'bad-command',
      `\`${text}\` is not a repository; write it as owner/repo.`,
    );
  }
  return { owner: match[1]!, name: match[2]! };
}

function parseRef(text: string): { ref: RefSpec; repo?: RepoName } {
  let match = /^(?:pr-|#)(\d{1,9})$/i.exec(text);
  if (match) return { ref: { kind: 'pull', number: Number(match[1]) } };
  match = /^([^#\s]+)#(\d{1,9})$/.exec(text);
  if (match)
    return { ref: { kind: 'pull', number: Number(match[2]) }, repo: parseRepoName(match[1]!) };
  if (SHA.test(text)) return { ref: { kind: 'sha', sha: text } };
  if (REF_NAME.test(text)) return { ref: { kind: 'name', name: text } };
  throw new CrossdockError(
    'bad-command',
    `\`${text}\` is not a ref. Use \`pr-123\`, \`#123\`, a branch, a tag or a commit sha.`,
  );
}

/**
 * Parses the text after `/build`. Returns the command, or throws CrossdockError `bad-command`
 * whose message says what to type instead.
 */
export function parseCommand(text: string, context: CommandContext = {}): Command {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [verb, ...args] = words;
  if (verb === 'help' && args.length === 0) return { kind: 'help' };
  if (verb === 'cancel' || verb === 'retry') return parseBuildAction(verb, args, context);
  return parseBuild(words, context);
}

/** parseCommand for front ends that only start builds: other commands are `bad-command`. */
export function parseBuildCommand(text: string, context: CommandContext = {}): BuildCommand {
  const command = parseCommand(text, context);
  if (command.kind !== 'build') {
    throw new CrossdockError('bad-command', `\`${command.kind}\` cannot be used here. ${USAGE}`);
  }
  return command;
}

function parseBuildAction(
  verb: 'cancel' | 'retry',
  args: string[],
  context: CommandContext,
): BuildActionCommand {
  const example = `\`/build ${verb} 42\` (the build's number)`;
  if (args.length > 1)
    throw new CrossdockError('bad-command', `Too many words after \`${verb}\`; write ${example}.`);
  if (args.length === 0) {
    if (context.defaultRef) return { kind: verb } as BuildActionCommand;
    throw new CrossdockError('bad-command', `Which build? Write ${example}.`);
  }
  const match = /^#?(\d{1,15})$/.exec(args[0]!);
  if (!match)
    throw new CrossdockError(
      'bad-command',
      `\`${args[0]}\` is not a build number; write ${example}.`,
    );
  return { kind: verb, buildId: Number(match[1]) } as BuildActionCommand;
}

function parseBuild(words: string[], context: CommandContext): BuildCommand {
  const force = words.includes('--force');
  const rest = words.filter((word) => word !== '--force');
  const unknownFlag = rest.find((word) => word.startsWith('--'));
  if (unknownFlag) {
    throw new CrossdockError('bad-command', `Unknown option \`${unknownFlag}\`. ${USAGE}`);
  }
  let repo: RepoName | undefined;
  const inAt = rest.indexOf('in');
  if (inAt !== -1) {
    if (inAt !== rest.length - 2) {
      throw new CrossdockError(
        'bad-command',
        `\`in\` must be followed by owner/repo, last. ${USAGE}`,
      );
    }
    repo = parseRepoName(rest[inAt + 1]!);
    rest.splice(inAt, 2);
  }
  if (rest.length === 1 && context.defaultRef) rest.push('');
  if (rest.length !== 2) {
    const what =
      rest.length < 2 ? 'Missing a target or a ref.' : `Too many words: \`${rest.join(' ')}\`.`;
    throw new CrossdockError('bad-command', `${what} ${USAGE}`);
  }
  const [targetList, refText] = rest as [string, string];
  const targets = targetList.split(',').filter(Boolean);
  for (const target of targets) {
    if (!TARGET.test(target)) {
      throw new CrossdockError('bad-command', `\`${target}\` is not a target name. ${USAGE}`);
    }
  }
  if (targets.length === 0) throw new CrossdockError('bad-command', `Missing a target. ${USAGE}`);
  const parsed = refText === '' ? { ref: context.defaultRef! } : parseRef(refText);
  if (parsed.repo && repo) {
    throw new CrossdockError(
      'bad-command',
      'Name the repository once: either `owner/repo#N` or `in owner/repo`.',
    );
  }
  return {
    kind: 'build',
    targets: targets.length === 1 && targets[0] === 'all' ? 'all' : [...new Set(targets)],
    ref: parsed.ref,
    repo: parsed.repo ?? repo,
    force,
  };
}

/** `pr-123`, `main`, `1a2b3c4`: how a ref is written back to people. */
export function formatRef(ref: RefSpec): string {
  if (ref.kind === 'pull') return `pr-${ref.number}`;
  return ref.kind === 'sha' ? ref.sha : ref.name;
}
