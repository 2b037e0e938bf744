/**
 * `memory`: RSS of the operator idle (ready, nothing to do; goal ≤ 100 MB) and its peak RSS
 * (VmHWM) with 1,000 resources / 10,000 queues all Ready (goal ≤ 200 MB), and the peak RSS of
 * `rabbitbatch publish` streaming a 1 GB JSON-lines file (goal ≤ 150 MB).
 *
 * The operator runs as the image and the Deployment run it: the compiled output laid out as in
 * the image, with the Deployment's NODE_OPTIONS and MALLOC_ARENA_MAX (deploy/default/deployment.yaml). Baselines in
 * the same run: a bare Node process of the same binary, and the previous build
 * (MEMORY_BASELINE_REF, default `main`) with MEMORY_BASELINE_FLAGS (default
 * `--max-old-space-size=256`: what V8 picks by itself under the Deployment's 512Mi limit, which
 * these processes outside a cgroup do not have), through the same scenario; the time to all
 * Ready of each says whether a flag costs reconcile rate. MEMORY_NODE_FLAGS replaces the
 * Deployment's flags (to compare V8 settings). The result file is written after each part, so a
 * failure later in the run keeps what was measured.
 * MEMORY_PARTS=operator runs only the operator part (the 1 GB CLI publish takes minutes);
 * MEMORY_PARTS=operator-new skips the previous build; MEMORY_SPLIT=1 also runs this build with
 * the previous flags (what the code changed, apart from the flags).
 */
import { createWriteStream, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUTH, MGMT, withVhost } from './lib/broker.js';
import { runFleet, type FleetFigures } from './lib/fleet-scenario.js';
import { buildImageLayout, deploymentRuntimeEnv, rabbitbatchArgs, runWithPeakRss, type Entry } from './lib/processes.js';
import { printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const R = QUICK ? 20 : 1000;
const Q = QUICK ? 5 : 10;
const FILE_MB = QUICK ? 20 : 1024;
const PARTS = (process.env.MEMORY_PARTS ?? 'operator,cli').split(',');
const RUNTIME_ENV = { ...deploymentRuntimeEnv(), ...(process.env.MEMORY_NODE_FLAGS !== undefined ? { NODE_OPTIONS: process.env.MEMORY_NODE_FLAGS } : {}) };
const BASELINE_REF = process.env.MEMORY_BASELINE_REF ?? 'main';
const BASELINE_FLAGS = process.env.MEMORY_BASELINE_FLAGS ?? '--max-old-space-size=256';
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
const notes = [
  'Peak RSS is VmHWM from /proc/<pid>/status, sampled every 20 ms until the process exits (the kernel keeps the high-water mark, so no peak is missed).',
  'Built = `tsc -p tsconfig.build.json` into a temporary directory laid out like the image (dist/, package.json, node_modules), run with plain node; the operator with the Deployment\'s NODE_OPTIONS in its environment, as in the container.',
  'The operator runs outside a cgroup: V8 sizes its heap from the flags alone (the Deployment sets them explicitly for that reason).',
  `The CLI publishes into a queue with x-max-length 10000 so the broker does not hold ${FILE_MB} MB; the rate is not the cli benchmark's figure.`,
];
const save = () => writeResult('memory', { rows, figures, notes });
const build = buildImageLayout();
const previous = PARTS.includes('operator') ? buildImageLayout(BASELINE_REF) : undefined;
try {
  const built: Entry = { builtDir: build.builtDir };
  // Each variant's figures are saved as soon as they are taken: deleting 10,000 queues afterwards can take minutes.
  const fleet = (key: string, commit: string, entry: Entry, env: Record<string, string>) =>
    runFleet({ prefix: 'memory', entry, replicas: 1, resources: R, queuesPerResource: Q, restart: false, idleMs: 5000, env, onFigures: (f) => ((figures[key] = { commit, runtimeEnv: env, ...f }), save()) });

  // Baseline: a bare Node process of the same binary (what no JavaScript of ours costs), idle as long as the operator.
  const bare = await runWithPeakRss(['-e', 'setTimeout(() => {}, 5000)']);
  figures.bareNodeMb = bare.peakMb;
  if (PARTS.includes('operator') || PARTS.includes('operator-new')) {
    // The previous build first, then this one: the same scenario, one after the other on the same broker and API server.
    let before: FleetFigures | undefined;
    if (previous) {
      before = await fleet('previous', previous.commit, { builtDir: previous.builtDir }, { NODE_OPTIONS: BASELINE_FLAGS });
      figures.previous = { commit: previous.commit, runtimeEnv: { NODE_OPTIONS: BASELINE_FLAGS }, ...before };
    }
    // MEMORY_SPLIT=1: this build also with the previous build's effective flags (its CLI added a
    // 16 MB semi-space), to tell what the code changed from what the flags did.
    const split = process.env.MEMORY_SPLIT === '1' ? await fleet('thisBuildPreviousFlags', build.commit, built, { NODE_OPTIONS: `${BASELINE_FLAGS} --max-semi-space-size=16` }) : undefined;
    const now = await fleet('operator', build.commit, built, RUNTIME_ENV);
    figures.operator = { commit: build.commit, runtimeEnv: RUNTIME_ENV, ...now };
    const [idle, start, peak] = [now.idleRssMb[0]!, now.startRssMb[0]!, now.reconcile.peakRssMb[0]!];
    const vs = (what: string, mb: number) => `vs ${what} (${mb.toFixed(0)} MB)`;
    const prev = before ? `the previous build ${previous!.commit}, ${BASELINE_FLAGS}` : '';
    const flags = Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`).join(' ') || 'no flags';
    rows.push({ name: `operator (built, ${flags}) RSS idle (ready, watching, nothing to do, 5 s after start)`, value: idle, unit: 'MB', baseline: vs('a bare `node` process', bare.peakMb), ratio: idle / bare.peakMb, goal: '<= 100 MB', met: idle <= 100 });
    if (before) rows.push({ name: 'operator (built) RSS idle against the previous build', value: idle, unit: 'MB', baseline: vs(prev, before.idleRssMb[0]!), ratio: idle / before.idleRssMb[0]!, goal: '<= 100 MB', met: idle <= 100 });
    rows.push({ name: 'operator (built) peak RSS until idle (VmHWM: start-up included)', value: start, unit: 'MB' });
    rows.push({ name: `operator (built, ${flags}) peak RSS, ${R} resources / ${R * Q} queues all Ready`, value: peak, unit: 'MB', ...(before ? { baseline: vs(prev, before.reconcile.peakRssMb[0]!), ratio: peak / before.reconcile.peakRssMb[0]! } : { baseline: vs('at start', start), ratio: peak / start }), goal: '<= 200 MB', met: peak <= 200 });
    if (before) rows.push({ name: `operator (built): time to all ${R * Q} queues Ready (the reconcile rate the flags must keep)`, value: now.reconcile.seconds, unit: 's', baseline: `vs ${prev} (${before.reconcile.seconds.toFixed(1)} s)`, ratio: now.reconcile.seconds / before.reconcile.seconds });
    if (split) {
      const f = `this build with the previous flags (${BASELINE_FLAGS} --max-semi-space-size=16)`;
      rows.push({ name: 'operator (built) RSS idle against this build with the previous flags', value: idle, unit: 'MB', baseline: vs(f, split.idleRssMb[0]!), ratio: idle / split.idleRssMb[0]! });
      rows.push({ name: `operator (built) peak RSS, ${R * Q} queues all Ready, against this build with the previous flags`, value: peak, unit: 'MB', baseline: vs(f, split.reconcile.peakRssMb[0]!), ratio: peak / split.reconcile.peakRssMb[0]! });
      rows.push({ name: `operator (built): time to all ${R * Q} queues Ready against this build with the previous flags`, value: now.reconcile.seconds, unit: 's', baseline: `vs ${f} (${split.reconcile.seconds.toFixed(1)} s)`, ratio: now.reconcile.seconds / split.reconcile.seconds });
    }
    rows.push({ name: `operator (built) RSS when all ${R} are Ready`, value: now.reconcile.endRssMb[0]!, unit: 'MB' });
    rows.push({ name: 'operator (built): added by the resources', value: Math.max(0, peak - start), unit: 'MB' });
    rows.push({ name: 'operator (built): V8 heap in use at the end (the rest of the RSS is code, buffers, freed-but-kept pages)', value: now.reconcile.heapUsedMb[0]!, unit: 'MB' });
    save();
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
  previous?.remove();
}

printTable('memory: peak RSS of the operator and of the CLI', rows);
console.log(`wrote ${save()}`);
process.exit(0);
