import { spawn } from 'node:child_process';

// git inherits this process's environment (PATH, HOME) and must never prompt for credentials.
// eslint-disable-next-line no-restricted-properties
const GIT_ENV = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' };

/**
 * Runs `git args…` in `cwd` and resolves with its stdout; rejects with an Error carrying git's
 * stderr when it exits non-zero. Never prompts for credentials.
 */
export function git(args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new Error(`git ${args[0]} exited with ${code}: ${stderr.trim()}`)),
    );
  });
}

/** Starts `git args…` in `cwd` and returns its stdout as a stream (e.g. `git archive`). */
export function gitStream(args: string[], cwd: string): NodeJS.ReadableStream {
  return spawn('git', args, { cwd, env: GIT_ENV, stdio: ['ignore', 'pipe', 'inherit'] }).stdout;
}
