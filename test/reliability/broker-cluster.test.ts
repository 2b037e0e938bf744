/**
 * The operator against a real three-node RabbitMQ cluster (hack/broker-cluster.sh: nodes
 * rabbitbatch-1..3@localhost beside the machine's broker, which these tests never touch): quorum
 * queues get a member on every node, and losing one node loses no queue and no message, and does
 * not stop drift repair through the event stream.
 *
 * The operator's default connection is the machine's own broker: the cluster is reached through
 * connection Secrets only, as users set it up, so its event stream is the one the operator opens
 * for the Secrets' broker. A reliability test because it stops broker nodes and loads the machine.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatch } from '../../src/api/schema.js';
import {
  brokerClusterDown,
  clusterMgmt,
  clusterMessageCount,
  createClusterVhost,
  drain,
  ensureBrokerCluster,
  getClusterQueue,
  listClusterQueues,
  publishTo,
  runningNodes,
  startNode,
  stopNode,
  type BrokerCluster,
  type ClusterNode,
} from '../support/broker-cluster.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { eventually } from '../support/wait.js';

let cluster: BrokerCluster;
let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
const node = (i: 1 | 2 | 3): ClusterNode => cluster.nodes[i - 1]!;
const allNodeNames = () => cluster.nodes.map((n) => n.name).sort();
const isReady = (b: RabbitQueueBatch) => condition(b, 'Ready')?.status === 'True' && b.status?.observedGeneration === b.metadata.generation;

const IDENTITY = `cluster-test-${process.pid}`;

/** A connection Secret naming nodes' management API and AMQP addresses with the cluster's test user. */
async function createSecret(name: string, targets: ClusterNode[], amqp = true): Promise<void> {
  const core = loadKubeConfig().makeApiClient(CoreV1Api);
  const uri = targets.map((n) => n.managementUrl).join(',');
  const amqpUri = targets.map((n) => n.amqpUrl).join(',');
  await core.createNamespacedSecret({
    namespace: ns.name,
    body: { metadata: { name }, stringData: { uri, username: cluster.username, password: cluster.password, ...(amqp ? { amqpUri } : {}) } },
  });
}

/** The operator's event-stream connections on the cluster, with the node each one is on. */
async function eventStreamNodes(): Promise<string[]> {
  const res = await clusterMgmt(cluster, node(1), '/api/connections?columns=node,client_properties.connection_name');
  return (res.json as { node: string; client_properties?: { connection_name?: string } }[]).filter((c) => c.client_properties?.connection_name === `rabbitbatch-events-${IDENTITY}`).map((c) => c.node);
}

/** Stops `target` for the duration of `fn`, and always starts it again (the next test needs three nodes). */
async function withNodeStopped<T>(target: ClusterNode, fn: () => Promise<T>): Promise<T> {
  await stopNode(cluster, target);
  try {
    return await fn();
  } finally {
    await startNode(cluster, target);
    await eventually(async () => expect(await runningNodes(cluster, node(1) === target ? node(2) : node(1))).toEqual(allNodeNames()), { timeoutMs: 60_000, intervalMs: 500 });
  }
}

beforeAll(async () => {
  cluster = await ensureBrokerCluster();
  ns = await createTestNamespace('cluster');
  vh = await createClusterVhost(cluster, 'cluster');
  await createSecret('node-1', [node(1)]);
  await createSecret('node-2', [node(2)]);
  await createSecret('all-nodes', cluster.nodes);
  operator = await startTestOperator(ns.name, {
    POD_NAME: IDENTITY,
    BATCH_CONCURRENCY: '4',
    // Drift must be repaired from the event stream: the periodic re-list does not run during the file.
    RESYNC_INTERVAL: '3600',
  });
  batches = batchClient(ns.name);
}, 300_000);

afterAll(async () => {
  // A failed test may have left a node stopped.
  for (const n of cluster?.nodes ?? []) await startNode(cluster, n).catch(() => undefined);
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
  // Leave the machine as the file found it: a cluster started here is stopped and removed.
  if (cluster?.startedHere) await brokerClusterDown();
}, 300_000);

describe('a three-node RabbitMQ cluster', () => {
  it('says in the status when the AMQP address derived from uri is not the broker and no other stream serves it: drift waits for the resync', async () => {
    // First in the file: no other batch has opened the cluster's event stream yet. Without amqpUri
    // the cluster's AMQP address is taken to be 127.0.0.1:5672: the machine's broker, not this cluster.
    await createSecret('derived', [node(3)], false);
    await batches.create('derived', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'derived' } }, queues: [{ name: 'derived.q' }] });
    const b = await batches.waitFor('derived', (x) => isReady(x) && condition(x, 'DriftRepair') !== undefined, 60_000);
    const c = condition(b, 'DriftRepair');
    expect(c).toMatchObject({ status: 'False', reason: 'EventsUnavailable' });
    expect(c?.message).toContain(`Secret ${ns.name}/derived has no amqpUri`);
    expect(c?.message).toMatch(/periodic resync, next by \d{4}-\d\d-\d\dT/);
    await batches.delete('derived');
    await batches.gone('derived');
  });

  it('gives every quorum queue of a batch a member on each of the three nodes', async () => {
    const names = ['members.a', 'members.b', 'members.c'];
    await batches.create('members', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'node-1' } }, queues: names.map((name) => ({ name, type: 'quorum' })) });
    await batches.waitFor('members', isReady, 60_000);
    for (const name of names) {
      // Read through another node than the one the operator used: the cluster, not one node, holds it.
      const q = await getClusterQueue(cluster, node(3), vh.name, name);
      expect(q, `queue ${name}`).toMatchObject({ type: 'quorum', durable: true });
      expect([...(q?.members ?? [])].sort(), `members of ${name}`).toEqual(allNodeNames());
      expect([...(q?.online ?? [])].sort(), `online members of ${name}`).toEqual(allNodeNames());
    }
  });

  it('one node stopped in the middle of a 500-queue batch: Ready with exactly its 500 queues, never Ready before', async () => {
    const names = Array.from({ length: 500 }, (_, i) => `lost.${String(i).padStart(3, '0')}`);
    // Every status the operator writes is checked against what the cluster holds at that moment.
    const readyWhileMissing: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const b = await batches.get('lost').catch(() => undefined);
        if (b && isReady(b)) {
          const held = (await listClusterQueues(cluster, node(1), vh.name)).filter((q) => q.name.startsWith('lost.')).length;
          if (held !== names.length) readyWhileMissing.push(`Ready at generation ${b.metadata.generation} with ${held} of ${names.length} queues in RabbitMQ`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await batches.create('lost', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'node-1' } }, queues: names.map((name) => ({ name, type: 'quorum' })) });
    try {
      const b = await withNodeStopped(node(2), async () => {
        // Stopped once the batch is under way (the operator talks to node 1, which stays up).
        await eventually(async () => expect((await listClusterQueues(cluster, node(1), vh.name)).length).toBeGreaterThan(20), { timeoutMs: 120_000, intervalMs: 50 });
        expect(await runningNodes(cluster, node(1))).toEqual([node(1).name, node(3).name]);
        return batches.waitFor('lost', isReady, 240_000).catch((err: unknown) => {
          console.log(operator.logs.filter((l) => /"level":(40|50|60)|reconcile finished|BrokerUnavailable/.test(l)).slice(-30).join('\n'));
          throw err;
        });
      });
      const held = (await listClusterQueues(cluster, node(3), vh.name)).map((q) => q.name).filter((n) => n.startsWith('lost.'));
      expect(held.sort()).toEqual(names);
      expect(new Set(held).size).toBe(500);
      expect(b.status?.summary).toMatchObject({ total: 500, ready: 500, failed: 0 });
      expect(new Set(b.status?.applied?.queues).size).toBe(500);
      expect(b.status?.applied?.queues).toHaveLength(500);
      expect(new Set(b.status?.items?.map((i) => i.resource)).size).toBe(500);
    } finally {
      watching = false;
      await watcher;
    }
    expect(readyWhileMissing).toEqual([]);
    await batches.delete('lost');
    await batches.gone('lost');
  }, 420_000);

  it('1,000 persistent messages in a quorum queue survive the loss of its leader node', async () => {
    // Declared through node 2, so node 2 leads the queue and the operator's own node stays up.
    await batches.create('durable', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'node-2' } }, queues: [{ name: 'durable.q', type: 'quorum' }] });
    await batches.waitFor('durable', isReady, 60_000);
    const leaderName = (await getClusterQueue(cluster, node(1), vh.name, 'durable.q'))?.leader;
    const leader = cluster.nodes.find((n) => n.name === leaderName);
    expect(leader, `leader ${leaderName}`).toBeDefined();
    const survivor = cluster.nodes.find((n) => n !== leader)!;
    const bodies = Array.from({ length: 1000 }, (_, i) => `message-${i}`);
    await publishTo(cluster, leader!, vh.name, 'durable.q', bodies);
    expect(await clusterMessageCount(cluster, survivor, vh.name, 'durable.q')).toBe(1000);

    await withNodeStopped(leader!, async () => {
      // A new leader is elected among the two others; counted and read through a survivor.
      const count = await eventually(() => clusterMessageCount(cluster, survivor, vh.name, 'durable.q'), { timeoutMs: 60_000, intervalMs: 500 });
      expect(count).toBe(1000);
      const q = await getClusterQueue(cluster, survivor, vh.name, 'durable.q');
      expect(q?.leader).not.toBe(leader!.name);
      const got = await drain(cluster, survivor, vh.name, 'durable.q');
      expect(got).toHaveLength(1000);
      expect([...new Set(got)].sort()).toEqual([...bodies].sort());
    });
  }, 300_000);

  it('the event stream moves to a surviving node when its node stops, and repairs a queue deleted by hand meanwhile', async () => {
    await batches.create('heal', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'all-nodes' } }, queues: [{ name: 'heal.q', type: 'quorum' }, { name: 'heal.q2', type: 'quorum' }] });
    await batches.waitFor('heal', isReady, 60_000);
    // One stream for the cluster, however many Secrets name it.
    const [streamNode, ...more] = await eventually(async () => {
      const nodes = await eventStreamNodes();
      expect(nodes).toHaveLength(1);
      return nodes;
    }, { timeoutMs: 30_000 });
    expect(more).toEqual([]);
    const lost = cluster.nodes.find((n) => n.name === streamNode)!;
    const survivor = cluster.nodes.find((n) => n !== lost)!;
    await withNodeStopped(lost, async () => {
      // Quorum queues: a classic queue whose node is the one stopped is not there to delete.
      for (const name of ['heal.q', 'heal.q2']) {
        const deleted = await clusterMgmt(cluster, survivor, `/api/queues/${encodeURIComponent(vh.name)}/${name}`, { method: 'DELETE' });
        expect(deleted.status, `deleting ${name} by hand`).toBe(204);
        const t0 = Date.now();
        // Within seconds, not at the periodic re-list (an hour away here): the event stream, now on another node, did it.
        await eventually(async () => expect(await getClusterQueue(cluster, survivor, vh.name, name)).toBeDefined(), { timeoutMs: 30_000, intervalMs: 20 });
        console.log(`${name} deleted by hand with ${lost.name} (the stream's node) down: back after ${Date.now() - t0} ms`);
      }
      const now = await clusterMgmt(cluster, survivor, '/api/connections?columns=node,client_properties.connection_name');
      const streams = (now.json as { node: string; client_properties?: { connection_name?: string } }[]).filter((c) => c.client_properties?.connection_name === `rabbitbatch-events-${IDENTITY}`);
      expect(streams.map((c) => c.node)).toHaveLength(1);
      expect(streams[0]?.node).not.toBe(lost.name);
    });
    expect(operator.logs.some((l) => l.includes('re-verifying every batch on this broker') && l.includes(cluster.clusterName))).toBe(true);
    const metrics = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
    expect(metrics).toMatch(/rabbitbatch_drift_repairs_total\{kind="queue"\} [2-9]/);
    await batches.delete('heal');
    await batches.gone('heal');
  }, 300_000);

});

describe('a connection Secret listing several nodes', () => {
  it('keeps a batch reconciling while any one of its three nodes is down', async () => {
    const spec = (names: string[]) => ({ vhost: vh.name, rabbitmq: { connectionSecret: { name: 'all-nodes' } }, queues: names.map((name) => ({ name, type: 'quorum' as const })) });
    const names = ['failover.0'];
    await batches.create('failover', spec(names));
    await batches.waitFor('failover', isReady, 60_000);
    for (const lost of cluster.nodes) {
      await withNodeStopped(lost, async () => {
        // A spec change while the node is down: applied through the nodes that answer.
        names.push(`failover.without-${lost.name.split('@')[0]}`);
        await batches.setSpec('failover', spec(names));
        const b = await batches.waitFor('failover', isReady, 90_000);
        expect(b.status?.summary).toMatchObject({ total: names.length, ready: names.length, failed: 0 });
        const survivor = cluster.nodes.find((n) => n !== lost)!;
        const held = (await listClusterQueues(cluster, survivor, vh.name)).map((q) => q.name).filter((n) => n.startsWith('failover.'));
        expect(held.sort()).toEqual([...names].sort());
      });
    }
    const metrics = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
    // One breaker per node, each labelled with its own endpoint.
    for (const n of cluster.nodes) expect(metrics).toContain(`rabbitbatch_circuit_breaker_state{endpoint="${n.managementUrl}"}`);
  }, 600_000);

  it('refuses a node list that mixes brokers, naming the Secret and the key, and applies nothing', async () => {
    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    // Node 1 of the test cluster and the machine's own broker (only its /api/overview is read).
    await core.createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'mixed' }, stringData: { uri: `${node(1).managementUrl},http://127.0.0.1:15672`, username: 'guest', password: 'guest' } },
    });
    await batches.create('mixed', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'mixed' } }, queues: [{ name: 'mixed.q' }] });
    const b = await batches.waitFor('mixed', (b) => condition(b, 'Ready')?.reason === 'InvalidConnection', 60_000);
    expect(condition(b, 'Ready')?.message).toMatch(new RegExp(`^Secret ${ns.name}/mixed key uri: the nodes belong to different RabbitMQ clusters \\(${node(1).managementUrl} is in cluster "${cluster.clusterName}", http://127.0.0.1:15672 is in cluster "[^"]+"\\): list the nodes of one cluster only; nothing was applied$`));
    expect(await getClusterQueue(cluster, node(1), vh.name, 'mixed.q')).toBeUndefined();
  });

  it('refuses an empty node list, naming the Secret and the key', async () => {
    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({ namespace: ns.name, body: { metadata: { name: 'empty' }, stringData: { uri: ' , ', username: cluster.username, password: cluster.password } } });
    await batches.create('empty', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'empty' } }, queues: [{ name: 'empty.q' }] });
    const b = await batches.waitFor('empty', (b) => condition(b, 'Ready')?.reason === 'SecretNotFound', 60_000);
    expect(condition(b, 'Ready')?.message).toBe(`Secret ${ns.name}/empty key uri: no node listed (one management API URL, or several separated by commas)`);
    expect(await getClusterQueue(cluster, node(1), vh.name, 'empty.q')).toBeUndefined();
  });
});
