/**
 * `cli`: the CLI's engines against baselines in the same run — streaming publish vs a bare
 * amqplib confirm loop (throughput ratio, messages per hour), the peak RSS of the CLI process
 * publishing a large file, and a 100-queue batch vs 100 sequential single PUTs.
 */
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp, { type ConfirmChannel } from 'amqplib';
import { specSchema } from '../src/api/schema.js';
import { executePlan } from '../src/batch/execute.js';
import { planBatch } from '../src/batch/plan.js';
import { publishFile } from '../src/batch/publish/publisher.js';
import { ManagementClient } from '../src/rabbit/management-client.js';
import { observeVhost } from '../src/rabbit/observe.js';
import { AUTH, MGMT, sequentialPuts, timed, withVhost } from './lib/broker.js';
import { rabbitbatchArgs, runWithPeakRss } from './lib/processes.js';
import { printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const MESSAGES = QUICK ? 50_000 : 300_000;
const ROUNDS = Number(process.env.CLI_PUBLISH_ROUNDS ?? 5);
/** CLI_PARTS=publish runs only the publish comparison. */
const PARTS = (process.env.CLI_PARTS ?? 'publish,rss,batch').split(',');
// The 1 GB figure is bench/memory.ts's (compiled output, as users run it); here a file large
// enough for the RSS to settle keeps `make bench` within its 20 minutes.
const BIG_MB = QUICK ? 50 : 256;

async function writeLines(file: string, n: number, pad = 0): Promise<void> {
  const out = createWriteStream(file);
  const filler = 'x'.repeat(pad);
  for (let i = 1; i <= n; i++) if (!out.write(`{"body":{"id":${i},"p":"${filler}"}}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  await new Promise<void>((r) => out.end(() => r()));
}

const declare = (vhost: string, q: string) => fetch(`${MGMT}/api/queues/${encodeURIComponent(vhost)}/${q}`, { method: 'PUT', headers: { authorization: AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ durable: true, auto_delete: false, arguments: {} }) });
const purge = (vhost: string, q: string) => fetch(`${MGMT}/api/queues/${encodeURIComponent(vhost)}/${q}/contents`, { method: 'DELETE', headers: { authorization: AUTH } });

const rows: Row[] = [];
const figures: Record<string, unknown> = {};
const file = join(tmpdir(), `rabbitbatch-bench-${process.pid}.jsonl`);
await writeLines(file, MESSAGES, 150); // ~200-byte messages, as in NOTES' measurement

await withVhost('cli', async (vhost) => {
  await declare(vhost, 'bench');
  if (PARTS.includes('publish')) {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`);
  try {
    // Baseline: a bare confirm loop on the same file: it reads the lines (readline), takes each
    // body out of its JSON, publishes it and waits for confirms every 1,000. Reading the file is
    // inside its time as it is inside rabbitbatch's: both sides do the same work.
    // Five rounds, the two sides alternating which goes first (the broker warms up and the
    // shared machine's load drifts): the figure is the median of the five ratios.
    const bareLoop = async () => {
      const bare = await conn.createConfirmChannel();
      const seconds = await timed(async () => {
        let i = 0;
        for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
          if (line === '') continue;
          const body = Buffer.from(JSON.stringify((JSON.parse(line) as { body: unknown }).body));
          if (!bare.publish('', 'bench', body, { persistent: true })) await new Promise((r) => bare.once('drain', r));
          if (++i % 1000 === 0) await bare.waitForConfirms();
        }
        await bare.waitForConfirms();
      });
      await bare.close();
      await purge(vhost, 'bench');
      return MESSAGES / seconds;
    };
    const oursLoop = async () => {
      const ch: ConfirmChannel = await conn.createConfirmChannel();
      const ours = await publishFile({ channel: ch, file, routingKey: 'bench', window: 1000 });
      await ch.close();
      await purge(vhost, 'bench');
      if (ours.confirmed !== MESSAGES) throw new Error(`publish confirmed ${ours.confirmed} of ${MESSAGES}`);
      return ours.confirmed / ours.seconds;
    };
    const rounds: { bare: number; ours: number; ratio: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const [bare, ours] = r % 2 === 0 ? [await bareLoop(), await oursLoop()] : await oursLoop().then(async (o) => [await bareLoop(), o]);
      rounds.push({ bare: bare!, ours: ours!, ratio: ours! / bare! });
    }
    const byRatio = [...rounds].sort((x, y) => x.ratio - y.ratio);
    const mid = byRatio[Math.floor(byRatio.length / 2)]!;
    Object.assign(figures, { messages: MESSAGES, rounds: ROUNDS, ratios: rounds.map((r) => Math.round(r.ratio * 1000) / 1000), bareRates: rounds.map((r) => Math.round(r.bare)), rabbitbatchRates: rounds.map((r) => Math.round(r.ours)) });
    const ourRate = mid.ours;
    rows.push({ name: `publish ${MESSAGES} messages from a file (median of ${ROUNDS} rounds, sides alternating)`, value: ourRate, unit: 'msg/s', baseline: `vs bare amqplib confirm loop (${Math.round(mid.bare)} msg/s in that round)`, ratio: mid.ratio, goal: '>= 0.95', met: mid.ratio >= 0.95 });
    rows.push({ name: 'publish rate per hour', value: Math.round((ourRate * 3600) / 1e6), unit: 'M msg/h', goal: '>= 50 M', met: ourRate * 3600 >= 50e6 });
  } finally {
    await conn.close();
  }
  }

  if (PARTS.includes('rss')) {
  // Peak RSS of the CLI process publishing a large file (read from /proc while it runs).
  const big = join(tmpdir(), `rabbitbatch-bench-big-${process.pid}.jsonl`);
  await writeLines(big, Math.round((BIG_MB * 1024 * 1024) / 200), 150);
  const { code, peakMb, stderr } = await runWithPeakRss(rabbitbatchArgs('source', ['publish', '--file', big, '--routing-key', 'bench', '--vhost', vhost]));
  const sizeMb = statSync(big).size / 1024 / 1024;
  rmSync(big);
  // A crash would read as low memory: the figure counts only for a publish that succeeded.
  if (code !== 0) throw new Error(`rabbitbatch publish of the ${Math.round(sizeMb)} MB file exited ${code}, so its peak RSS is no figure: ${stderr}`);
  await purge(vhost, 'bench');
  figures.bigFileMb = sizeMb;
  figures.peakRssMb = peakMb;
  rows.push({ name: `CLI peak RSS publishing a ${Math.round(sizeMb)} MB file`, value: peakMb, unit: 'MB', goal: '<= 150 MB', met: peakMb <= 150 });

  }

  if (PARTS.includes('batch')) {
  // A 100-queue batch through the engine vs 100 sequential single PUTs.
  const api = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 10 });
  try {
    await api.warm();
    const input = { vhost, queues: Array.from({ length: 100 }, (_, i) => ({ name: `b${i}` })) };
    const batchSeconds = await timed(async () => {
      const spec = specSchema.parse(input);
      const result = await executePlan(planBatch({ spec, observed: await observeVhost(api, vhost) }), api, { mode: 'AllOrNothing', concurrency: 10 });
      if (result.outcome !== 'Succeeded') throw new Error(`batch did not succeed: ${result.outcome}`);
    });
    const seqSeconds = await sequentialPuts(MGMT, vhost, Array.from({ length: 100 }, (_, i) => `s${i}`));
    rows.push({ name: '100-queue batch (0 ms RTT; 10 ms: see bench/results/batch.json)', value: batchSeconds * 1000, unit: 'ms', baseline: 'vs 100 sequential PUTs (both warm)', ratio: seqSeconds / batchSeconds });
  } finally {
    await api.close();
  }
  }
});
rmSync(file);
printTable('cli: streaming publish and batches', rows);
console.log(`wrote ${writeResult('cli', { rows, figures })}`);
