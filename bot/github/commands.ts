/**
 * What Crossdock reads from pull requests: `build:<target>` labels and the commands in comments.
 * Pure functions, so that the grammar is tested apart from webhooks.
 */

/** Labels that ask for builds: `build:arm64`, `build:all`. */
export const BUILD_LABEL_PREFIX = 'build:';

/**
 * The targets the `build:` labels among `labels` ask for: `all` if any is `build:all`, the named
 * targets in label order otherwise, undefined when no label asks for a build.
 */
export function labelTargets(labels: string[]): string[] | 'all' | undefined {
  const targets = labels
    .filter((label) => label.startsWith(BUILD_LABEL_PREFIX))
    .map((label) => label.slice(BUILD_LABEL_PREFIX.length).trim())
    .filter(Boolean);
  if (targets.length === 0) return undefined;
  return targets.includes('all') ? 'all' : [...new Set(targets)];
}

/** The command text for `targets`, as the `/build` grammar writes it (core/command.ts). */
export function targetsText(targets: string[] | 'all'): string {
  return targets === 'all' ? 'all' : targets.join(',');
}

/**
 * One command in a comment: `/build …` (the text after `/build`), or `/ok-to-build [sha]` (the
 * commit approved, 7–40 hex digits, when named).
 */
export type CommentCommand =
  { kind: 'build'; text: string } | { kind: 'ok-to-build'; sha?: string };

/**
 * The commands of a comment, one per line that starts with `/build` or `/ok-to-build` (as Prow
 * reads `/test`): lines in fenced code blocks and quoted lines (`>`) are not commands, so quoting
 * someone's `/build` does not run it again.
 */
export function commentCommands(body: string): CommentCommand[] {
  const commands: CommentCommand[] = [];
  let fenced = false;
  for (const raw of body.split(/\r?\n/)) {
    const line = raw.trim();
    if (/^(```|~~~)/.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced || line.startsWith('>')) continue;
    const approval = /^\/ok-to-build(?:\s+([0-9a-f]{7,40}))?$/.exec(line);
    if (approval) {
      commands.push(
        approval[1] ? { kind: 'ok-to-build', sha: approval[1] } : { kind: 'ok-to-build' },
      );
      continue;
    }
    const match = /^\/build(?:\s+(.*))?$/.exec(line);
    if (match) commands.push({ kind: 'build', text: (match[1] ?? '').trim() });
  }
  return commands;
}
