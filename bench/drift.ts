/**
 * `drift`: how long a queue deleted by hand stays missing, for batches on a connection Secret (the
 * setup users have), in a 10-item and a 1,000-item batch side by side on one operator. Each heal
 * is timed from the DELETE's answer until the queue exists again (polled every 10 ms); the
 * periodic re-list is an hour away, so only the broker's event stream can do it.
 *
 * The 10-item batch is the same run's baseline: the ratio says what a large batch costs on top.
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
const HEALS = QUICK ? 5 : 20;
const SIZES = [10, QUICK ? 200 : 1000] as const;
const KUBECONFIG = new URL('../.local/kubeconfig', import.meta.url).pathname;

const kc = new KubeConfig();
kc.loadFromFile(KUBECONFIG);
const ns = `bench-drift-${randomBytes(3).toString('hex')}`;
const core = kc.makeApiClient(CoreV1Api);
await core.createNamespace({ body: { metadata: { name: ns } } });
// Another host name for the machine's broker: its own client, pool and cache partition key.
const secretUri = MGMT.replace('127.0.0.1', 'localhost');
await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'rabbit' }, stringData: { uri: secretUri, username: 'guest', password: 'guest' } } });
const objects = kc.makeApiClient(CustomObjectsApi);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const v = encodeURIComponent;
const queueExists = async (vhost: string, name: string) => (await fetch(`${MGMT}/api/queues/${v(vhost)}/${v(name)}?columns=name`, { headers: { authorization: AUTH } })).status === 200;

const figures = await withVhost('drift', async (vhost) => {
  const config = loadOperatorConfig(
    { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig: KUBECONFIG, logLevel: process.env.DRIFT_LOG ? 'debug' : 'error' },
    loadEnv({ ...process.env, WATCH_NAMESPACE: ns, RESYNC_INTERVAL: '3600' }),
  );
  const operator = await startManager(config, { logDestination: process.env.DRIFT_LOG ? (await import('node:fs')).createWriteStream(process.env.DRIFT_LOG) : new Writable({ write: (_c, _e, done) => done() }), onLostLeadership: () => undefined });
  try {
    for (const size of SIZES) {
      const spec = { vhost, rabbitmq: { connectionSecret: { name: 'rabbit' } }, queues: Array.from({ length: size }, (_, q) => ({ name: `d${size}.q${q}` })) };
      await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: `d${size}` }, spec } });
    }
    for (;;) {
      const list = (await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns })) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      if (list.items.length === SIZES.length && list.items.every((b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))) break;
      await sleep(250);
    }
    await sleep(2000); // let the events of the creation settle
    const heals: Record<number, number[]> = {};
    for (const size of SIZES) {
      heals[size] = [];
      for (let i = 0; i < HEALS; i++) {
        const name = `d${size}.q${(i * 37) % size}`;
        await fetch(`${MGMT}/api/queues/${v(vhost)}/${v(name)}`, { method: 'DELETE', headers: { authorization: AUTH } });
        const t0 = performance.now();
        const deadline = Date.now() + 60_000;
        while (!(await queueExists(vhost, name))) {
          if (Date.now() > deadline) throw new Error(`${name} not back within 60 s`);
          await sleep(10);
        }
        heals[size]!.push(performance.now() - t0);
        await sleep(300); // the batch's status write after the repair, so heals do not overlap
      }
    }
    return { sizes: SIZES, heals, p50: Object.fromEntries(SIZES.map((s) => [s, percentile(heals[s]!, 50)])), p95: Object.fromEntries(SIZES.map((s) => [s, percentile(heals[s]!, 95)])) };
  } finally {
    await operator.stop();
    await deleteBatchesAndNamespace(kc, ns);
  }
});

const [small, large] = SIZES;
const rows: Row[] = [
  { name: `drift heal p50, ${small}-item batch on a connection Secret`, value: figures.p50[small]!, unit: 'ms' },
  { name: `drift heal p95, ${small}-item batch on a connection Secret`, value: figures.p95[small]!, unit: 'ms', goal: '<= 1000 ms', met: figures.p95[small]! <= 1000 },
  { name: `drift heal p50, ${large}-item batch on a connection Secret`, value: figures.p50[large]!, unit: 'ms' },
  {
    name: `drift heal p95, ${large}-item batch on a connection Secret`,
    value: figures.p95[large]!,
    unit: 'ms',
    baseline: `vs the ${small}-item batch`,
    ratio: figures.p95[large]! / Math.max(1, figures.p95[small]!),
    goal: '<= 1000 ms',
    met: figures.p95[large]! <= 1000,
  },
];
printTable(`drift: a queue deleted by hand until it is back (${HEALS} deletions per batch)`, rows);
console.log(`wrote ${writeResult('drift', { rows, figures })}`);
process.exit(0);
