/**
 * Benchmark output: a table on stdout and `bench/results/<name>.json` with the figures, the
 * baselines measured in the same run, the ratios, and the machine. Ratios, not absolute times,
 * are what the README quotes: this 2-core machine is shared and noisy.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { pathToFileURL } from 'node:url';

export interface Row {
  name: string;
  value: number;
  unit: string;
  /** e.g. "vs sequential" */
  baseline?: string;
  ratio?: number;
  goal?: string;
  met?: boolean;
}

/** `bench/results/`, or `BENCH_RESULTS_DIR` (bench-smoke writes into a fresh directory so no earlier run's file can count). */
export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ? pathToFileURL(`${process.env.BENCH_RESULTS_DIR.replace(/\/+$/, '')}/`) : new URL('../results/', import.meta.url);

export function machine() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
    /** 1, 5 and 15 minute load averages when the benchmark finished: how busy the shared machine was. */
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    quick: process.env.QUICK === '1',
  };
}

export function printTable(title: string, rows: Row[]): void {
  console.log(`\n${title}`);
  const fmt = (n: number | undefined, d = 2) => (n === undefined ? '' : Number.isInteger(n) ? String(n) : n.toFixed(d));
  const lines = rows.map((r) => [r.name, `${fmt(r.value)} ${r.unit}`, r.baseline ?? '', r.ratio === undefined ? '' : `${fmt(r.ratio)}x`, r.goal ?? '', r.met === undefined ? '' : r.met ? 'met' : 'NOT met']);
  const header = ['measure', 'value', 'baseline', 'ratio', 'goal', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(line(l));
}

export function writeResult(name: string, data: { rows: Row[]; [k: string]: unknown }): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = new URL(`${name}.json`, RESULTS_DIR);
  writeFileSync(file, `${JSON.stringify({ name, machine: machine(), ...data }, null, 2)}\n`);
  return file.pathname;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
