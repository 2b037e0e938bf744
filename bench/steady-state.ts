/**
 * `steady-state`: the operator with R resources × Q queues all Ready. Measures the management
 * API requests (`purpose="work"`; the pool's keep-warm requests are reported apart) of a full
 * re-verification of every resource with a warm cache (goal 0, and only met when at least R
 * reconciles really ran in that window), the cache hit rate, HTTP socket reuse, and drift-heal
 * latency (a queue deleted by hand until it exists again) over 20 deletions.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION } from '../src/api/schema.js';
import { loadEnv, loadOperatorConfig } from '../src/config/config.js';
import { startManager } from '../src/operator/manager.js';
import { AUTH, MGMT, withVhost } from './lib/broker.js';
import { deleteBatchesAndNamespace } from './lib/cleanup.js';
import { percentile, printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const R = QUICK ? 10 : 100;
const Q = QUICK ? 5 : 10;
const HEALS = 20;
const KUBECONFIG = new URL('../.local/kubeconfig', import.meta.url).pathname;

const kc = new KubeConfig();
kc.loadFromFile(KUBECONFIG);
const ns = `bench-steady-${randomBytes(3).toString('hex')}`;
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
const objects = kc.makeApiClient(CustomObjectsApi);

const sum = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const queueExists = async (vhost: string, name: string) => (await fetch(`${MGMT}/api/queues/${encodeURIComponent(vhost)}/${name}?columns=name`, { headers: { authorization: AUTH } })).status === 200;

const figures = await withVhost('steady', async (vhost) => {
  const config = loadOperatorConfig(
    { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig: KUBECONFIG, logLevel: 'error' },
    loadEnv({ ...process.env, WATCH_NAMESPACE: ns }),
  );
  const operator = await startManager(config, { logDestination: new Writable({ write: (_c, _e, done) => done() }), onLostLeadership: () => undefined });
  const metrics = async () => (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
  try {
    for (let r = 0; r < R; r++) {
      const spec = { vhost, queues: Array.from({ length: Q }, (_, q) => ({ name: `s${r}.q${q}` })) };
      await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: `s${r}` }, spec } });
    }
    for (;;) {
      const list = (await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      if (list.items.every((b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))) break;
      await sleep(250);
    }
    await sleep(2000); // let the events of the creation settle
    const before = await metrics();
    const reconcileCount = (text: string) => sum(text, /^controller_runtime_reconcile_total\{controller="rabbitqueuebatch"/);
    const work = (text: string) => sum(text, /^rabbitbatch_http_requests_total\{.*purpose="work"/);
    const keepalive = (text: string) => sum(text, /^rabbitbatch_http_requests_total\{.*purpose="keepalive"/);
    for (const b of operator.controller.store.list()) operator.controller.enqueue(`${b.metadata.namespace}/${b.metadata.name}`);
    // Until every resource was reconciled again (or a deadline), then a moment for stragglers.
    const deadline = Date.now() + (QUICK ? 15_000 : 60_000);
    let after = await metrics();
    while (reconcileCount(after) - reconcileCount(before) < R && Date.now() < deadline) {
      await sleep(100);
      after = await metrics();
    }
    await sleep(1000);
    after = await metrics();
    const requestsPerResync = work(after) - work(before);
    const keepaliveInResync = keepalive(after) - keepalive(before);
    const reconciles = reconcileCount(after) - reconcileCount(before);

    const heals: number[] = [];
    for (let i = 0; i < HEALS; i++) {
      const name = `s${i % R}.q${i % Q}`;
      await fetch(`${MGMT}/api/queues/${encodeURIComponent(vhost)}/${name}`, { method: 'DELETE', headers: { authorization: AUTH } });
      const t0 = performance.now();
      while (!(await queueExists(vhost, name))) await sleep(10);
      heals.push(performance.now() - t0);
    }
    const text = await metrics();
    const hits = sum(text, /^rabbitbatch_cache_hits_total /);
    const misses = sum(text, /^rabbitbatch_cache_misses_total /);
    const requests = sum(text, /^rabbitbatch_http_requests_total\{/); // keep-alive included: it is socket reuse
    const sockets = sum(text, /^rabbitbatch_http_pool_connections_created_total\{/);
    return { resources: R, queuesPerResource: Q, requestsPerResync, keepaliveInResync, reconcilesInResync: reconciles, cacheHitRate: hits / Math.max(1, hits + misses), httpReuse: 1 - sockets / Math.max(1, requests), healP50Ms: percentile(heals, 50), healP95Ms: percentile(heals, 95), heals };
  } finally {
    await operator.stop();
    await deleteBatchesAndNamespace(kc, ns);
  }
});

const rows: Row[] = [
  { name: `full re-verification of ${R} resources × ${Q} queues, warm cache: requests (purpose="work")`, value: figures.requestsPerResync, unit: 'requests', goal: `0, with >= ${R} reconciles`, met: figures.requestsPerResync === 0 && figures.reconcilesInResync >= R },
  { name: 'reconciles in that re-verification', value: figures.reconcilesInResync, unit: 'reconciles', goal: `>= ${R}`, met: figures.reconcilesInResync >= R },
  { name: 'keep-warm requests in the same window (purpose="keepalive", not work)', value: figures.keepaliveInResync, unit: 'requests' },
  { name: 'cache hit rate (whole run)', value: figures.cacheHitRate, unit: '', goal: '>= 0.95', met: figures.cacheHitRate >= 0.95 },
  { name: 'HTTP socket reuse (whole run)', value: figures.httpReuse, unit: '', goal: '> 0.99', met: figures.httpReuse > 0.99 },
  { name: `drift heal p50 (${HEALS} hand deletions)`, value: figures.healP50Ms, unit: 'ms' },
  { name: `drift heal p95 (${HEALS} hand deletions)`, value: figures.healP95Ms, unit: 'ms', goal: '<= 1000 ms', met: figures.healP95Ms <= 1000 },
];
printTable('steady-state: what a steady cluster costs RabbitMQ', rows);
console.log(`wrote ${writeResult('steady-state', { rows, figures })}`);
// Zero requests mean nothing unless the re-verification ran: without the reconciles the figure is void.
if (figures.reconcilesInResync < R) {
  console.error(`steady-state: only ${figures.reconcilesInResync} of ${R} resources were reconciled in the re-verification window`);
  process.exit(1);
}
process.exit(0);
