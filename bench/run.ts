/**
 * `make bench` runs every benchmark; `make bench BENCH=<name>` one; `QUICK=1` a smoke run.
 * Each benchmark is a script in bench/ that prints a table and writes bench/results/<name>.json;
 * bench/report.ts then writes bench/results/REPORT.md with a chart. Exits non-zero when any
 * benchmark or the report failed. `BENCH_RESULTS_DIR` writes elsewhere than bench/results/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BENCHMARKS } from './lib/benchmarks.js';

const ALL: readonly string[] = BENCHMARKS;
const only = process.argv[2];
const names = only ? [only] : ALL.filter((n) => existsSync(new URL(`./${n}.ts`, import.meta.url)));
if (only && !ALL.includes(only) && !existsSync(new URL(`./${only}.ts`, import.meta.url))) {
  console.error(`unknown benchmark "${only}"; available: ${ALL.join(', ')}`);
  process.exit(1);
}

let failed = 0;
for (const name of names) {
  console.log(`\n### bench/${name}.ts`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', new URL(`./${name}.ts`, import.meta.url).pathname], { stdio: 'inherit' });
  if (run.status !== 0) {
    failed++;
    console.error(`bench/${name}.ts failed (exit ${run.status})`);
  }
}
const report = spawnSync(process.execPath, ['--import', 'tsx', new URL('./report.ts', import.meta.url).pathname], { stdio: 'inherit' });
if (report.status !== 0) {
  failed++;
  console.error(`bench/report.ts failed (exit ${report.status})`);
}
process.exit(failed > 0 ? 1 : 0);
