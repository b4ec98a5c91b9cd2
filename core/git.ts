import { spawn, type ChildProcess } from 'node:child_process';

// git inherits this process's environment (PATH, HOME) and must never prompt for credentials.
// eslint-disable-next-line no-restricted-properties
const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' };

/**
 * Git configuration given through the environment (GIT_CONFIG_COUNT, git-config(1) "ENVIRONMENT"),
 * so that it is neither on the command line (visible in `ps`) nor in any file: for credentials
 * such as `http.extraHeader`.
 */
export function gitConfigEnv(config: Record<string, string>): Record<string, string> {
  const entries = Object.entries(config);
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(entries.length) };
  entries.forEach(([key, value], index) => {
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return env;
}

/**
 * Runs `git args…` in `cwd` and resolves with its stdout; rejects with an Error carrying git's
 * stderr when it exits non-zero. Never prompts for credentials. `env` adds variables (e.g.
 * gitConfigEnv's).
 */
export function git(args: string[], cwd?: string, env?: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: env ? { ...GIT_ENV, ...env } : GIT_ENV,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    exited(child, `git ${args[0]}`).then(() => resolve(stdout), reject);
  });
}

/**
 * Runs `git args… | command commandArgs…` in `cwd` (e.g. `git archive` into `tar -x`). Resolves
 * when both exited 0; otherwise rejects with an Error carrying the stderr of the one that failed
 * (the reader's first: a reader that fails makes git fail too).
 */
export async function gitPipe(
  args: string[],
  cwd: string,
  command: string,
  commandArgs: string[],
): Promise<void> {
  const writer = spawn('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  const reader = spawn(command, commandArgs, { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
  writer.stdout.pipe(reader.stdin);
  reader.stdin.on('error', () => {}); // EPIPE when the reader quits early: reported by its exit.
  const [read, written] = await Promise.allSettled([
    exited(reader, command),
    exited(writer, `git ${args[0]}`),
  ]);
  if (read.status === 'rejected') throw read.reason;
  if (written.status === 'rejected') throw written.reason;
}

/** Resolves when `child` exits 0; rejects with its stderr otherwise, or if it cannot start. */
function exited(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${name} exited with ${code}: ${stderr.trim()}`)),
    );
  });
}
