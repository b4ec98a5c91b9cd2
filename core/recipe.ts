import { createHash } from 'node:crypto';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { CrossdockError } from './errors';

/**
 * The `.crossdock.yml` recipe at the root of a built repository: a map of named targets, each a
 * script run in a builder image for one OCI platform. docs/recipe.md is the reference.
 */
export const RECIPE_FILE = '.crossdock.yml';

/** OCI platform, `os/arch[/variant]` (OCI image index spec, "platform"). */
const platform = z
  .string()
  .regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'must be an OCI platform such as linux/arm64');

export const TOOLCHAIN_MODES = ['cross', 'emulated', 'native'] as const;
export type ToolchainMode = (typeof TOOLCHAIN_MODES)[number];

/** The platform cross toolchains run on: every cross target runs on an amd64 worker. */
export const CROSS_HOST_PLATFORM = 'linux/amd64';

const target = z
  .object({
    platform,
    toolchain: z.enum(TOOLCHAIN_MODES).default('native'),
    image: z.string().min(1, 'must name a builder image'),
    script: z.string().min(1, 'must be a shell script'),
    artifacts: z.array(z.string().min(1)).default([]),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    network: z.boolean().default(false),
    /** Minutes before the job is stopped and ends `timed_out`; fractions allowed (0.5 = 30 s). */
    timeout_minutes: z
      .number()
      .positive()
      .max(24 * 60)
      .default(60),
    /** Labels a worker must carry to run the target (WORKER_LABELS), e.g. [kvm]. */
    labels: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'is not a valid label'))
      .default([]),
    /** Names of secrets configured on workers, given to the script as environment variables. */
    secrets: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not a valid variable name'))
      .default([]),
  })
  .strict();

const recipeSchema = z
  .object({
    /**
     * A build of a newer commit of the same pull request or branch cancels the unfinished jobs
     * of the same targets in older builds.
     */
    cancel_superseded: z.boolean().default(true),
    targets: z.record(
      z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/i, 'is not a valid target name'),
      target,
    ),
  })
  .strict()
  .refine((recipe) => Object.keys(recipe.targets).length > 0, {
    message: 'must declare at least one target',
    path: ['targets'],
  });

export type Target = z.infer<typeof target>;
export interface Recipe {
  targets: Record<string, Target>;
  cancelSuperseded: boolean;
  /** sha256 (hex) of the recipe file's bytes. */
  digest: string;
}

/** The platform a target's container runs on: the build host's for cross toolchains. */
export function runPlatform(target: Target): string {
  return target.toolchain === 'cross' ? CROSS_HOST_PLATFORM : target.platform;
}

/**
 * Parses and validates a recipe (YAML 1.2). Throws CrossdockError `recipe-invalid` whose message
 * names the file, the line and the field, e.g.
 * ".crossdock.yml line 4, targets.arm64.platform: must be an OCI platform such as linux/arm64".
 */
export function parseRecipe(text: string, file = RECIPE_FILE): Recipe {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  const firstError = document.errors[0];
  if (firstError) {
    const line = lineOf(firstError.pos[0]);
    throw new CrossdockError(
      'recipe-invalid',
      `${file}${line ? ` line ${line}` : ''}: not valid YAML (${firstError.message.split('\n')[0]})`,
    );
  }
  const result = recipeSchema.safeParse(document.toJS());
  if (!result.success) {
    // A misspelt field shows as both "unknown field" and "missing": the first says more.
    const issues = [...result.error.issues].sort(
      (a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'),
    );
    const issue = issues[0]!;
    // Point at the deepest node of the path that exists in the document.
    let line: number | undefined;
    for (let depth = issue.path.length; depth >= 0 && line === undefined; depth--) {
      const node = document.getIn(issue.path.slice(0, depth) as (string | number)[], true);
      if (isNode(node)) line = lineOf(node.range?.[0]);
    }
    const field = issue.path.length ? issue.path.join('.') : '(top level)';
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown field ${issue.keys.join(', ')}`;
    if (issue.code === 'invalid_type' && issue.input === undefined) message = 'is required';
    throw new CrossdockError(
      'recipe-invalid',
      `${file}${line ? ` line ${line}` : ''}, ${field}: ${message}`,
    );
  }
  const digest = createHash('sha256').update(text).digest('hex');
  return {
    targets: result.data.targets,
    cancelSuperseded: result.data.cancel_superseded,
    digest,
  };
}
