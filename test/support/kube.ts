/**
 * Test helpers for the real apiserver: the kubeconfig from globalSetup, and a namespace per test
 * (there is no controller-manager locally, so namespaces never finish terminating: cleanup strips
 * rabbitbatch finalizers and deletes every RabbitQueueBatch, the objects themselves, then the
 * namespace, and does not wait for it: an object left behind would be reconciled by every later
 * operator on the same plane).
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { GROUP, PLURAL, VERSION } from '../../src/api/schema.js';
import { deleteBatchesAndNamespace } from '../../bench/lib/cleanup.js';

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
    cleanup: () => deleteBatchesAndNamespace(kc, name),
  };
}

export const batchApi = { group: GROUP, version: VERSION, plural: PLURAL };
