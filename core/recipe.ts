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

export const TOOLCHAIN_MODES = ['native', 'cross', 'emulated'] as const;
/**
 * How a target's container runs: `native` in an image of the target platform on a worker of that
 * platform; `cross` in an amd64 image with a cross toolchain on an amd64 worker; `emulated` in an
 * image of the target platform under QEMU user emulation. TOOLCHAIN_MODES is also the routing
 * policy's order of preference (docs/recipe.md, "Routing").
 */
export type ToolchainMode = (typeof TOOLCHAIN_MODES)[number];

/** The platform cross toolchains run on: every cross target runs on an amd64 worker. */
export const CROSS_HOST_PLATFORM = 'linux/amd64';

/** Caches a recipe names by kind, each a volume mounted at its path with variables pointing there. */
export const CACHE_KINDS = {
  ccache: { path: '/cache/ccache', env: { CCACHE_DIR: '/cache/ccache' } },
  go: { path: '/cache/go', env: { GOCACHE: '/cache/go/build', GOMODCACHE: '/cache/go/mod' } },
  cargo: { path: '/cache/cargo', env: { CARGO_HOME: '/cache/cargo' } },
} as const;
export type CacheKind = keyof typeof CACHE_KINDS;

const toolchainMode = z.enum(TOOLCHAIN_MODES);
const imageName = z.string().min(1, 'must name a builder image');
const variableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not a valid variable name');

/** A memory size in Docker's notation, `512m`, `4g`, `4GiB` (memoryBytes reads it). */
export const memorySize = z
  .string()
  .regex(/^\d+(\.\d+)?\s*[kmg](i?b)?$/i, 'must be a size such as 512m, 4g or 4GiB');

/** A memory size in bytes: a number of MiB, or a memorySize. */
const memory = z.union([z.number().int().min(6, 'must be at least 6 (MiB)'), memorySize]);

const target = z
  .object({
    platform: platform.describe('OCI platform of the output, e.g. linux/arm64'),
    toolchain: z
      .union([toolchainMode, z.array(toolchainMode).min(1, 'must allow at least one mode')])
      .default('native')
      .describe(
        'How the target may be built: one mode, or the modes allowed; the routing policy prefers native, then cross, then emulated',
      ),
    image: z
      .union([imageName, z.partialRecord(toolchainMode, imageName)])
      .optional()
      .describe('The builder image, or one per toolchain mode (e.g. {cross: …, emulated: …})'),
    script: z
      .string()
      .min(1, 'must be a shell script')
      .optional()
      .describe('Run by bash -eo pipefail in /src; results go to /out'),
    dockerfile: z
      .union([
        z.string().min(1),
        z
          .object({
            file: z.string().min(1).default('Dockerfile'),
            context: z.string().min(1).default('.'),
            target: z.string().min(1).optional(),
          })
          .strict(),
      ])
      .optional()
      .describe(
        "Instead of image and script: build this Dockerfile for the platform and collect the final stage's /out",
      ),
    artifacts: z
      .array(
        z
          .string()
          .min(1)
          .refine((glob) => !glob.startsWith('/') && !/(^|\/)\.\.(\/|$)/.test(glob), {
            message: 'must be a glob relative to /out without .. (e.g. dist/*.tar.gz)',
          }),
      )
      .default([])
      .describe('Globs under /out to collect (picomatch), e.g. dist/*.tar.gz'),
    env: z.record(variableName, z.string()).default({}),
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
    secrets: z.array(variableName).default([]),
    resources: z
      .object({
        cpus: z.number().min(0.01).max(1024).optional().describe('CPUs, fractions allowed'),
        memory: memory.optional().describe('Memory limit (no swap beyond it)'),
      })
      .strict()
      .default({}),
    caches: z
      .array(
        z.union([
          z.enum(Object.keys(CACHE_KINDS) as [CacheKind, ...CacheKind[]]),
          z
            .string()
            .regex(/^\/[A-Za-z0-9._/-]+$/, 'must be ccache, go, cargo or an absolute path')
            .refine((path) => !/(^|\/)\.\.?(\/|$)/.test(path) && !/^\/(src|out)(\/|$)/.test(path), {
              message: 'must not contain . or .. nor be under /src or /out',
            }),
        ]),
      )
      .default([])
      .describe('Directories kept between builds of this repository and target'),
  })
  .strict()
  .superRefine((target, context) => {
    const toolchains = [target.toolchain].flat();
    const issue = (path: (string | number)[], message: string) =>
      context.addIssue({ code: 'custom', path, message });
    if (target.dockerfile !== undefined) {
      const why = {
        image: '',
        script: '',
        secrets: ' (build arguments would keep them in the image history)',
        caches: ' (the classic builder has no cache mounts)',
      };
      for (const field of Object.keys(why) as (keyof typeof why)[])
        if (target[field] !== undefined && [target[field]].flat().length > 0)
          issue(
            [field],
            `a dockerfile target takes no ${field}${why[field]}; drop it or drop dockerfile`,
          );
      if (toolchains.includes('cross'))
        issue(
          ['toolchain'],
          'a dockerfile target builds in images of its platform: use native or emulated',
        );
      return;
    }
    if (target.script === undefined) issue(['script'], 'is required (or give a dockerfile)');
    if (target.image === undefined) issue(['image'], 'is required (or give a dockerfile)');
    else if (typeof target.image !== 'string') {
      const images = target.image;
      for (const mode of toolchains) {
        const image = imageFor(images, mode);
        if (!image) issue(['image'], `names no image for toolchain ${mode}`);
      }
    }
  });

/** The image of a toolchain mode in a per-mode map; native and emulated can stand in for each other (both are images of the target platform). */
function imageFor(
  images: Partial<Record<ToolchainMode, string>>,
  mode: ToolchainMode,
): string | undefined {
  if (mode === 'cross') return images.cross;
  return mode === 'native'
    ? (images.native ?? images.emulated)
    : (images.emulated ?? images.native);
}

/** A target as the recipe file has it (JSON Schema: docs/crossdock.schema.json). */
export type TargetInput = z.input<typeof target>;

/** The image name of a Dockerfile target's jobs: `dockerfile:<path of the Dockerfile>`. */
export const DOCKERFILE_IMAGE_PREFIX = 'dockerfile:';

/** A Dockerfile build: the file and context are paths in the repository. */
export interface DockerfileBuild {
  file: string;
  context: string;
  /** The stage to build; the last one when unset. */
  target?: string;
}

/** A validated target, normalised. */
export interface Target {
  platform: string;
  /** The modes it may run in, in the routing policy's order (TOOLCHAIN_MODES). */
  toolchains: ToolchainMode[];
  /** The builder image of each mode it may run in; native and emulated entries are both set when either is allowed. */
  images: Partial<Record<ToolchainMode, string>>;
  /** Empty for a Dockerfile target. */
  script: string;
  dockerfile?: DockerfileBuild;
  artifacts: string[];
  env: Record<string, string>;
  network: boolean;
  timeoutMinutes: number;
  labels: string[];
  secrets: string[];
  resources: { cpus?: number; memoryBytes?: number };
  /** Cache kinds and absolute paths. */
  caches: string[];
}

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

/**
 * The recipe's JSON Schema (draft 2020-12), for editors (yaml-language-server's `$schema`
 * comment, VS Code's yaml.schemas); published as docs/crossdock.schema.json by `npm run schema`.
 */
export function recipeJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(recipeSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://crossdock.local/schemas/crossdock.schema.json',
    title: 'Crossdock recipe (.crossdock.yml)',
  };
}

export interface Recipe {
  targets: Record<string, Target>;
  cancelSuperseded: boolean;
  /** sha256 (hex) of the recipe file's bytes. */
  digest: string;
}

/** The platform a target's container runs on in `mode`: the build host's for cross toolchains. */
export function runPlatform(platform: string, mode: ToolchainMode): string {
  return mode === 'cross' ? CROSS_HOST_PLATFORM : platform;
}

const MEMORY_UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes of a recipe memory size: a number is MiB; `4g`, `4GiB` and `4GB` are 4 × 1024³ (as Docker reads them). */
export function memoryBytes(size: number | string): number {
  if (typeof size === 'number') return size * MEMORY_UNITS.m!;
  const [, amount, unit] = /^(\d+(?:\.\d+)?)\s*([kmg])/i.exec(size)!;
  return Math.round(Number(amount) * MEMORY_UNITS[unit!.toLowerCase()]!);
}

function normalise(input: z.output<typeof target>): Target {
  const allowed = [input.toolchain].flat();
  const toolchains = TOOLCHAIN_MODES.filter((mode) => allowed.includes(mode));
  const dockerfile =
    input.dockerfile === undefined
      ? undefined
      : typeof input.dockerfile === 'string'
        ? { file: input.dockerfile, context: '.' }
        : input.dockerfile;
  const images: Partial<Record<ToolchainMode, string>> = {};
  // A Dockerfile target's "image" is its Dockerfile: jobs record the file's sha256 as its digest.
  if (dockerfile) images.native = images.emulated = `${DOCKERFILE_IMAGE_PREFIX}${dockerfile.file}`;
  if (input.image !== undefined)
    for (const mode of TOOLCHAIN_MODES) {
      const image = typeof input.image === 'string' ? input.image : imageFor(input.image, mode);
      const usable =
        mode === 'cross' ? toolchains.includes('cross') : toolchains.some((m) => m !== 'cross');
      if (image && usable) images[mode] = image;
    }
  return {
    platform: input.platform,
    toolchains,
    images,
    script: input.script ?? '',
    ...(dockerfile ? { dockerfile } : {}),
    artifacts: input.artifacts,
    env: input.env,
    network: input.network,
    timeoutMinutes: input.timeout_minutes,
    labels: input.labels,
    secrets: input.secrets,
    resources: {
      ...(input.resources.cpus !== undefined ? { cpus: input.resources.cpus } : {}),
      ...(input.resources.memory !== undefined
        ? { memoryBytes: memoryBytes(input.resources.memory) }
        : {}),
    },
    caches: [...new Set(input.caches)],
  };
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
    targets: Object.fromEntries(
      Object.entries(result.data.targets).map(([name, input]) => [name, normalise(input)]),
    ),
    cancelSuperseded: result.data.cancel_superseded,
    digest,
  };
}
