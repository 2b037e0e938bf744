/**
 * `batch`: 100-operation batches and a 1,000-queue batch through rabbitbatch's planner and
 * executor, against (a) sequential requests, (b) a new connection per request (the official
 * operator's way) and (c) the broker's cap (raw parallel PUTs at the best concurrency of a
 * sweep, and AMQP declarations on 10 channels), with 0 ms and 10 ms of injected round trip
 * (toxiproxy).
 *
 * Both sides of every ratio do the same operations: the baselines send one request per object
 * of the very spec rabbitbatch applies (`specOps`), for a queue-only batch (100 queues) and a
 * mixed one (10 exchanges + 60 queues + 30 bindings). Both sides start the same way: against
 * the keep-alive baselines rabbitbatch's pool is warm and so is theirs (sockets opened before
 * the clock starts); against a new connection per request rabbitbatch starts cold too (its
 * client is created inside the timed part, no socket open). rabbitbatch's own listing of the
 * vhost (observe) is inside its time.
 */
import { specSchema, type RabbitQueueBatchSpecInput } from '../src/api/schema.js';
import { executePlan } from '../src/batch/execute.js';
import { planBatch } from '../src/batch/plan.js';
import { loadEnv } from '../src/config/config.js';
import { ManagementClient } from '../src/rabbit/management-client.js';
import { observeVhost } from '../src/rabbit/observe.js';
import { amqpDeclares, levelledOps, MGMT, newConnectionOps, parallelPuts, sequentialOps, sequentialPuts, specOps, timed, withVhost } from './lib/broker.js';
import { printTable, writeResult, type Row } from './lib/report.js';
import { Toxiproxy } from './lib/toxiproxy.js';

const QUICK = process.env.QUICK === '1';
const BIG = QUICK ? 200 : 1000;
// The operator's default unless BATCH_CONCURRENCY says otherwise: the 10 ms row is about default settings.
const CONCURRENCY = Number(process.env.BATCH_CONCURRENCY ?? loadEnv({}).BATCH_CONCURRENCY);
/** Runs of each side of the 100-operation rows (BATCH_ROUNDS); each figure is their median. */
const ROUNDS = Number(process.env.BATCH_ROUNDS ?? (QUICK ? 1 : 5));
/** The concurrency each 100-operation row is also run at, for comparison: half the one measured. */
const ALT_CONCURRENCY = Math.max(1, Math.round(CONCURRENCY / 2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function hundredOps(vhost: string): RabbitQueueBatchSpecInput {
  // 10 exchanges + 60 queues + 30 bindings = 100 operations.
  const exchanges = Array.from({ length: 10 }, (_, i) => ({ name: `x${i}`, type: 'topic' as const }));
  const queues = Array.from({ length: 60 }, (_, i) => ({ name: `q${i}`, arguments: { 'x-message-ttl': 60000 } }));
  const bindings = Array.from({ length: 30 }, (_, i) => ({ source: `x${i % 10}`, destination: `q${i}`, routingKey: `k.${i}` }));
  return { vhost, exchanges, queues, bindings };
}

const queuesOnly = (vhost: string, n: number): RabbitQueueBatchSpecInput => ({ vhost, queues: Array.from({ length: n }, (_, i) => ({ name: `q${i}` })) });

/** rabbitbatch applying `input`: `warm` starts with `concurrency` sockets open, otherwise the client is created inside the timed part. */
async function rabbitbatch(base: string, input: RabbitQueueBatchSpecInput, start: 'warm' | 'cold', concurrency = CONCURRENCY): Promise<number> {
  const client = () => new ManagementClient({ url: base, username: 'guest', password: 'guest', minSize: concurrency, maxSize: Math.max(concurrency, loadEnv({}).HTTP_POOL_MAX_SIZE), warm: false });
  let api = start === 'warm' ? client() : undefined;
  try {
    if (api) await api.warm();
    return await timed(async () => {
      api ??= client();
      const spec = specSchema.parse(input);
      const plan = planBatch({ spec, observed: await observeVhost(api, spec.vhost) });
      const result = await executePlan(plan, api, { mode: spec.mode, concurrency });
      if (result.outcome !== 'Succeeded') throw new Error(`batch did not succeed: ${result.outcome} ${JSON.stringify(result.failure)}`);
    });
  } finally {
    await api?.close();
  }
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `q${i}`);
const rows: Row[] = [];
const figures: Record<string, number> = {};
const runsByKey: Record<string, Record<string, number[]>> = {};
const tox = await Toxiproxy.start();
try {
  const slow = `http://${await tox.proxy('mgmt-10ms', '127.0.0.1:15672', 10)}`;
  const shapes = [
    ['queue-only', (vh: string) => queuesOnly(vh, 100)],
    ['mixed', hundredOps],
  ] as const;
  // One unmeasured round of every path first: the first run of a code path in this process pays
  // for compiling it, which would land on whichever side happened to run first.
  for (const [, spec] of shapes) {
    await withVhost('jit', (vh) => rabbitbatch(MGMT, spec(vh), 'warm'));
    await withVhost('jit', (vh) => rabbitbatch(MGMT, spec(vh), 'cold'));
    await withVhost('jit', (vh) => sequentialOps(MGMT, specOps(specSchema.parse(spec(vh)))));
    await withVhost('jit', (vh) => newConnectionOps(MGMT, specOps(specSchema.parse(spec(vh)))));
  }
  for (const [label, base] of [['0ms', MGMT], ['10ms', slow]] as const) {
    for (const [shape, spec] of shapes) {
      const key = `${label}.${shape}`;
      // A 100-operation batch takes ~0.2 s: one run of each side is at the mercy of whatever
      // else the two cores do in that moment, so each side runs ROUNDS times, interleaved, and
      // every figure is the median of its runs.
      const runs: Record<'rbWarm' | 'seq' | 'rbCold' | 'fresh' | 'rbWarmAlt' | 'floor', number[]> = { rbWarm: [], seq: [], rbCold: [], fresh: [], rbWarmAlt: [], floor: [] };
      for (let round = 0; round < ROUNDS; round++) {
        runs.rbWarm.push(await withVhost('bw', (vh) => rabbitbatch(base, spec(vh), 'warm')));
        runs.seq.push(await withVhost('sq', (vh) => sequentialOps(base, specOps(specSchema.parse(spec(vh))))));
        runs.rbCold.push(await withVhost('bc', (vh) => rabbitbatch(base, spec(vh), 'cold')));
        runs.fresh.push(await withVhost('nc', (vh) => newConnectionOps(base, specOps(specSchema.parse(spec(vh))))));
        runs.rbWarmAlt.push(await withVhost('bwalt', (vh) => rabbitbatch(base, spec(vh), 'warm', ALT_CONCURRENCY)));
        runs.floor.push(await withVhost('fl', (vh) => levelledOps(base, specOps(specSchema.parse(spec(vh))), 100)));
      }
      const [rbWarm, seq, rbCold, fresh, rbWarmAlt, floor] = [runs.rbWarm, runs.seq, runs.rbCold, runs.fresh, runs.rbWarmAlt, runs.floor].map(median) as [number, number, number, number, number, number];
      figures[`${key}.floor`] = floor;
      Object.assign(figures, { [`${key}.rabbitbatchWarm`]: rbWarm, [`${key}.sequentialWarm`]: seq, [`${key}.rabbitbatchCold`]: rbCold, [`${key}.newConnection`]: fresh, [`${key}.rabbitbatchWarm.concurrency${ALT_CONCURRENCY}`]: rbWarmAlt });
      runsByKey[key] = runs;
      const goal = label === '10ms' ? '>= 10x sequential (aim 20x)' : undefined;
      const name = `100 ops ${shape}, ${label} RTT: rabbitbatch`;
      const of = ROUNDS > 1 ? `, median of ${ROUNDS}` : '';
      rows.push({ name: `${name} (warm, BATCH_CONCURRENCY=${CONCURRENCY}${process.env.BATCH_CONCURRENCY ? '' : ': the default'}${of})`, value: rbWarm * 1000, unit: 'ms', baseline: 'vs sequential requests (warm)', ratio: seq / rbWarm, ...(goal ? { goal, met: seq / rbWarm >= 10 } : {}) });
      rows.push({ name: `${name} (cold${of})`, value: rbCold * 1000, unit: 'ms', baseline: 'vs new connection per request (cold)', ratio: fresh / rbCold });
      rows.push({ name: `${name} (warm), BATCH_CONCURRENCY=${ALT_CONCURRENCY}${of}`, value: rbWarmAlt * 1000, unit: 'ms', baseline: 'vs sequential requests (warm)', ratio: seq / rbWarmAlt, ...(goal ? { goal, met: seq / rbWarmAlt >= 10 } : {}) });
      // The same requests sent the fastest way a client can here, blind: the broker's own time for these objects, plus one round trip per level.
      rows.push({ name: `100 ops ${shape}, ${label} RTT: a blind client at its fastest here (no reads, each dependency level at once, 100 sockets${of})`, value: floor * 1000, unit: 'ms', baseline: 'vs sequential requests (warm)', ratio: seq / floor });
    }
  }

  // The broker's cap for durable queue declarations on this machine.
  const sweep: Record<number, number> = {};
  for (const c of [10, 25, 50, 100]) sweep[c] = BIG / (await withVhost(`cap${c}`, (vh) => parallelPuts(MGMT, vh, names(BIG), c)));
  const bestC = Number(Object.entries(sweep).sort((a, b) => b[1] - a[1])[0]![0]);
  const amqpRate = BIG / (await withVhost('amqp', (vh) => amqpDeclares(vh, names(BIG), 10)));
  const cap = Math.max(sweep[bestC]!, amqpRate);
  const rbBig = BIG / (await withVhost('big', (vh) => rabbitbatch(MGMT, queuesOnly(vh, BIG), 'warm')));
  const seqBig = BIG / (await withVhost('seqbig', (vh) => sequentialPuts(MGMT, vh, names(BIG))));
  Object.assign(figures, { capHttpPerSec: sweep[bestC], capHttpBestConcurrency: bestC, capAmqpPerSec: amqpRate, rabbitbatchBigPerSec: rbBig, sequentialBigPerSec: seqBig });
  for (const [c, rate] of Object.entries(sweep)) rows.push({ name: `broker cap sweep: parallel PUT x${c}`, value: rate, unit: 'queues/s' });
  rows.push({ name: 'broker cap: AMQP assertQueue on 10 channels', value: amqpRate, unit: 'queues/s' });
  rows.push({ name: `${BIG} queues: rabbitbatch (concurrency ${CONCURRENCY})`, value: rbBig, unit: 'queues/s', baseline: 'vs broker cap', ratio: rbBig / cap, goal: '>= 0.9 of broker cap', met: rbBig / cap >= 0.9 });
  rows.push({ name: `${BIG} queues: rabbitbatch`, value: rbBig, unit: 'queues/s', baseline: 'vs sequential PUTs', ratio: rbBig / seqBig });
  const rbBigC = BIG / (await withVhost('bigc', (vh) => rabbitbatch(MGMT, queuesOnly(vh, BIG), 'warm', bestC)));
  figures.rabbitbatchBigPerSecAtBestConcurrency = rbBigC;
  rows.push({ name: `${BIG} queues: rabbitbatch, BATCH_CONCURRENCY=${bestC}`, value: rbBigC, unit: 'queues/s', baseline: 'vs broker cap', ratio: rbBigC / cap, goal: '>= 0.9 of broker cap', met: rbBigC / cap >= 0.9 });
} finally {
  tox.stop();
}

printTable('batch: rabbitbatch executor vs the usual ways', rows);
const file = writeResult('batch', {
  rows,
  figures,
  runs: runsByKey,
  notes: [
    'The broker is the limit on this 2-core machine: it runs on the same cores as the client.',
    `rabbitbatch executor concurrency ${CONCURRENCY} (BATCH_CONCURRENCY); the cap is the best of the HTTP sweep and AMQP.`,
    'Both sides of each ratio send the same objects (queue-only: 100 durable queues; mixed: 10 exchanges, 60 queues with x-message-ttl, 30 bindings) and start alike: warm vs the keep-alive baselines, cold vs a new connection per request; every pool is warmed outside the timed part when warm.',
  ],
});
console.log(`wrote ${file}`);
