import { z } from 'zod';
import { readEnvFile } from '../../core/config';

const schema = z.object({
  DATABASE_URL: z
    .string()
    .url({ message: 'is not set: run `bash deploy/setup.sh`, or export DATABASE_URL' }),
  GITHUB_API_URL: z.string().url().optional(),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_CLONE_BASE_URL: z.string().url().default('https://github.com'),
  GIT_CACHE_DIR: z.string().default('/var/tmp/crossdock-cli/git'),
  PORTAL_URL: z.string().url().default('http://127.0.0.1:8080'),
  USER: z.string().default('unknown'),
});

export interface CliConfig {
  databaseUrl: string;
  github?: { apiUrl: string; token?: string; cloneBaseUrl: string };
  gitCacheDir: string;
  portalUrl: string;
  user: string;
}

/**
 * The CLI's configuration: the environment, over the local stack's env file
 * ($CROSSDOCK_STATE_DIR/crossdock.env, written by deploy/setup.sh).
 */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const file = `${env.CROSSDOCK_STATE_DIR ?? '/var/lib/crossdock'}/crossdock.env`;
  const parsed = schema.safeParse({ ...readEnvFile(file), ...env });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`);
    throw new Error(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const c = parsed.data;
  return {
    databaseUrl: c.DATABASE_URL,
    github: c.GITHUB_API_URL
      ? { apiUrl: c.GITHUB_API_URL, token: c.GITHUB_TOKEN, cloneBaseUrl: c.GITHUB_CLONE_BASE_URL }
      : undefined,
    gitCacheDir: c.GIT_CACHE_DIR,
    portalUrl: c.PORTAL_URL.replace(/\/$/, ''),
    user: c.USER,
  };
}
