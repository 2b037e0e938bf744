/**
 * `restart`: R resources × Q queues already in place; a new operator starts cold (empty store,
 * empty cache); time until every resource has been re-verified against RabbitMQ, and the
 * management requests that took (`purpose="work"`: the pool's keep-warm requests are not
 * counted). Goal ≤ 10 s for 100 × 100. The baseline is measured in the same run on the same
 * queues: every queue re-declared blindly, one PUT each (`blindRedeclare`).
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../src/api/schema.js';
import { loadEnv, loadOperatorConfig } from '../src/config/config.js';
import { startManager } from '../src/operator/manager.js';
import { blindRedeclare, withVhost } from './lib/broker.js';
import { deleteBatchesAndNamespace } from './lib/cleanup.js';
import { printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const R = QUICK ? 10 : 100;
const Q = QUICK ? 10 : 100;
const KUBECONFIG = new URL('../.local/kubeconfig', import.meta.url).pathname;
const kc = new KubeConfig();
kc.loadFromFile(KUBECONFIG);
const objects = kc.makeApiClient(CustomObjectsApi);
const ns = `bench-restart-${randomBytes(3).toString('hex')}`;
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);

async function operator() {
  const config = loadOperatorConfig(
    { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig: KUBECONFIG, logLevel: 'error' },
    loadEnv({ ...process.env, WATCH_NAMESPACE: ns, BATCH_CONCURRENCY: '25' }),
  );
  const op = await startManager(config, { logDestination: new Writable({ write: (_c, _e, done) => done() }), onLostLeadership: () => undefined });
  return { op, metrics: async () => (await fetch(`http://${op.metricsAddress}/metrics`)).text() };
}

/** Lists the batches, riding out a busy or restarting API server (429, 5xx) for a while. */
async function listBatches(): Promise<{ items: { status?: { conditions?: { type: string; status: string }[] } }[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(1000);
    }
  }
}

const figures = await withVhost('restart', async (vhost) => {
  const first = await operator();
  try {
    for (let r = 0; r < R; r++) {
      const spec = { vhost, queues: Array.from({ length: Q }, (_, q) => ({ name: `r${r}.q${q}` })) };
      await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: `r${r}` }, spec } });
    }
    for (;;) {
      const list = await listBatches();
      if (list.items.length === R && list.items.every((b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))) break;
      await sleep(500);
    }
  } finally {
    await first.op.stop();
  }
  // Cold start: a new operator with an empty store and an empty cache.
  const started = performance.now();
  const second = await operator();
  let running = true;
  const stopSecond = async () => {
    if (running) await second.op.stop();
    running = false;
  };
  try {
    let reconciled = 0;
    let text = '';
    while (reconciled < R) {
      text = await second.metrics();
      reconciled = sum(text, /^controller_runtime_reconcile_total\{controller="rabbitqueuebatch",result="(success|requeue_after)"\}/);
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    const requests = sum(text, /^rabbitbatch_http_requests_total\{.*purpose="work"/);
    const keepalive = sum(text, /^rabbitbatch_http_requests_total\{.*purpose="keepalive"/);
    const creates = sum(text, /^rabbitbatch_batch_operations_total\{/);
    await stopSecond();
    // The baseline, on the same queues: what re-declaring everything blindly costs.
    const blind = await blindRedeclare(vhost, Array.from({ length: R * Q }, (_, i) => `r${Math.floor(i / Q)}.q${i % Q}`));
    return { resources: R, queuesPerResource: Q, reverifySeconds: seconds, requests, keepaliveRequests: keepalive, operations: creates, blind };
  } finally {
    await stopSecond();
  }
}).finally(() => deleteBatchesAndNamespace(kc, ns));

const rows: Row[] = [
  { name: `cold start, ${R} resources × ${Q} queues re-verified`, value: figures.reverifySeconds, unit: 's', goal: '<= 10 s', met: figures.reverifySeconds <= 10 },
  { name: `blind re-declare of all ${R * Q} queues (baseline, PUT x${figures.blind.concurrency} keep-alive, same run)`, value: figures.blind.seconds, unit: 's' },
  { name: 're-verification time', value: figures.reverifySeconds, unit: 's', baseline: 'vs blind re-declare (same run)', ratio: figures.blind.seconds / figures.reverifySeconds },
  { name: 'management requests for it (purpose="work")', value: figures.requests, unit: 'requests', baseline: `vs ${figures.blind.requests} requests of the blind re-declare`, ratio: figures.blind.requests / Math.max(1, figures.requests) },
  { name: 'objects re-declared', value: figures.operations, unit: 'operations' },
];
printTable('restart: re-verifying everything after a cold start', rows);
console.log(`wrote ${writeResult('restart', { rows, figures })}`);
process.exit(0);
