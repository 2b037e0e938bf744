/** CLI output: a table for people, `-o json` (an array of {resource, status, error}) for scripts. */
import type { Plan } from '../batch/plan.js';

export interface ResultRow {
  resource: string;
  status: string;
  error?: string;
}

export function printResults(rows: ResultRow[], format: 'table' | 'json'): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(rows.map((r) => ({ resource: r.resource, status: r.status, error: r.error ?? null })), null, 2)}\n`);
    return;
  }
  table(['STATUS', 'RESOURCE', 'ERROR'], rows.map((r) => [r.status, r.resource, r.error ?? '']));
}

export function printPlan(plan: Plan, format: 'table' | 'json'): void {
  const rows = plan.items.map((i) => ({ resource: i.resource, status: i.decision, error: i.message }));
  if (!plan.vhostExists) rows.unshift({ resource: `vhost/${plan.vhost}`, status: 'missing', error: 'the vhost does not exist' });
  printResults(rows, format);
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}
