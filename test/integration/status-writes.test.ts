/**
 * Counted at the API server itself: on a private control plane only this file's operator calls
 * it, so `apiserver_request_total` counts exactly its requests.
 * - Management API unreachable: the status says `BrokerUnavailable` and is written once, however
 *   often the operator retries (a status patch that changes nothing still counts there, though it
 *   leaves the resourceVersion alone).
 * - A batch on a connection Secret: while the Secret's watch is open, reconciles read it from
 *   the watch, not with a GET each.
 */
import { execFileSync } from 'node:child_process';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { startPrivatePlane, type PrivatePlane } from '../support/private-plane.js';
import { createTestVhost, getQueue, rabbitUrl } from '../support/rabbit.js';

let plane: PrivatePlane;
let ns: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;

beforeAll(async () => {
  plane = await startPrivatePlane('statuswrites');
  ns = await createTestNamespace('statuswrites', plane.kubeconfigPath);
  // A Secret whose endpoint nothing listens on.
  await loadKubeConfig(plane.kubeconfigPath)
    .makeApiClient(CoreV1Api)
    .createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'nowhere' }, stringData: { uri: 'http://127.0.0.1:1', username: 'guest', password: 'guest' } } });
  operator = await startTestOperator(ns.name, {}, { kubeconfig: plane.kubeconfigPath });
}, 180_000);

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await plane?.stop();
});

/** Requests the API server has answered whose `apiserver_request_total` line passes `match`. */
function requests(match: (line: string) => boolean): number {
  const text = execFileSync('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return text
    .split('\n')
    .filter((l) => l.startsWith('apiserver_request_total{') && match(l))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/** Status writes (PATCH or PUT of the status subresource). */
const statusWrites = () => requests((l) => l.includes('resource="rabbitqueuebatches"') && l.includes('subresource="status"') && /verb="(PATCH|APPLY|PUT|UPDATE)"/.test(l));
/** GETs of single Secrets (a watch's list is verb LIST, its stream WATCH). */
const secretGets = () => requests((l) => l.includes('resource="secrets"') && l.includes('verb="GET"'));

async function reconcileErrors(): Promise<number> {
  const text = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith('controller_runtime_reconcile_errors_total{controller="rabbitqueuebatch"}'))?.split(' ').pop() ?? 0);
}

describe('management API unreachable', () => {
  it('writes the BrokerUnavailable status once while the retries go on', async () => {
    const batches = batchClient(ns.name, plane.kubeconfigPath);
    expect(statusWrites()).toBe(0);
    await batches.create('once', { vhost: '/', rabbitmq: { connectionSecret: { name: 'nowhere' } }, queues: [{ name: 'once.q' }] });
    await batches.waitFor('once', (b) => condition(b, 'Ready')?.reason === 'BrokerUnavailable', 60_000);
    const writes = statusWrites();
    const errors = await reconcileErrors();
    // Several more failed reconciles (backoff, then the open circuit failing fast).
    const deadline = Date.now() + 60_000;
    while ((await reconcileErrors()) < errors + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await reconcileErrors(), 'the operator kept retrying').toBeGreaterThanOrEqual(errors + 3);
    expect(statusWrites(), 'status writes after the first BrokerUnavailable').toBe(writes);
    expect(writes, 'status writes until BrokerUnavailable (Progressing first, then the failure)').toBeLessThanOrEqual(3);
  });
});

describe('a batch on a connection Secret', () => {
  it('reads the Secret from its watch: edits of the batch make no GET of it', async () => {
    const vh = await createTestVhost('secretwatch');
    const core = loadKubeConfig(plane.kubeconfigPath).makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'broker' }, stringData: { uri: rabbitUrl(), username: 'guest', password: 'guest' } } });
    const batches = batchClient(ns.name, plane.kubeconfigPath);
    const spec = (n: number) => ({ vhost: vh.name, rabbitmq: { connectionSecret: { name: 'broker' } }, deletionPolicy: 'Delete' as const, queues: Array.from({ length: n }, (_, i) => ({ name: `sw.q${i}` })) });
    try {
      await batches.create('watched', spec(1));
      await batches.waitFor('watched', (b) => condition(b, 'Ready')?.status === 'True', 60_000);
      // One edit first: its reconcile finds the Secret's watch open whatever the first one found.
      await batches.setSpec('watched', spec(2));
      await batches.waitFor('watched', (b) => condition(b, 'Ready')?.status === 'True' && b.status?.applied?.queues.length === 2, 60_000);
      const gets = secretGets();
      for (let n = 3; n <= 5; n++) {
        await batches.setSpec('watched', spec(n));
        await batches.waitFor('watched', (b) => condition(b, 'Ready')?.status === 'True' && b.status?.applied?.queues.length === n, 60_000);
      }
      expect(await getQueue(vh.name, 'sw.q4'), 'the last edit reached RabbitMQ').toBeDefined();
      expect(secretGets(), 'GETs of Secrets during three reconciles of a batch on one').toBe(gets);
    } finally {
      await batches.delete('watched');
      await batches.gone('watched');
      await vh.cleanup();
    }
  });
});
