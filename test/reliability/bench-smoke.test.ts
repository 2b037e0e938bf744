/**
 * `make bench QUICK=1` once per test run, so the benchmark harness cannot rot: every benchmark
 * writes its JSON into a directory of this run's own (no earlier run's file can count), every
 * file is there, every figure is a figure (bench/lib/sanity.ts), and the report is written.
 * Absolute timings are not checked: this machine is shared and noisy.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCHMARKS } from '../../bench/lib/benchmarks.js';
import { problems, type BenchResult } from '../../bench/lib/sanity.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the benchmark suite (QUICK=1)', () => {
  it('runs end to end and writes sane figures of this run for every benchmark, and the report', () => {
    const started = new Date();
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, QUICK: '1', BENCH_RESULTS_DIR: dir }, timeout: 900_000 });
    expect(run.status, `${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`).toBe(0);
    for (const name of BENCHMARKS) {
      const file = join(dir, `${name}.json`);
      expect(existsSync(file), `${name}.json written`).toBe(true);
      const result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
      expect(result.machine.quick, `${name}.json was written by a QUICK run`).toBe(true);
      expect(problems(result, started)).toEqual([]);
    }
    const steady = JSON.parse(readFileSync(join(dir, 'steady-state.json'), 'utf8')) as { figures: { resources: number; reconcilesInResync: number } };
    expect(steady.figures.reconcilesInResync, 'the re-verification really reconciled every resource').toBeGreaterThanOrEqual(steady.figures.resources);
    const restart = JSON.parse(readFileSync(join(dir, 'restart.json'), 'utf8')) as { figures: { resources: number; queuesPerResource: number; blind: { requests: number } } };
    expect(restart.figures.blind.requests, 'the blind re-declare baseline was measured').toBe(restart.figures.resources * restart.figures.queuesPerResource);
    expect(readFileSync(join(dir, 'REPORT.md'), 'utf8')).toContain('# Benchmark report');
  }, 900_000); // seven QUICK benchmarks, each well under a minute on its own, on a loaded 2-core machine
});
