// Benchmark 6: a rebuild with a warm ccache against one with a cold ccache.
//
// brotli from Debian's source package, target `arm64` of deploy/examples/brotli/crossdock.yml:
// CMake + Ninja, cross-compiled with aarch64-linux-gnu-gcc through ccache, `caches: [ccache]`
// (the worker mounts the volume of repository + target + trust level at /cache/ccache and sets
// CCACHE_DIR). A real worker process (worker/main.ts, 1 slot) builds it with `reuse: false`.
// Each sample: remove the cache volume, build (cold: every compile misses and fills the cache),
// build the same commit again (warm: every compile hits). Time of one build = the job's
// finished_at − started_at (claim → fetch → container → script → upload → recorded), seconds.
// Medians count. Expect cold ÷ warm ≥ 2.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readLog } from '../db/queries/logs';
import { cacheMounts } from '../worker/caches';
import {
  buildExampleTarget,
  cpuBusyPercent,
  median,
  progress,
  round,
  summarize,
  withExampleProject,
  writeResult,
} from './support';

const NAME = 'ccache';
const run = promisify(execFile);
/** Cold-then-warm pairs. */
const SAMPLES = Number(process.env.BENCH_CCACHE_SAMPLES ?? 3);
/** Target: a cold build takes at least this many times as long as a warm one. */
const TARGET_RATIO = 2;
const TARGET = 'arm64';
/** This run's own repository name, so its cache volume is its own. */
const REPO = { owner: 'bench', name: `brotli-${process.pid}` };

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  await withExampleProject({ pkg: 'brotli', repo: REPO }, async (project) => {
    const [volume] = cacheMounts({
      repository: `${REPO.owner}/${REPO.name}`,
      target: TARGET,
      trusted: true,
      caches: project.recipe.targets[TARGET]!.caches,
    }).map((cache) => cache.volume);
    if (!volume) throw new Error(`target ${TARGET} of the brotli example names no cache`);
    const removeVolume = () => run('docker', ['volume', 'rm', '-f', volume]);
    /** Builds the target once; returns its run time (s) and ccache's counts from the log. */
    const sample = async () => {
      const { jobId, seconds } = await buildExampleTarget(project, TARGET, 900_000);
      const log = (await readLog(project.db, jobId)).text;
      const hits = Number(/^\s*Hits:\s+(\d+)/m.exec(log)?.[1] ?? NaN);
      const misses = Number(/^\s*Misses:\s+(\d+)/m.exec(log)?.[1] ?? NaN);
      return { seconds, hits, misses };
    };

    try {
      const times = { cold: [] as number[], warm: [] as number[] };
      const stats = { cold: [] as string[], warm: [] as string[] };
      for (let i = 0; i < SAMPLES; i += 1) {
        await removeVolume();
        for (const state of ['cold', 'warm'] as const) {
          const { seconds, hits, misses } = await sample();
          times[state].push(seconds);
          stats[state].push(`${hits} hits, ${misses} misses`);
          progress(
            NAME,
            `${state} sample ${i + 1}/${SAMPLES}: ${round(seconds, 1)} s (${hits} hits, ${misses} misses)`,
          );
        }
      }
      const cold = round(median(times.cold), 2);
      const warm = round(median(times.warm), 2);
      const ratio = round(cold / warm, 2);
      await writeResult(
        NAME,
        {
          description:
            'brotli for linux/arm64 (cross, CMake + Ninja, ccache), rebuild with a cold vs a warm ccache volume, job run time in seconds (claim → recorded), medians',
          parameters: {
            samples: SAMPLES,
            project: 'brotli (Debian source package brotli), cmake --build build --target brotli',
            target: `${TARGET}: crossdock/builder-debian:bookworm, aarch64-linux-gnu-gcc via ccache, caches: [ccache]`,
            worker: 'worker/main.ts, 1 slot',
          },
          crossdock: {
            coldSeconds: summarize(times.cold),
            warmSeconds: summarize(times.warm),
            ccacheStats: stats,
          },
          ratio,
          verdicts: [
            {
              target: `cold ${cold} s ≥ ${TARGET_RATIO} × warm ${warm} s (ratio ${ratio})`,
              pass: ratio >= TARGET_RATIO,
            },
          ],
        },
        { cpuBusyBeforePercent },
      );
    } finally {
      await removeVolume().catch(() => {});
    }
  });
}

await main();
