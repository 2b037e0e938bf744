/**
 * The benchmarks' 1,000 batches × 10 queues, applied by the operator Pod of deploy/default at the
 * Deployment's own memory limit: every batch becomes Ready, the container is never OOM-killed or
 * restarted. Peak memory (the container's cgroup and the Node process's VmHWM) and the time from
 * the first create to all Ready are printed and written to bench/results/cluster-scale.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchApi, createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { kubectl, kubectlJson } from '../support/kubectl.js';
import { condition } from '../support/operator.js';
import { createTestVhost, listQueueNames, mgmt } from '../support/rabbit.js';
import type { RabbitQueueBatch } from '../../src/api/schema.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SYSTEM = 'rabbitbatch-system';
const SELECTOR = 'app.kubernetes.io/name=rabbitbatch,app.kubernetes.io/component=operator';
const RESOURCES = Number(process.env.CLUSTER_SCALE_RESOURCES ?? 1000);
const QUEUES = 10;

interface PodStatus {
  metadata: { name: string; deletionTimestamp?: string };
  status: { containerStatuses?: { ready: boolean; restartCount: number; lastState: { terminated?: { reason?: string } } }[] };
}

async function operatorPod(): Promise<PodStatus> {
  const pods = (await kubectlJson<{ items: PodStatus[] }>(['get', 'pods', '-n', SYSTEM, '-l', SELECTOR])).items.filter((p) => !p.metadata.deletionTimestamp);
  expect(pods).toHaveLength(1);
  return pods[0]!;
}

/**
 * Deleting a vhost of 10,000 queues outlasts the management API's request timeout (the socket is
 * closed while RabbitMQ works on): ask again until the vhost is gone.
 */
async function deleteVhostPatiently(name: string): Promise<void> {
  const path = `/api/vhosts/${encodeURIComponent(name)}`;
  for (const deadline = Date.now() + 600_000; Date.now() < deadline; ) {
    await mgmt(path, { method: 'DELETE' }).catch(() => undefined);
    const left = await mgmt(path).catch(() => ({ status: 0 }));
    if (left.status === 404) return;
    await new Promise((r) => setTimeout(r, 5000));
  }
  throw new Error(`vhost ${name} still exists 10 minutes after its deletion was asked for`);
}

const inPod = async (pod: string, ...cmd: string[]) => (await kubectl(['exec', '-n', SYSTEM, pod, '-c', 'operator', '--', ...cmd])).stdout.trim();

describe(`${RESOURCES} batches × ${QUEUES} queues applied by the operator Pod at its memory limit`, () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let vh: { name: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    await kubectl(['apply', '--server-side', '--force-conflicts', '-k', `${ROOT}test/cluster/overlays/single`]);
    await kubectl(['delete', '-n', SYSTEM, 'poddisruptionbudget/rabbitbatch', 'horizontalpodautoscaler/rabbitbatch', '--ignore-not-found']);
    await kubectl(['rollout', 'status', '-n', SYSTEM, 'deployment/rabbitbatch', '--timeout=300s']);
    ns = await createTestNamespace('scale');
    vh = await createTestVhost('scale');
  }, 400_000);
  afterAll(async () => {
    // Delete the objects themselves: with deletionPolicy Delete the operator removes their queues
    // in parallel and then its finalizers (a vhost of 10,000 queues takes RabbitMQ minutes to delete).
    await kubectl(['delete', 'rabbitqueuebatches', '--all', '-n', ns.name, '--wait=true', '--timeout=600s'], { allowFailure: true });
    await ns?.cleanup();
    if (vh) await deleteVhostPatiently(vh.name);
  }, 900_000);

  it('all become Ready; the container is neither OOM-killed nor restarted', async () => {
    const api = loadKubeConfig().makeApiClient(CustomObjectsApi);
    const pod = (await operatorPod()).metadata.name;
    const rssAtStartKb = Number((await inPod(pod, 'sh', '-c', "grep VmHWM /proc/1/status | tr -s ' ' | cut -d' ' -f2")));
    const started = Date.now();
    const names = Array.from({ length: RESOURCES }, (_, i) => `b-${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(
        names.slice(i, i + 25).map((name) =>
          api.createNamespacedCustomObject({
            ...batchApi,
            namespace: ns.name,
            body: { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name }, spec: { vhost: vh.name, deletionPolicy: 'Delete', queues: Array.from({ length: QUEUES }, (_, q) => ({ name: `${name}.q${q}` })) } },
          }),
        ),
      );
    }
    const createSeconds = (Date.now() - started) / 1000;
    let readyCount = 0;
    for (const deadline = Date.now() + 600_000; Date.now() < deadline; ) {
      const list = (await api.listNamespacedCustomObject({ ...batchApi, namespace: ns.name })) as { items: RabbitQueueBatch[] };
      readyCount = list.items.filter((b) => b.status?.observedGeneration === b.metadata.generation && condition(b, 'Ready')?.status === 'True').length;
      if (readyCount === RESOURCES) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const allReadySeconds = (Date.now() - started) / 1000;
    expect(readyCount).toBe(RESOURCES);
    expect((await listQueueNames(vh.name)).length).toBe(RESOURCES * QUEUES);

    const after = await operatorPod();
    expect(after.metadata.name).toBe(pod);
    const container = after.status.containerStatuses![0]!;
    expect(container.restartCount).toBe(0);
    expect(container.lastState.terminated?.reason).toBeUndefined();
    const peakRssKb = Number(await inPod(pod, 'sh', '-c', "grep VmHWM /proc/1/status | tr -s ' ' | cut -d' ' -f2"));
    const cgroupPeak = Number(await inPod(pod, 'cat', '/sys/fs/cgroup/memory/memory.max_usage_in_bytes'));
    const limit = Number(await inPod(pod, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes'));
    const figures = {
      resources: RESOURCES,
      queuesPerResource: QUEUES,
      createSeconds,
      allReadySeconds,
      queuesPerSecond: Math.round((RESOURCES * QUEUES) / allReadySeconds),
      rssAtStartMb: Math.round(rssAtStartKb / 1024),
      peakRssMb: Math.round(peakRssKb / 1024),
      cgroupPeakMb: Math.round(cgroupPeak / 2 ** 20),
      memoryLimitMb: Math.round(limit / 2 ** 20),
      restarts: container.restartCount,
    };
    console.log(`operator Pod, ${RESOURCES} × ${QUEUES}: all Ready ${allReadySeconds.toFixed(1)} s after the first create (creates took ${createSeconds.toFixed(1)} s); peak RSS ${figures.peakRssMb} MB (${figures.rssAtStartMb} MB at start), cgroup peak ${figures.cgroupPeakMb} MB of a ${figures.memoryLimitMb} MB limit; 0 restarts`);
    mkdirSync(`${ROOT}bench/results`, { recursive: true });
    writeFileSync(`${ROOT}bench/results/cluster-scale.json`, `${JSON.stringify({ name: 'cluster-scale', date: new Date().toISOString(), figures }, null, 2)}\n`);
  }, 900_000);
});
