/**
 * `batch`: a 100-operation batch and a 1,000-queue batch through rabbitbatch's planner and
 * executor, against (a) sequential PUTs, (b) a new connection per PUT (the official operator's
 * way) and (c) the broker's cap (raw parallel PUTs at the best concurrency of a sweep, and AMQP
 * declarations on 10 channels), with 0 ms and 10 ms of injected round trip (toxiproxy).
 */
import { specSchema, type RabbitQueueBatchSpecInput } from '../src/api/schema.js';
import { executePlan } from '../src/batch/execute.js';
import { planBatch } from '../src/batch/plan.js';
import { ManagementClient } from '../src/rabbit/management-client.js';
import { observeVhost } from '../src/rabbit/observe.js';
import { amqpDeclares, MGMT, newConnectionPuts, parallelPuts, sequentialPuts, timed, withVhost } from './lib/broker.js';
import { printTable, writeResult, type Row } from './lib/report.js';
import { Toxiproxy } from './lib/toxiproxy.js';

const QUICK = process.env.QUICK === '1';
const BIG = QUICK ? 200 : 1000;
const CONCURRENCY = Number(process.env.BATCH_CONCURRENCY ?? 10);

function hundredOps(vhost: string): RabbitQueueBatchSpecInput {
  // 10 exchanges + 60 queues + 30 bindings = 100 operations.
  const exchanges = Array.from({ length: 10 }, (_, i) => ({ name: `x${i}`, type: 'topic' as const }));
  const queues = Array.from({ length: 60 }, (_, i) => ({ name: `q${i}`, arguments: { 'x-message-ttl': 60000 } }));
  const bindings = Array.from({ length: 30 }, (_, i) => ({ source: `x${i % 10}`, destination: `q${i}`, routingKey: `k.${i}` }));
  return { vhost, exchanges, queues, bindings };
}

const queuesOnly = (vhost: string, n: number): RabbitQueueBatchSpecInput => ({ vhost, queues: Array.from({ length: n }, (_, i) => ({ name: `q${i}` })) });

async function rabbitbatch(base: string, input: RabbitQueueBatchSpecInput, concurrency = CONCURRENCY): Promise<number> {
  // A warm pool of `concurrency` sockets: the operator's steady state after its first batch.
  const api = new ManagementClient({ url: base, username: 'guest', password: 'guest', minSize: concurrency, maxSize: Math.max(concurrency, 50) });
  try {
    await api.warm();
    return await timed(async () => {
      const spec = specSchema.parse(input);
      const plan = planBatch({ spec, observed: await observeVhost(api, spec.vhost) });
      const result = await executePlan(plan, api, { mode: spec.mode, concurrency });
      if (result.outcome !== 'Succeeded') throw new Error(`batch did not succeed: ${result.outcome} ${JSON.stringify(result.failure)}`);
    });
  } finally {
    await api.close();
  }
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `q${i}`);
const rows: Row[] = [];
const figures: Record<string, number> = {};
const tox = await Toxiproxy.start();
try {
  const slow = `http://${await tox.proxy('mgmt-10ms', '127.0.0.1:15672', 10)}`;
  for (const [label, base] of [['0ms', MGMT], ['10ms', slow]] as const) {
    const rb100 = await withVhost('b100', (vh) => rabbitbatch(base, hundredOps(vh)));
    const seq100 = await withVhost('s100', (vh) => sequentialPuts(base, vh, names(100)));
    const new100 = await withVhost('n100', (vh) => newConnectionPuts(base, vh, names(100)));
    figures[`${label}.rabbitbatch100`] = rb100;
    figures[`${label}.sequential100`] = seq100;
    figures[`${label}.newConnection100`] = new100;
    const goal = label === '10ms' ? '>= 10x sequential' : undefined;
    rows.push({ name: `100 ops, ${label} RTT: rabbitbatch`, value: rb100 * 1000, unit: 'ms', baseline: 'vs sequential PUTs', ratio: seq100 / rb100, ...(goal ? { goal, met: seq100 / rb100 >= 10 } : {}) });
    rows.push({ name: `100 ops, ${label} RTT: rabbitbatch`, value: rb100 * 1000, unit: 'ms', baseline: 'vs new connection per PUT', ratio: new100 / rb100 });
    const rb100c25 = await withVhost('b100c25', (vh) => rabbitbatch(base, hundredOps(vh), 25));
    figures[`${label}.rabbitbatch100.concurrency25`] = rb100c25;
    rows.push({ name: `100 ops, ${label} RTT: rabbitbatch, BATCH_CONCURRENCY=25`, value: rb100c25 * 1000, unit: 'ms', baseline: 'vs sequential PUTs', ratio: seq100 / rb100c25, ...(goal ? { goal, met: seq100 / rb100c25 >= 10 } : {}) });
  }

  // The broker's cap for durable queue declarations on this machine.
  const sweep: Record<number, number> = {};
  for (const c of [10, 25, 50, 100]) sweep[c] = BIG / (await withVhost(`cap${c}`, (vh) => parallelPuts(MGMT, vh, names(BIG), c)));
  const bestC = Number(Object.entries(sweep).sort((a, b) => b[1] - a[1])[0]![0]);
  const amqpRate = BIG / (await withVhost('amqp', (vh) => amqpDeclares(vh, names(BIG), 10)));
  const cap = Math.max(sweep[bestC]!, amqpRate);
  const rbBig = BIG / (await withVhost('big', (vh) => rabbitbatch(MGMT, queuesOnly(vh, BIG))));
  const seqBig = BIG / (await withVhost('seqbig', (vh) => sequentialPuts(MGMT, vh, names(BIG))));
  Object.assign(figures, { capHttpPerSec: sweep[bestC], capHttpBestConcurrency: bestC, capAmqpPerSec: amqpRate, rabbitbatchBigPerSec: rbBig, sequentialBigPerSec: seqBig });
  for (const [c, rate] of Object.entries(sweep)) rows.push({ name: `broker cap sweep: parallel PUT x${c}`, value: rate, unit: 'queues/s' });
  rows.push({ name: 'broker cap: AMQP assertQueue on 10 channels', value: amqpRate, unit: 'queues/s' });
  rows.push({ name: `${BIG} queues: rabbitbatch (concurrency ${CONCURRENCY})`, value: rbBig, unit: 'queues/s', baseline: 'vs broker cap', ratio: rbBig / cap, goal: '>= 0.9 of broker cap', met: rbBig / cap >= 0.9 });
  rows.push({ name: `${BIG} queues: rabbitbatch`, value: rbBig, unit: 'queues/s', baseline: 'vs sequential PUTs', ratio: rbBig / seqBig });
  const rbBigC = BIG / (await withVhost('bigc', (vh) => rabbitbatch(MGMT, queuesOnly(vh, BIG), bestC)));
  figures.rabbitbatchBigPerSecAtBestConcurrency = rbBigC;
  rows.push({ name: `${BIG} queues: rabbitbatch, BATCH_CONCURRENCY=${bestC}`, value: rbBigC, unit: 'queues/s', baseline: 'vs broker cap', ratio: rbBigC / cap, goal: '>= 0.9 of broker cap', met: rbBigC / cap >= 0.9 });
} finally {
  tox.stop();
}

printTable('batch: rabbitbatch executor vs the usual ways', rows);
const file = writeResult('batch', {
  rows,
  figures,
  notes: [
    'The broker is the limit on this 2-core machine: it runs on the same cores as the client.',
    `rabbitbatch executor concurrency ${CONCURRENCY} (BATCH_CONCURRENCY); the cap is the best of the HTTP sweep and AMQP.`,
  ],
});
console.log(`wrote ${file}`);
