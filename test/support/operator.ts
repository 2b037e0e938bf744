/**
 * The operator of the integration tests, watching only the test's namespace (so test files running
 * in parallel never reconcile each other's resources), with its log lines kept for assertions
 * (e.g. that no secret is ever logged).
 *
 * Where it runs: in the test process by default (`make test`, the local control plane); as a Pod
 * of the image on the real node with RABBITBATCH_OPERATOR=pod (`make e2e` against
 * .local/cluster/kubeconfig, see operator-pod.ts). A test that needs the process itself (a private
 * control plane, a Redis on a loopback port it stops) says why with `inProcess`, and keeps it.
 */
import { Writable } from 'node:stream';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { loadEnv, loadOperatorConfig } from '../../src/config/config.js';
import { startManager } from '../../src/operator/manager.js';
import type { RabbitQueueBatch, RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { batchApi, kubeconfigPath, loadKubeConfig } from './kube.js';
import { forPod, startOperatorPod } from './operator-pod.js';
import { eventually } from './wait.js';

export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

export interface TestOperator {
  logs: string[];
  metricsAddress: string | undefined;
  probeAddress: string | undefined;
  /** The samples of one metric family, read from /metrics as Prometheus would. */
  metric(name: string): Promise<MetricSample[]>;
  stop(): Promise<void>;
}

export interface TestOperatorFlags {
  sharding?: boolean;
  /** Another cluster's kubeconfig (a private plane): the operator then runs in the test process. */
  kubeconfig?: string;
  /** Why this test needs the operator in its own process even when the others run as Pods. */
  inProcess?: string;
}

export const operatorInPods = () => process.env.RABBITBATCH_OPERATOR === 'pod';

/** The broker's management URL as the operator reaches it, for the Secrets tests create. */
export const operatorRabbitUrl = (url: string) => (operatorInPods() ? forPod(url) : url);

export async function startTestOperator(namespace: string, env: Record<string, string> = {}, flags: TestOperatorFlags = {}): Promise<TestOperator> {
  const { kubeconfig, inProcess, sharding } = flags;
  if (operatorInPods() && !kubeconfig && !inProcess) {
    const pod = await startOperatorPod(namespace, env, { ...(sharding ? { sharding } : {}) });
    return { ...pod, metric: (name) => scrape(pod.metricsAddress, name) };
  }
  const logs: string[] = [];
  const config = loadOperatorConfig(
    { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: false, kubeconfig: kubeconfig ?? kubeconfigPath(), logLevel: 'debug', ...(sharding ? { sharding } : {}) },
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
  return {
    logs,
    metricsAddress: operator.metricsAddress,
    probeAddress: operator.probeAddress,
    metric: async (name) => ((await operator.registry.getSingleMetric(name)?.get())?.values ?? []).map((v) => ({ labels: Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])), value: v.value })),
    stop: () => operator.stop(),
  };
}

/** One metric family from a Prometheus text exposition. */
async function scrape(address: string, name: string): Promise<MetricSample[]> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ labels, value: Number(m[3]) });
  }
  return samples;
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
