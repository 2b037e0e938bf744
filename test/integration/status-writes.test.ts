/**
 * Management API unreachable: the status says `BrokerUnavailable` and is written once, however
 * often the operator retries. Counted at the API server itself: on a private control plane only
 * this file's operator writes, so `apiserver_request_total{resource="rabbitqueuebatches",
 * subresource="status"}` counts exactly its status writes (a patch that changes nothing still
 * counts there, though it leaves the resourceVersion alone).
 */
import { execFileSync } from 'node:child_process';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { startPrivatePlane, type PrivatePlane } from '../support/private-plane.js';

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

/** Status writes (PATCH or PUT of the status subresource) the API server has answered. */
function statusWrites(): number {
  const text = execFileSync('kubectl', ['--kubeconfig', plane.kubeconfigPath, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return text
    .split('\n')
    .filter((l) => l.startsWith('apiserver_request_total{') && l.includes('resource="rabbitqueuebatches"') && l.includes('subresource="status"') && /verb="(PATCH|APPLY|PUT|UPDATE)"/.test(l))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

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
