/**
 * Test helpers for the real apiserver: the kubeconfig from globalSetup, and a namespace per test
 * (there is no controller-manager locally, so namespaces never finish terminating: cleanup strips
 * rabbitbatch finalizers, deletes, and does not wait).
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../../src/api/schema.js';

export function kubeconfigPath(): string {
  return inject('kubeconfigPath');
}

/** The shared plane's kubeconfig, or another cluster's (a private plane) when `path` is given. */
export function loadKubeConfig(path = kubeconfigPath()): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export async function createTestNamespace(prefix: string, kubeconfig?: string): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const kc = loadKubeConfig(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const name = `t-${prefix}-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'rabbitbatch.io/test': 'true' } } } });
  return {
    name,
    cleanup: async () => {
      const objects = kc.makeApiClient(CustomObjectsApi);
      const list = (await objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: name }).catch(() => ({ items: [] }))) as { items: RabbitQueueBatch[] };
      for (const b of list.items) {
        await objects
          .patchNamespacedCustomObject(
            { group: GROUP, version: VERSION, plural: PLURAL, namespace: name, name: b.metadata.name, body: [{ op: 'remove', path: '/metadata/finalizers' }] },
          )
          .catch(() => undefined);
        // No garbage collector on the test plane: the objects go too, not only the namespace.
        await objects.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: name, name: b.metadata.name }).catch(() => undefined);
      }
      await core.deleteNamespace({ name }).catch(() => undefined);
    },
  };
}

export const batchApi = { group: GROUP, version: VERSION, plural: PLURAL };
