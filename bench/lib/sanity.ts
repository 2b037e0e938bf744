/**
 * What makes a benchmark result a figure at all, whatever the machine: every value a finite
 * number (NaN and Infinity arrive as null in JSON), no negative amount, every rate above zero,
 * every ratio finite and within (0, 10,000), and the measurement written after `since`.
 * Used by bench-smoke on a QUICK run and by the README generator on the reference run.
 */
import type { Row } from './report.js';

export interface BenchResult {
  name: string;
  machine: { date: string; quick: boolean };
  rows: Row[];
  figures?: Record<string, unknown>;
}

export function problems(result: BenchResult, since?: Date): string[] {
  const out: string[] = [];
  if (since && !(new Date(result.machine.date) >= since)) out.push(`${result.name}: written ${result.machine.date}, before this run started (${since.toISOString()})`);
  if (result.rows.length === 0) out.push(`${result.name}: no rows`);
  for (const row of result.rows) {
    const what = `${result.name}: "${row.name}"`;
    if (typeof row.value !== 'number' || !Number.isFinite(row.value)) out.push(`${what}: value ${String(row.value)} is not a number`);
    else if (row.value < 0) out.push(`${what}: negative value ${row.value}`);
    else if (/\/s$|\/h$/.test(row.unit) && row.value <= 0) out.push(`${what}: rate ${row.value} ${row.unit} is not above zero`);
    if (row.ratio !== undefined && (typeof row.ratio !== 'number' || !Number.isFinite(row.ratio) || row.ratio <= 0 || row.ratio >= 10_000)) out.push(`${what}: ratio ${String(row.ratio)} out of range`);
  }
  return out;
}
