/**
 * The product as users run it: the image from `make image`, installed with `kubectl apply -k` of
 * an overlay of deploy/ (test/cluster/overlays: only the image, its pull policy and the RabbitMQ
 * address differ), running as a Pod on the real node of hack/cluster.sh under deploy/'s
 * ServiceAccount and RBAC. RabbitMQ is read directly on loopback, so every assertion is about
 * what the broker holds, not what the operator says.
 *
 * Order matters and is kept in one file: the HA overlay first (two sharded replicas), then the
 * single-replica install that `make e2e-cluster` leaves running for a person to look at.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { followLogs, kubectl, kubectlJson } from '../support/kubectl.js';
import { batchClient, condition, item } from '../support/operator.js';
import { createTestVhost, deleteQueueByHand, getQueue, listQueueNames } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SYSTEM = 'rabbitbatch-system';
const SELECTOR = 'app.kubernetes.io/name=rabbitbatch,app.kubernetes.io/component=operator';
/** Where the operator Pod reaches the machine's broker (hack/cluster.sh forwards it there). */
const BROKER_FOR_PODS = 'http://10.244.0.1:15673';

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  status: {
    phase: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { ready: boolean; restartCount: number; state: Record<string, { reason?: string }>; lastState: { terminated?: { reason?: string } } }[];
  };
}

const ready = (b: Parameters<typeof condition>[0]) => condition(b, 'Ready')?.status === 'True';

async function install(overlay: 'single' | 'ha'): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '-k', `${ROOT}test/cluster/overlays/${overlay}`]);
  await kubectl(['rollout', 'status', '-n', SYSTEM, 'deployment/rabbitbatch', '--timeout=300s']);
}

async function operatorPods(): Promise<Pod[]> {
  const list = await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', SYSTEM, '-l', SELECTOR]);
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

async function readyOperatorPods(count: number): Promise<Pod[]> {
  return eventually(
    async () => {
      const pods = (await operatorPods()).filter((p) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
      if (pods.length !== count) throw new Error(`${pods.length} operator Pods Ready, want ${count}`);
      return pods;
    },
    { timeoutMs: 180_000, intervalMs: 500 },
  );
}

async function events(namespace: string, object: string, reason: string): Promise<{ message: string; count?: number }[]> {
  const list = await kubectlJson<{ items: { message: string; count?: number }[] }>(['get', 'events', '-n', namespace, '--field-selector', `involvedObject.name=${object},reason=${reason}`]);
  return list.items;
}

async function leaseHolder(name: string): Promise<string | undefined> {
  const lease = await kubectlJson<{ spec?: { holderIdentity?: string } }>(['get', 'lease', '-n', SYSTEM, name]).catch(() => undefined);
  return lease?.spec?.holderIdentity || undefined;
}

let vh: { name: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  vh = await createTestVhost('pod');
});
afterAll(async () => {
  await vh.cleanup();
});

describe('the HA overlay: two sharded replicas, leader election for placement, a PodDisruptionBudget', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let logs: ReturnType<typeof followLogs>;
  beforeAll(async () => {
    await install('ha');
    await readyOperatorPods(2);
    logs = followLogs(SYSTEM, SELECTOR);
    ns = await createTestNamespace('ha');
  }, 400_000);
  afterAll(async () => {
    logs?.stop();
    await ns?.cleanup();
    // Back to the single-replica install: apply does not prune what the HA overlay added.
    await kubectl(['delete', '-n', SYSTEM, 'poddisruptionbudget/rabbitbatch', 'horizontalpodautoscaler/rabbitbatch', '--ignore-not-found']);
  });

  it('hands over when the leader Pod is deleted: the survivor reconciles a new batch', async () => {
    const batches = batchClient(ns.name);
    await batches.create('before', { vhost: vh.name, queues: [{ name: 'ha.before' }] });
    await batches.waitFor('before', ready, 120_000);

    const leader = await eventually(async () => {
      const h = await leaseHolder('rabbitbatch-sharder');
      if (!h) throw new Error('no sharder leader yet');
      return h;
    });
    const deletedAt = Date.now();
    await kubectl(['delete', 'pod', '-n', SYSTEM, leader, '--wait=false']);
    await batches.create('after', { vhost: vh.name, queues: [{ name: 'ha.after' }] });
    await batches.waitFor('after', ready, 180_000);
    console.log(`leader Pod ${leader} deleted → a new batch Ready after ${Date.now() - deletedAt} ms`);
    expect(await getQueue(vh.name, 'ha.after')).toBeDefined();
    const successor = await leaseHolder('rabbitbatch-sharder');
    expect(successor).toBeDefined();
    expect(successor).not.toBe(leader);
  }, 300_000);

  it('loses nothing in `kubectl rollout restart` and never reconciles one batch in two Pods at once', async () => {
    await readyOperatorPods(2);
    const batches = batchClient(ns.name);
    const names = Array.from({ length: 12 }, (_, i) => `roll-${i}`);
    await Promise.all(names.map((n) => batches.create(n, { vhost: vh.name, queues: [{ name: `${n}.a` }] })));
    await Promise.all(names.map((n) => batches.waitFor(n, ready, 120_000)));

    await kubectl(['rollout', 'restart', '-n', SYSTEM, 'deployment/rabbitbatch']);
    // Edits while Pods come and go: each must end applied, whoever holds the batch by then.
    for (const n of names) {
      await batches.setSpec(n, { vhost: vh.name, queues: [{ name: `${n}.a` }, { name: `${n}.b` }] });
      await new Promise((r) => setTimeout(r, 250));
    }
    await kubectl(['rollout', 'status', '-n', SYSTEM, 'deployment/rabbitbatch', '--timeout=300s']);
    await Promise.all(names.map((n) => batches.waitFor(n, (b) => ready(b) && b.status?.summary?.ready === 2, 180_000)));
    const queues = await listQueueNames(vh.name);
    for (const n of names) expect(queues).toEqual(expect.arrayContaining([`${n}.a`, `${n}.b`]));

    // Every reconcile's start and end, per batch, from every Pod that lived during the test.
    const spans = new Map<string, { pod: string; start: number; end: number }[]>();
    // A reconcile that hands the batch over holds it until its release patch leaves the Pod
    // (`releaseSentAt`); the rest of it is the patch's response, while the next owner may run.
    const releases = new Map<string, number[]>();
    for (const { pod, line } of logs.lines) {
      if (!line.includes('released to another replica')) continue;
      const entry = JSON.parse(line) as { key?: string; releaseSentAt?: number };
      if (entry.key && entry.releaseSentAt !== undefined) releases.set(`${pod} ${entry.key}`, [...(releases.get(`${pod} ${entry.key}`) ?? []), entry.releaseSentAt]);
    }
    for (const { pod, line } of logs.lines) {
      if (!line.includes('reconcile finished')) continue;
      const entry = JSON.parse(line) as { key?: string; reconcileStart?: number; reconcileEnd?: number; held?: boolean };
      if (!entry.key?.startsWith(`${ns.name}/`) || entry.reconcileStart === undefined || entry.reconcileEnd === undefined) continue;
      // A queued key whose batch had left this Pod's shard: that reconcile only forgot the key.
      if (entry.held === false) continue;
      const { reconcileStart: start, reconcileEnd } = entry;
      const released = releases.get(`${pod} ${entry.key}`)?.find((t) => t >= start && t <= reconcileEnd);
      spans.set(entry.key, [...(spans.get(entry.key) ?? []), { pod, start, end: released ?? reconcileEnd }]);
    }
    const podsSeen = new Set([...spans.values()].flat().map((s) => s.pod));
    expect(podsSeen.size).toBeGreaterThanOrEqual(2);
    const overlaps: string[] = [];
    for (const [key, list] of spans) {
      list.sort((a, b) => a.start - b.start);
      for (let i = 1; i < list.length; i++) {
        const [prev, cur] = [list[i - 1]!, list[i]!];
        if (cur.pod !== prev.pod && cur.start < prev.end) overlaps.push(`${key}: ${prev.pod} [${prev.start}, ${prev.end}] and ${cur.pod} [${cur.start}, ${cur.end}]`);
      }
    }
    expect(overlaps).toEqual([]);
    console.log(`rollout restart: ${names.length} batches edited during it, all applied; ${[...spans.values()].flat().length} reconciles over ${podsSeen.size} Pods, none overlapping`);
  }, 600_000);
});

describe('deploy/default as a single Pod under its own ServiceAccount', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    await install('single');
    await readyOperatorPods(1);
    ns = await createTestNamespace('pod');
    await loadKubeConfig().makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'rabbitmq-admin' }, stringData: { uri: BROKER_FOR_PODS, username: 'guest', password: 'guest' } },
    });
  }, 400_000);
  afterAll(async () => {
    await ns?.cleanup();
  });

  it('is Available, runs as non-root on a read-only root file system within its memory limit, and its probes pass', async () => {
    const deployment = await kubectlJson<{ status: { conditions: { type: string; status: string }[] } }>(['get', 'deployment', '-n', SYSTEM, 'rabbitbatch']);
    expect(deployment.status.conditions).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'Available', status: 'True' })]));
    const [pod] = await readyOperatorPods(1);
    const name = pod!.metadata.name;
    expect(pod!.status.containerStatuses?.[0]?.restartCount).toBe(0);
    const exec = (...cmd: string[]) => kubectl(['exec', '-n', SYSTEM, name, '-c', 'operator', '--', ...cmd], { allowFailure: true });
    expect((await exec('id', '-u')).stdout.trim()).toBe('65532');
    const write = await exec('sh', '-c', 'touch /written-by-test 2>&1; echo "rc=$?"');
    expect(write.stdout).toMatch(/Read-only file system/);
    expect(write.stdout).toMatch(/rc=1/);
    // cgroup v1 on this node: the container sees its own memory cgroup at the root.
    expect(Number((await exec('cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes')).stdout.trim())).toBe(512 * 1024 * 1024);
    const probeFailures = (await events(SYSTEM, name, 'Unhealthy')).filter((e) => /Liveness/.test(e.message));
    expect(probeFailures).toEqual([]);
  });

  it('makes batches Ready on the default connection and on a connection Secret', async () => {
    const batches = batchClient(ns.name);
    const started = Date.now();
    await batches.create('on-default', {
      vhost: vh.name,
      exchanges: [{ name: 'pod.events', type: 'topic' }],
      queues: [{ name: 'pod.default.q', type: 'quorum', arguments: { 'x-delivery-limit': 5 } }],
      bindings: [{ source: 'pod.events', destination: 'pod.default.q', routingKey: 'default.#' }],
    });
    await batches.create('on-secret', {
      rabbitmq: { connectionSecret: { name: 'rabbitmq-admin' } },
      vhost: vh.name,
      queues: [{ name: 'pod.secret.q', arguments: { 'x-message-ttl': 60000 } }],
    });
    await Promise.all([batches.waitFor('on-default', ready, 120_000), batches.waitFor('on-secret', ready, 120_000)]);
    console.log(`two batches applied by the Pod: Ready ${Date.now() - started} ms after create`);
    expect((await getQueue(vh.name, 'pod.default.q'))?.arguments).toMatchObject({ 'x-queue-type': 'quorum', 'x-delivery-limit': 5 });
    expect((await getQueue(vh.name, 'pod.secret.q'))?.arguments).toMatchObject({ 'x-message-ttl': 60000 });
    expect((await events(ns.name, 'on-default', 'Created')).length).toBeGreaterThan(0);
    expect((await events(ns.name, 'on-secret', 'Created')).length).toBeGreaterThan(0);
  }, 180_000);

  it('repairs a queue deleted by hand, with a DriftRepaired Event', async () => {
    const batches = batchClient(ns.name);
    await deleteQueueByHand(vh.name, 'pod.default.q');
    await eventually(async () => {
      if (!(await getQueue(vh.name, 'pod.default.q'))) throw new Error('pod.default.q not re-created yet');
    }, { timeoutMs: 60_000 });
    await eventually(async () => {
      if ((await events(ns.name, 'on-default', 'DriftRepaired')).length === 0) throw new Error('no DriftRepaired Event yet');
    });
    const b = await batches.waitFor('on-default', ready);
    expect(item(b, 'queue/pod.default.q')?.status).toBe('Ready');
  }, 120_000);

  it('cleans up a batch deleted with deletionPolicy Delete', async () => {
    const batches = batchClient(ns.name);
    await batches.create('to-delete', { rabbitmq: { connectionSecret: { name: 'rabbitmq-admin' } }, vhost: vh.name, deletionPolicy: 'Delete', queues: [{ name: 'pod.delete.me' }] });
    await batches.waitFor('to-delete', ready, 120_000);
    expect(await getQueue(vh.name, 'pod.delete.me')).toBeDefined();
    await batches.delete('to-delete');
    await batches.gone('to-delete');
    expect(await getQueue(vh.name, 'pod.delete.me')).toBeUndefined();
  }, 180_000);

  it('shows a user\'s mistakes with a clear reason: a wrong RabbitMQ address, an image that is not there', async () => {
    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'wrong-port' }, stringData: { uri: 'http://10.244.0.1:1', username: 'guest', password: 'guest' } } });
    const batches = batchClient(ns.name);
    await batches.create('unreachable', { rabbitmq: { connectionSecret: { name: 'wrong-port' } }, vhost: vh.name, queues: [{ name: 'pod.never' }] });
    const b = await batches.waitFor('unreachable', (x) => condition(x, 'Ready')?.reason === 'BrokerUnavailable', 120_000);
    expect(condition(b, 'Ready')?.message).toMatch(/10\.244\.0\.1:1/);

    const image = `localhost/rabbitbatch:missing-${randomBytes(3).toString('hex')}`;
    await kubectl(['create', 'deployment', 'no-image', '-n', ns.name, `--image=${image}`]);
    await kubectl(['patch', 'deployment', 'no-image', '-n', ns.name, '--type=json', '-p', '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]']);
    await eventually(async () => {
      const pods = await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', ns.name, '-l', 'app=no-image']);
      const waiting = pods.items.flatMap((p) => p.status.containerStatuses ?? []).map((s) => s.state.waiting?.reason);
      if (!waiting.includes('ErrImageNeverPull')) throw new Error(`pod not yet waiting on ErrImageNeverPull: ${JSON.stringify(waiting)}`);
    }, { timeoutMs: 120_000, intervalMs: 500 });
  }, 300_000);

  it('never logs "forbidden": deploy/ grants everything the operator uses', async () => {
    const { stdout } = await kubectl(['logs', '-n', SYSTEM, 'deployment/rabbitbatch', '-c', 'operator']);
    expect(stdout.length).toBeGreaterThan(0);
    expect(stdout).not.toMatch(/forbidden/i);
  });

  it('says in `kubectl describe pod` when RBAC forbids its watch, and recovers once RBAC is fixed', async () => {
    // deploy/'s ClusterRole without list and watch on rabbitqueuebatches (rule 0).
    await kubectl(['patch', 'clusterrole', 'rabbitbatch-operator', '--type=json', '-p', '[{"op":"replace","path":"/rules/0/verbs","value":["get","patch","update"]}]']);
    try {
      const [old] = await operatorPods();
      await kubectl(['delete', 'pod', '-n', SYSTEM, old!.metadata.name, '--wait=false']);
      const { pod, event } = await eventually(
        async () => {
          const fresh = (await operatorPods()).find((p) => p.metadata.name !== old!.metadata.name);
          if (!fresh) throw new Error('no new operator Pod yet');
          const [e] = await events(SYSTEM, fresh.metadata.name, 'WatchForbidden');
          if (!e) throw new Error(`no WatchForbidden Event on ${fresh.metadata.name} yet`);
          return { pod: fresh, event: e };
        },
        { timeoutMs: 180_000, intervalMs: 1000 },
      );
      expect(event.message).toMatch(/forbidden/);
      expect(event.message).toMatch(/rabbitqueuebatches/);
      expect((await kubectl(['describe', 'pod', '-n', SYSTEM, pod.metadata.name])).stdout).toMatch(/WatchForbidden/);
      const now = (await operatorPods()).find((p) => p.metadata.name === pod.metadata.name);
      expect(now?.status.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    } finally {
      await install('single'); // server-side apply takes the rule back
    }
    await readyOperatorPods(1);
  }, 400_000);
});
