/**
 * The operator's KubeConfig (src/kube/api-server-pool.ts) reuses its connection to the real
 * API server: 100 calls through several API clients and a Watch open a handful of connections,
 * where client-node's own KubeConfig opens one per call. Connections are counted twice: by the
 * pool's own counter and by undici's process-wide diagnostics channel (this file runs alone in
 * its worker process, so only its own clients are seen).
 */
import diagnostics from 'node:diagnostics_channel';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../../src/api/schema.js';
import { loadKubeConfig as loadOperatorKubeConfig } from '../../src/kube/kubeconfig.js';
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

/** 100 API calls of the kinds the operator makes: Secrets/namespaces, custom objects, Leases. */
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
    const kc = loadOperatorKubeConfig(kubeconfigPath());
    try {
      connected = 0;
      const watch = await new Watch(kc).watch(`/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/${PLURAL}`, {}, () => undefined, () => undefined);
      await hundredCalls(kc, ns.name);
      // And concurrent calls, as from parallel reconciles.
      await Promise.all(Array.from({ length: 20 }, () => kc.makeApiClient(CoreV1Api).readNamespace({ name: ns.name })));
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
