import { CrossdockError } from './errors';
import { closestMatch } from './suggest';

/**
 * The `/build` command grammar, shared by Slack, pull-request comments and the CLI (each front end
 * serves the commands of COMMANDS that name it):
 *
 *   <target>[,<target>…] <ref> [in <owner>/<repo>] [--force]
 *   status [<build id>]          cancel <build id>          retry <build id>
 *   list [mine]                  targets [<owner>/<repo>]   use <owner>/<repo>
 *   workers                      help
 *
 * where ref is `pr-N`, `#N`, `<owner>/<repo>#N`, a branch, a tag, or a commit sha (7–40 hex digits).
 * `all` as the target list means every target of the recipe. Where the context names a ref (a
 * pull request's comment: its head), the ref may be left out; so may the build id of `cancel` and
 * `retry` (the pull request's latest build). A mistyped command word gets a suggestion.
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

/**
 * A command about one build: the given id, or when omitted the context's latest build (`cancel`
 * and `retry` in a pull request; `status` anywhere: the latest build of the channel or requester).
 */
export type BuildActionCommand =
  | { kind: 'cancel'; buildId?: number }
  | { kind: 'retry'; buildId?: number }
  | { kind: 'status'; buildId?: number };

export type Command =
  | BuildCommand
  | BuildActionCommand
  /** Recent builds: of the channel's repository, or with `mine` the requester's. */
  | { kind: 'list'; mine: boolean }
  /** The targets of a repository's recipe at its default branch (the channel's repository if none). */
  | { kind: 'targets'; repo?: RepoName }
  /** Sets the channel's default repository. */
  | { kind: 'use'; repo: RepoName }
  /** The worker fleet and the queue per platform. */
  | { kind: 'workers' }
  | { kind: 'help' };

export type CommandKind = Command['kind'];

/** Where a command can be typed. */
export type FrontEnd = 'slack' | 'github';

/** One line of the generated help: the syntax, what it does, and where it works. */
export interface CommandHelp {
  kind: CommandKind;
  syntax: string;
  summary: string;
  frontEnds: readonly FrontEnd[];
}

/** Every command, in the order help lists them (Prow-style generated help comes from this table). */
export const COMMANDS: readonly CommandHelp[] = [
  {
    kind: 'build',
    syntax: '/build <targets> <ref> [in owner/repo] [--force]',
    summary:
      'build targets (comma-separated, or `all`) of a ref: `pr-123`, `#123`, a branch, a tag or a sha',
    frontEnds: ['slack'],
  },
  {
    kind: 'build',
    syntax: '/build <targets> [--force]',
    summary: "build targets (comma-separated, or `all`) of this pull request's head",
    frontEnds: ['github'],
  },
  {
    kind: 'status',
    syntax: '/build status [id]',
    summary: 'the state of a build (your latest if no id)',
    frontEnds: ['slack'],
  },
  {
    kind: 'cancel',
    syntax: '/build cancel <id>',
    summary: 'cancel the queued and running jobs of a build',
    frontEnds: ['slack'],
  },
  {
    kind: 'cancel',
    syntax: '/build cancel [id]',
    summary: "cancel this pull request's running builds (or build id)",
    frontEnds: ['github'],
  },
  {
    kind: 'retry',
    syntax: '/build retry <id>',
    summary: 'build again the targets of a build that failed or were canceled',
    frontEnds: ['slack'],
  },
  {
    kind: 'retry',
    syntax: '/build retry [id]',
    summary: "build again the failed targets of this pull request's latest build (or build id)",
    frontEnds: ['github'],
  },
  {
    kind: 'list',
    syntax: '/build list [mine]',
    summary: "recent builds of this channel's repository, or yours",
    frontEnds: ['slack'],
  },
  {
    kind: 'targets',
    syntax: '/build targets [owner/repo]',
    summary: "a repository's targets and their platforms",
    frontEnds: ['slack'],
  },
  {
    kind: 'use',
    syntax: '/build use owner/repo',
    summary: "set this channel's default repository",
    frontEnds: ['slack'],
  },
  {
    kind: 'workers',
    syntax: '/build workers',
    summary: 'the workers, what they serve, and the queue per platform',
    frontEnds: ['slack'],
  },
  { kind: 'help', syntax: '/build help', summary: 'this help', frontEnds: ['slack', 'github'] },
];

/** The help of `frontEnd`'s commands as Markdown/mrkdwn lines: `` `syntax` — summary ``. */
export function commandHelp(frontEnd: FrontEnd): string {
  return COMMANDS.filter((command) => command.frontEnds.includes(frontEnd))
    .map((command) => `\`${command.syntax}\` — ${command.summary}`)
    .join('\n');
}

/** What the place a command was typed in supplies when the command leaves it out. */
export interface CommandContext {
  /** The ref built when the command names none, e.g. the pull request a comment is on. */
  defaultRef?: RefSpec;
}

export const USAGE =
  'Usage: `/build <target>[,<target>…] <ref> [in owner/repo]`, for example ' +
  '`/build arm64 pr-123`, `/build amd64,arm64 main`, `/build all v2.4.0 in acme/widget`. ' +
  'A ref is `pr-123`, `#123`, `owner/repo#123`, a branch, a tag or a commit sha. ' +
  '`/build help` lists every command.';

const VERBS = ['status', 'cancel', 'retry', 'list', 'targets', 'use', 'workers', 'help'] as const;
type Verb = (typeof VERBS)[number];

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
 * whose message says what to type instead (with a suggestion for a mistyped command word, e.g.
 * `stauts` → `status`).
 */
export function parseCommand(text: string, context: CommandContext = {}): Command {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [first, ...args] = words;
  if (first === undefined) {
    throw new CrossdockError('bad-command', `Missing a target or a ref. ${USAGE}`);
  }
  if ((VERBS as readonly string[]).includes(first)) return parseVerb(first as Verb, args, context);
  let build: BuildCommand | undefined;
  let buildError: unknown;
  try {
    build = parseBuild(words, context);
  } catch (error) {
    buildError = error;
  }
  // `canel 42`, `stauts`: a near-miss of a command word, unless it reads as a build of a real ref.
  const verb =
    !build || args.every((arg) => /^#?\d+$/.test(arg)) ? closestMatch(first, VERBS, 1) : undefined;
  if (verb) {
    const suggestion = ['/build', verb, ...args].join(' ');
    throw new CrossdockError(
      'bad-command',
      `Unknown command \`${first}\`: did you mean \`${suggestion}\`? \`/build help\` lists every command.`,
    );
  }
  if (buildError) throw buildError;
  return build!;
}

/** parseCommand for front ends that only start builds: other commands are `bad-command`. */
export function parseBuildCommand(text: string, context: CommandContext = {}): BuildCommand {
  const command = parseCommand(text, context);
  if (command.kind !== 'build') {
    throw new CrossdockError('bad-command', `\`${command.kind}\` cannot be used here. ${USAGE}`);
  }
  return command;
}

function parseVerb(verb: Verb, args: string[], context: CommandContext): Command {
  const tooMany = (example: string) =>
    new CrossdockError('bad-command', `Too many words after \`${verb}\`; write ${example}.`);
  switch (verb) {
    case 'status':
    case 'cancel':
    case 'retry':
      return parseBuildAction(verb, args, context);
    case 'list':
      if (args.length === 0) return { kind: 'list', mine: false };
      if (args.length === 1 && args[0] === 'mine') return { kind: 'list', mine: true };
      throw new CrossdockError(
        'bad-command',
        `\`list\` takes only \`mine\`: write \`/build list\` or \`/build list mine\`.`,
      );
    case 'targets':
      if (args.length > 1) throw tooMany('`/build targets acme/widget`');
      return args.length === 0
        ? { kind: 'targets' }
        : { kind: 'targets', repo: parseRepoName(args[0]!) };
    case 'use':
      if (args.length === 0)
        throw new CrossdockError(
          'bad-command',
          "Which repository? Write `/build use acme/widget` to make it this channel's default.",
        );
      if (args.length > 1) throw tooMany('`/build use acme/widget`');
      return { kind: 'use', repo: parseRepoName(args[0]!) };
    case 'workers':
    case 'help':
      if (args.length > 0) throw tooMany(`\`/build ${verb}\``);
      return { kind: verb };
  }
}

function parseBuildAction(
  verb: BuildActionCommand['kind'],
  args: string[],
  context: CommandContext,
): BuildActionCommand {
  const example = `\`/build ${verb} 42\` (the build's number)`;
  if (args.length > 1)
    throw new CrossdockError('bad-command', `Too many words after \`${verb}\`; write ${example}.`);
  if (args.length === 0) {
    if (context.defaultRef || verb === 'status') return { kind: verb };
    throw new CrossdockError('bad-command', `Which build? Write ${example}.`);
  }
  const match = /^#?(\d{1,15})$/.exec(args[0]!);
  if (!match)
    throw new CrossdockError(
      'bad-command',
      `\`${args[0]}\` is not a build number; write ${example}.`,
    );
  return { kind: verb, buildId: Number(match[1]) };
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
