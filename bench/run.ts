// Runs the benchmarks one after another, each in its own process (`npm run bench`, or
// `npm run bench -- dispatch recovery` for some), then prints each one's verdicts from
// bench/results/<name>.json. Exits non-zero when a benchmark failed to run; a missed target is
// a result, reported, not a failure of the run.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RESULTS_DIR } from './support';

/** The benchmarks, in the order they run (the quick in-process ones first). */
const BENCHMARKS = [
  'dispatch',
  'slack-ack',
  'portal',
  'throughput',
  'overhead',
  'recovery',
  'cross-vs-emulated',
  'ccache',
] as const;

const ROOT = new URL('../', import.meta.url).pathname;
const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(BENCHMARKS as readonly string[]).includes(name));
if (unknown.length) {
  console.error(`unknown benchmark(s) ${unknown.join(', ')}; choose from ${BENCHMARKS.join(', ')}`);
  process.exit(2);
}
const chosen = asked.length ? BENCHMARKS.filter((name) => asked.includes(name)) : BENCHMARKS;

const crashed: string[] = [];
const startedAt = performance.now();
for (const name of chosen) {
  console.log(`[bench] ${name}`);
  const before = performance.now();
  const result = spawnSync(process.execPath, ['--import', 'tsx', `${ROOT}bench/${name}.ts`], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  const seconds = Math.round((performance.now() - before) / 1000);
  if (result.status !== 0) {
    crashed.push(name);
    console.error(
      `[bench] ${name} failed (exit ${result.status ?? result.signal}) after ${seconds} s`,
    );
  } else {
    console.log(`[bench] ${name} done in ${seconds} s`);
  }
}

console.log(`\n[bench] summary (${Math.round((performance.now() - startedAt) / 1000)} s in all)`);
for (const name of chosen) {
  if (crashed.includes(name)) {
    console.log(`  ${name}: did not run to the end`);
    continue;
  }
  const result = JSON.parse(readFileSync(`${RESULTS_DIR}/${name}.json`, 'utf8')) as {
    verdicts: { target: string; pass: boolean }[];
  };
  for (const verdict of result.verdicts)
    console.log(`  ${name}: ${verdict.pass ? 'PASS' : 'MISS'}  ${verdict.target}`);
}
process.exit(crashed.length ? 1 : 0);
