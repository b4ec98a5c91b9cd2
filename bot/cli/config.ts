import { z } from 'zod';
import { localStackEnv, parseEnv, portalUrlEnv } from '../../core/config';
import { githubEnv, githubOptions, type GitHubOptions } from '../config';

const schema = z.object({
  DATABASE_URL: z
    .string()
    .url({ message: 'is not set: run `bash deploy/setup.sh`, or export DATABASE_URL' }),
  ...githubEnv,
  GIT_CACHE_DIR: z.string().default('/var/tmp/crossdock-cli/git'),
  ...portalUrlEnv,
  USER: z.string().default('unknown'),
});

export interface CliConfig {
  databaseUrl: string;
  github?: GitHubOptions;
  gitCacheDir: string;
  portalUrl: string;
  user: string;
}

/**
 * The CLI's configuration: the environment, over the local stack's env file
 * ($CROSSDOCK_STATE_DIR/crossdock.env, written by deploy/setup.sh).
 */
export function loadCliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const c = parseEnv(schema, localStackEnv(env), 'cli');
  return {
    databaseUrl: c.DATABASE_URL,
    github: githubOptions(c),
    gitCacheDir: c.GIT_CACHE_DIR,
    portalUrl: c.PORTAL_URL,
    user: c.USER,
  };
}
