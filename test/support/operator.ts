/**
 * Runs the real operator in the test process, watching only the test's namespace (so test files
 * running in parallel never reconcile each other's resources), with logs kept in memory for
 * assertions (e.g. that no secret is ever logged).
 */
import { Writable } from 'node:stream';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadEnv, loadOperatorConfig } from '../../src/config/config.js';
import { startManager, type Operator } from '../../src/operator/manager.js';
import type { RabbitQueueBatch, RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { batchApi, kubeconfigPath, loadKubeConfig } from './kube.js';
import { eventually } from './wait.js';

export interface TestOperator extends Operator {
  logs: string[];
}

/** An in-process operator watching `namespace` of the shared plane, or of the cluster of `kubeconfig`. */
export async function startTestOperator(namespace: string, env: Record<string, string> = {}, flags: { sharding?: boolean; kubeconfig?: string } = {}): Promise<TestOperator> {
  const logs: string[] = [];
  const { kubeconfig = kubeconfigPath(), ...rest } = flags;
  const config = loadOperatorConfig(
    { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig, logLevel: 'debug', ...rest },
    loadEnv({ ...process.env, WATCH_NAMESPACE: namespace, HTTP_POOL_MIN_SIZE: '2', ...env }),
  );
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const operator = await startManager(config, { logDestination: destination, onLostLeadership: () => undefined });
  // Ready: synced, RabbitMQ answers, and the event stream is subscribed (its first full re-list done).
  await eventually(async () => {
    const res = await fetch(`http://${operator.probeAddress}/readyz`);
    if (res.status !== 200) throw new Error(`operator not ready: ${await res.text()}`);
  });
  return Object.assign(operator, { logs });
}

/** RabbitQueueBatch calls in `namespace`, on the shared plane or on the cluster of `kubeconfig`. */
export function batchClient(namespace: string, kubeconfig?: string) {
  const api = loadKubeConfig(kubeconfig).makeApiClient(CustomObjectsApi);
  return {
    create: (name: string, spec: RabbitQueueBatchSpecInput) =>
      api.createNamespacedCustomObject({ ...batchApi, namespace, body: { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name }, spec } }),
    get: async (name: string) => (await api.getNamespacedCustomObject({ ...batchApi, namespace, name })) as RabbitQueueBatch,
    /** Replaces the spec (a merge patch would merge lists by key). */
    setSpec: async (name: string, spec: RabbitQueueBatchSpecInput) =>
      api.patchNamespacedCustomObject({ ...batchApi, namespace, name, body: [{ op: 'replace', path: '/spec', value: spec }] }),
    delete: (name: string) => api.deleteNamespacedCustomObject({ ...batchApi, namespace, name }),
    /** Waits until the status describes the current generation and `check` passes. */
    waitFor: (name: string, check: (b: RabbitQueueBatch) => boolean | void, timeoutMs = 30_000) =>
      eventually(
        async () => {
          const b = (await api.getNamespacedCustomObject({ ...batchApi, namespace, name })) as RabbitQueueBatch;
          if (b.status?.observedGeneration !== b.metadata.generation) throw new Error(`status of ${name} describes generation ${b.status?.observedGeneration}, not ${b.metadata.generation}`);
          if (check(b) === false) throw new Error(`status of ${name} not as expected: ${JSON.stringify(b.status)}`);
          return b;
        },
        { timeoutMs },
      ),
    gone: (name: string, timeoutMs = 20_000) =>
      eventually(
        async () => {
          const exists = await api.getNamespacedCustomObject({ ...batchApi, namespace, name }).then(() => true, () => false);
          if (exists) throw new Error(`${name} still exists`);
        },
        { timeoutMs },
      ),
  };
}

export const condition = (b: RabbitQueueBatch, type: string) => b.status?.conditions?.find((c) => c.type === type);
export const item = (b: RabbitQueueBatch, resource: string) => b.status?.items?.find((i) => i.resource === resource);
