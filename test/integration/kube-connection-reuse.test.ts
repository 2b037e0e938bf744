/**
 * The operator's KubeConfig (src/kube/light-kubeconfig.ts, loaded by src/kube/kubeconfig.ts)
 * reuses its connection to the real API server: 100 calls of the kinds the operator makes and a
 * watch open a handful of connections, where client-node's own KubeConfig opens one per call.
 * Connections are counted twice: by the pool's own counter and by undici's process-wide
 * diagnostics channel (this file runs alone in its worker process, so only its own clients are seen).
 */
import diagnostics from 'node:diagnostics_channel';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../../src/api/schema.js';
import { kubeCall } from '../../src/kube/api-request.js';
import { leaseApi } from '../../src/kube/core-apis.js';
import { loadKubeConfig as loadOperatorKubeConfig } from '../../src/kube/kubeconfig.js';
import { LightKubeConfig } from '../../src/kube/light-kubeconfig.js';
import { watchStream } from '../../src/kube/watch-stream.js';
import { createTestNamespace, kubeconfigPath } from '../support/kube.js';

let connected = 0;
const countConnection = () => connected++;
let ns: { name: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  ns = await createTestNamespace('kubeconn');
  diagnostics.subscribe('undici:client:connected', countConnection);
});
afterAll(async () => {
  diagnostics.unsubscribe('undici:client:connected', countConnection);
  await ns.cleanup();
});

/** 100 API calls through client-node's generated clients: namespaces, Secrets, custom objects, Leases. */
async function hundredCalls(kc: KubeConfig, namespace: string): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  const leases = kc.makeApiClient(CoordinationV1Api);
  for (let i = 0; i < 25; i++) {
    await core.readNamespace({ name: namespace });
    await core.listNamespacedSecret({ namespace });
    await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace });
    await leases.listNamespacedLease({ namespace });
  }
}

describe('connections to the API server', () => {
  it('100 calls and a watch through the operator KubeConfig open at most a handful of connections', async () => {
    const kc = await loadOperatorKubeConfig(kubeconfigPath());
    // The plane's kubeconfig (client certificates) needs nothing of client-node.
    expect(kc).toBeInstanceOf(LightKubeConfig);
    try {
      connected = 0;
      const watch = await watchStream(kc, `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/${PLURAL}`, {}, () => undefined, () => undefined);
      const leases = leaseApi(kc);
      for (let i = 0; i < 25; i++) {
        await kubeCall(kc, 'GET', `/api/v1/namespaces/${ns.name}`);
        await kubeCall(kc, 'GET', `/api/v1/namespaces/${ns.name}/secrets`);
        await kubeCall(kc, 'GET', `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/${PLURAL}`);
        await leases.listNamespacedLease({ namespace: ns.name });
      }
      // And concurrent calls, as from parallel reconciles.
      await Promise.all(Array.from({ length: 20 }, () => kubeCall(kc, 'GET', `/api/v1/namespaces/${ns.name}`)));
      watch.abort();
      expect(kc.connectionsOpened).toBeGreaterThanOrEqual(1);
      expect(kc.connectionsOpened).toBeLessThanOrEqual(5);
      expect(connected).toBe(kc.connectionsOpened);
    } finally {
      await kc.close();
    }
  });

  it("client-node's own KubeConfig opens one connection per call (why the pool exists)", async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath());
    connected = 0;
    await hundredCalls(kc, ns.name);
    // When a client-node upgrade makes this fail, it reuses connections itself: the pool can go.
    expect(connected).toBeGreaterThanOrEqual(100);
  });
});
