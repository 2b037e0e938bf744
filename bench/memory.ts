/**
 * `memory`: RSS of the operator idle (ready, nothing to do; goal ≤ 100 MB) and its peak RSS
 * (VmHWM) with 1,000 resources / 10,000 queues all Ready (goal ≤ 200 MB), and the peak RSS of `rabbitbatch publish` streaming a 1 GB JSON-lines file (goal ≤ 150 MB),
 * each against the same process's peak RSS at start, so the figure shows what the work adds.
 * Both run from the compiled output laid out as in the image (what users run); the CLI also
 * from source through tsx (what `npx rabbitbatch` runs in a checkout). The operator from source
 * is measured by `scale`, with the same scenario (bench/lib/fleet-scenario.ts).
 * MEMORY_PARTS=operator runs only the operator part (the 1 GB CLI publish takes minutes);
 * MEMORY_NODE_FLAGS gives the operator node flags (e.g. another --max-semi-space-size).
 */
import { createWriteStream, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH, MGMT, withVhost } from './lib/broker.js';
import { runFleet } from './lib/fleet-scenario.js';
import { buildImageLayout, rabbitbatchArgs, runWithPeakRss, type Entry } from './lib/processes.js';
import { printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const R = QUICK ? 20 : 1000;
const Q = QUICK ? 5 : 10;
const FILE_MB = QUICK ? 20 : 1024;
const PARTS = (process.env.MEMORY_PARTS ?? 'operator,cli').split(',');
/** MEMORY_NODE_FLAGS='--max-semi-space-size=4 ...': node flags for the operator (to compare V8 heap settings). */
const NODE_FLAGS = (process.env.MEMORY_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const LINE = 200; // bytes per line, newline included: the message size of NOTES' measurement

/** JSON lines of exactly LINE bytes, written in chunks (a write per line would take minutes for 1 GB). */
async function writeMessages(file: string, bytes: number): Promise<number> {
  const out = createWriteStream(file);
  const lines = Math.floor(bytes / LINE);
  for (let i = 1; i <= lines; ) {
    const chunk: string[] = [];
    for (const end = Math.min(lines, i + 9999); i <= end; i++) {
      const head = `{"body":{"id":${i},"p":"`;
      chunk.push(`${head}${'x'.repeat(LINE - head.length - 4)}"}}\n`);
    }
    if (!out.write(chunk.join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  return lines;
}

const rows: Row[] = [];
const figures: Record<string, unknown> = {};
const build = buildImageLayout();
try {
  const built: Entry = { builtDir: build.builtDir };

  // Operator: the scenario of `scale`, one replica, compiled output. Idle: 5 s after /readyz.
  // Baseline: a bare Node process of the same binary (what no JavaScript of ours costs).
  const bare = await runWithPeakRss(['-e', 'setTimeout(() => {}, 1000)']);
  const fleet = PARTS.includes('operator') ? await runFleet({ prefix: 'memory', entry: built, replicas: 1, resources: R, queuesPerResource: Q, restart: false, idleMs: 5000, ...(NODE_FLAGS.length ? { nodeFlags: NODE_FLAGS } : {}) }) : undefined;
  if (fleet) {
  figures.operator = fleet;
  figures.bareNodeMb = bare.peakMb;
  const [idle, start, peak] = [fleet.idleRssMb[0]!, fleet.startRssMb[0]!, fleet.reconcile.peakRssMb[0]!];
  rows.push({ name: 'operator (built) RSS idle (ready, watching, nothing to do, 5 s after start)', value: idle, unit: 'MB', baseline: `vs a bare \`node\` process (${bare.peakMb.toFixed(0)} MB)`, ratio: idle / bare.peakMb, goal: '<= 100 MB', met: idle <= 100 });
  rows.push({ name: 'operator (built) peak RSS until idle (VmHWM: start-up included)', value: start, unit: 'MB' });
  rows.push({ name: `operator (built) peak RSS, ${R} resources / ${R * Q} queues all Ready`, value: peak, unit: 'MB', baseline: `vs at start (${start.toFixed(0)} MB)`, ratio: peak / start, goal: '<= 200 MB', met: peak <= 200 });
  rows.push({ name: `operator (built) RSS when all ${R} are Ready`, value: fleet.reconcile.endRssMb[0]!, unit: 'MB' });
  rows.push({ name: 'operator (built): added by the resources', value: peak - start, unit: 'MB' });
  rows.push({ name: 'operator (built): V8 heap in use at the end (the rest of the RSS is code, buffers, freed-but-kept pages)', value: fleet.reconcile.heapUsedMb[0]!, unit: 'MB' });
  }

  // CLI: stream a large file into a queue that keeps only the newest 10,000 messages, so the
  // broker does not have to hold 1 GB (the CLI's memory is what is measured, not the broker's).
  const file = join(tmpdir(), `rabbitbatch-bench-memory-${process.pid}.jsonl`);
  if (PARTS.includes('cli')) try {
    const messages = await writeMessages(file, FILE_MB * 1024 * 1024);
    const sizeMb = statSync(file).size / 1024 / 1024;
    figures.file = { messages, sizeMb };
    await withVhost('memory-cli', async (vhost) => {
      const res = await fetch(`${MGMT}/api/queues/${encodeURIComponent(vhost)}/bench`, { method: 'PUT', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ durable: true, auto_delete: false, arguments: { 'x-max-length': 10_000 } }) });
      if (res.status >= 300) throw new Error(`declare bench queue: ${res.status}`);
      // 1 GB through the compiled output (what users run); from source only the last quarter of
      // it (the rest read and skipped with --resume-from), since a second 1 GB publish would take
      // `make bench` past its 20 minutes.
      for (const [label, entry, skip] of [['built', built, 0], ['source (tsx)', 'source', messages - Math.floor(messages / 4)]] as const) {
        const published = messages - skip;
        const atStart = await runWithPeakRss(rabbitbatchArgs(entry, ['--version']));
        const started = performance.now();
        const run = await runWithPeakRss(rabbitbatchArgs(entry, ['publish', '--file', file, '--routing-key', 'bench', '--vhost', vhost, '--resume-from', String(skip)]));
        const seconds = (performance.now() - started) / 1000;
        if (run.code !== 0) throw new Error(`publish (${label}) exited ${run.code}: ${run.stderr}`);
        figures[`cli.${label}`] = { startMb: atStart.peakMb, peakMb: run.peakMb, seconds, published, messagesPerSecond: published / seconds };
        rows.push({ name: `CLI (${label}) peak RSS reading a ${Math.round(sizeMb)} MB file, publishing ${published} of its ${messages} messages`, value: run.peakMb, unit: 'MB', baseline: `vs \`--version\` (${atStart.peakMb.toFixed(0)} MB)`, ratio: run.peakMb / atStart.peakMb, goal: '<= 150 MB', met: run.peakMb <= 150 });
        rows.push({ name: `CLI (${label}): added by publishing`, value: run.peakMb - atStart.peakMb, unit: 'MB' });
        rows.push({ name: `CLI (${label}): publish rate`, value: published / seconds, unit: 'msg/s' });
      }
    });
  } finally {
    rmSync(file, { force: true });
  }
} finally {
  build.remove();
}

printTable('memory: peak RSS of the operator and of the CLI', rows);
console.log(
  `wrote ${writeResult('memory', {
    rows,
    figures,
    notes: [
      'Peak RSS is VmHWM from /proc/<pid>/status, sampled every 20 ms until the process exits (the kernel keeps the high-water mark, so no peak is missed).',
      'Built = `tsc -p tsconfig.build.json` into a temporary directory laid out like the image (dist/, package.json, node_modules), run with plain node.',
      `The CLI publishes into a queue with x-max-length 10000 so the broker does not hold ${FILE_MB} MB; the rate is not the cli benchmark's figure.`,
    ],
  })}`,
);
process.exit(0);
