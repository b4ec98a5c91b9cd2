// Benchmark 5: the same arm64 build cross-compiled against emulated, in one run.
//
// GNU hello from Debian's source package, with deploy/examples/hello/crossdock.yml: target
// `arm64` (toolchain cross: aarch64-linux-gnu-gcc in the amd64 builder image) and target
// `arm64-emulated` (toolchain emulated: the native toolchain of the linux/arm64 builder image,
// every process run through QEMU user emulation). Both run `./configure && make && make install`
// and leave the same files in /out.
//
// A real worker process (worker/main.ts, 1 slot, linux/amd64 native and linux/arm64 emulated)
// runs builds of one job each, alternating the two targets, with `reuse: false` so that each is
// built. Time of one sample = the job's finished_at − started_at in the database, in seconds
// (claim → fetch → container → script → upload → recorded). Medians count. Expect emulated ÷
// cross ≥ 5 (cross-compiling is 5–10 × faster than emulation).
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

const NAME = 'cross-vs-emulated';
/** Builds of each target. */
const SAMPLES = Number(process.env.BENCH_CROSS_SAMPLES ?? 2);
/** Target: emulated at least this many times slower than cross. */
const TARGET_RATIO = 5;
const TARGETS = { cross: 'arm64', emulated: 'arm64-emulated' } as const;

async function main(): Promise<void> {
  const cpuBusyBeforePercent = await cpuBusyPercent();
  const repo = { owner: 'bench', name: 'hello' };
  const workerEnv = { WORKER_EMULATED_PLATFORMS: 'linux/arm64' };
  await withExampleProject({ pkg: 'hello', repo, workerEnv }, async (project) => {
    /** Builds `target` once; returns the job's run time in seconds. */
    const sample = async (target: string) =>
      (await buildExampleTarget(project, target, 1_800_000)).seconds;

    const times: Record<keyof typeof TARGETS, number[]> = { cross: [], emulated: [] };
    for (let i = 0; i < SAMPLES; i += 1) {
      const order =
        i % 2 === 0 ? (['cross', 'emulated'] as const) : (['emulated', 'cross'] as const);
      for (const mode of order) {
        const seconds = await sample(TARGETS[mode]);
        times[mode].push(seconds);
        progress(
          NAME,
          `${mode} (${TARGETS[mode]}) sample ${i + 1}/${SAMPLES}: ${round(seconds, 1)} s`,
        );
      }
    }
    const cross = round(median(times.cross), 1);
    const emulated = round(median(times.emulated), 1);
    const ratio = round(emulated / cross, 1);
    await writeResult(
      NAME,
      {
        description:
          'GNU hello for linux/arm64, cross-compiled vs emulated (QEMU user), job run time in seconds (claim → recorded), medians',
        parameters: {
          samples: SAMPLES,
          project: 'GNU hello (Debian source package hello), ./configure && make && make install',
          cross: `target ${TARGETS.cross}: crossdock/builder-debian:bookworm, aarch64-linux-gnu-gcc`,
          emulated: `target ${TARGETS.emulated}: crossdock/builder-debian:bookworm-arm64 through qemu-aarch64 (binfmt_misc)`,
          worker: 'worker/main.ts, 1 slot, linux/amd64 native, linux/arm64 emulated',
        },
        crossdock: {
          crossSeconds: summarize(times.cross),
          emulatedSeconds: summarize(times.emulated),
        },
        ratio,
        verdicts: [
          {
            target: `emulated ${emulated} s ≥ ${TARGET_RATIO} × cross ${cross} s (ratio ${ratio})`,
            pass: ratio >= TARGET_RATIO,
          },
        ],
      },
      { cpuBusyBeforePercent },
    );
  });
}

await main();
