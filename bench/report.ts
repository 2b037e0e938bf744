/**
 * Writes bench/results/REPORT.md from every bench/results/*.json: a table per benchmark and an
 * SVG bar chart of the ratios (rabbitbatch vs the baseline measured in the same run).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { RESULTS_DIR, type Row } from './lib/report.js';

interface Result {
  name: string;
  machine: { cpus: number; node: string; date: string; quick: boolean };
  rows: Row[];
  notes?: string[];
  /** PROFILE=1 runs: the functions with the most self time, per profiled process. */
  profile?: { file: string; top: { name: string; ms: number; share: number }[] }[];
}

const results: Result[] = readdirSync(RESULTS_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(new URL(f, RESULTS_DIR), 'utf8')) as Result);

const ratios = results.flatMap((r) => r.rows.filter((row) => typeof row.ratio === 'number' && Number.isFinite(row.ratio)).map((row) => ({ label: `${r.name}: ${row.name}`, ratio: row.ratio!, met: row.met })));
writeFileSync(new URL('ratios.svg', RESULTS_DIR), barChart(ratios));

const md: string[] = ['# Benchmark report', '', 'Every ratio compares rabbitbatch with a baseline measured in the same run on the same machine.', '', '![ratios](ratios.svg)', ''];
for (const r of results) {
  md.push(`## ${r.name}`, '', `${r.machine.date}, ${r.machine.cpus} CPUs, Node ${r.machine.node}${r.machine.quick ? ', QUICK=1' : ''}`, '');
  md.push('| measure | value | baseline | ratio | goal | |', '|---|---|---|---|---|---|');
  for (const row of r.rows) {
    md.push(`| ${row.name} | ${fmt(row.value)} ${row.unit} | ${row.baseline ?? ''} | ${row.ratio === undefined ? '' : `${fmt(row.ratio)}×`} | ${row.goal ?? ''} | ${row.met === undefined ? '' : row.met ? 'met' : '**not met**'} |`);
  }
  for (const n of r.notes ?? []) md.push('', `- ${n}`);
  for (const p of r.profile ?? []) {
    md.push('', `Top self time in \`${p.file.split('/').slice(-2).join('/')}\`:`, '', '| function | self time | share |', '|---|---|---|');
    for (const t of p.top) md.push(`| \`${t.name}\` | ${t.ms.toFixed(0)} ms | ${(t.share * 100).toFixed(1)}% |`);
  }
  md.push('');
}
writeFileSync(new URL('REPORT.md', RESULTS_DIR), md.join('\n'));
console.log(`\nwrote ${new URL('REPORT.md', RESULTS_DIR).pathname}`);

/** NaN and Infinity arrive as null (JSON): a figure that could not be measured, shown as such. */
function fmt(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return 'n/a';
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

function barChart(bars: { label: string; ratio: number; met?: boolean }[]): string {
  const width = 900;
  const rowH = 26;
  const left = 420;
  const max = Math.max(1, ...bars.map((b) => b.ratio));
  const scale = (v: number) => ((width - left - 80) * Math.log10(1 + v)) / Math.log10(1 + max);
  const rows = bars.map((b, i) => {
    const y = 30 + i * rowH;
    const colour = b.met === false ? '#d9534f' : '#2e7d32';
    return `<text x="${left - 8}" y="${y + 16}" text-anchor="end" font-size="12">${escape(b.label)}</text>` +
      `<rect x="${left}" y="${y + 4}" width="${scale(b.ratio).toFixed(1)}" height="16" fill="${colour}"/>` +
      `<text x="${left + scale(b.ratio) + 6}" y="${y + 16}" font-size="12">${fmt(b.ratio)}×</text>`;
  });
  const height = 40 + bars.length * rowH;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">` +
    `<text x="10" y="18" font-size="14" font-weight="bold">rabbitbatch vs baseline (log scale; red = goal not met)</text>${rows.join('')}</svg>\n`;
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
