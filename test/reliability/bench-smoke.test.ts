/** `make bench QUICK=1` once per test run, so the benchmark harness cannot rot. Numbers are not checked. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('the benchmark suite (QUICK=1)', () => {
  it('runs end to end and writes its JSON and the report', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, QUICK: '1' }, timeout: 900_000 });
    expect(run.status, `${run.stdout.slice(-2000)}\n${run.stderr.slice(-2000)}`).toBe(0);
    for (const name of ['batch', 'reapply', 'scale', 'memory']) {
      const file = `${ROOT}bench/results/${name}.json`;
      expect(existsSync(file)).toBe(true);
      const result = JSON.parse(readFileSync(file, 'utf8')) as { rows: unknown[]; machine: { quick: boolean } };
      expect(result.rows.length).toBeGreaterThan(0);
      expect(result.machine.quick, `${name}.json was written by this QUICK run`).toBe(true);
    }
    expect(readFileSync(`${ROOT}bench/results/REPORT.md`, 'utf8')).toContain('# Benchmark report');
  }, 900_000); // seven QUICK benchmarks, each well under a minute on its own, on a loaded 2-core machine
});
