/**
 * A batch on a broker without the rabbitmq_event_exchange plugin (the standalone node
 * rabbitbatch-plain@localhost of hack/broker-cluster.sh, beside the machine's broker, which this
 * file never touches): the operator finds no amq.rabbitmq.event exchange there, the batch is
 * applied all the same, and its DriftRepair condition says that a change by hand waits for the
 * periodic resync and names when that runs. A queue deleted by hand stays away until then and is
 * back after it.
 *
 * A reliability test because it starts the broker nodes when they are not running (about a
 * minute) and waits for resyncs.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatch } from '../../src/api/schema.js';
import { brokerClusterDown, clusterMgmt, createClusterVhost, ensureBrokerCluster, getClusterQueue, type BrokerCluster } from '../support/broker-cluster.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { eventually } from '../support/wait.js';

// Short, so the test sees a resync come; the cache's list TTL (60 s) is longer, so between two
// full re-lists nothing but an event could tell the operator that a queue is gone.
const RESYNC_MS = 15_000;
const IDENTITY = `plain-test-${process.pid}`;
const NEXT_BY = /periodic resync, next by (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/;

let cluster: BrokerCluster;
let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
const plain = () => cluster.plain.node;
const isReady = (b: RabbitQueueBatch) => condition(b, 'Ready')?.status === 'True' && b.status?.observedGeneration === b.metadata.generation;

/** The time the DriftRepair condition names for the next resync (ms since the epoch). */
function nextResyncOf(b: RabbitQueueBatch): number {
  const m = NEXT_BY.exec(condition(b, 'DriftRepair')?.message ?? '');
  if (!m) throw new Error(`no "next by <time>" in the DriftRepair condition: ${JSON.stringify(condition(b, 'DriftRepair'))}`);
  return Date.parse(m[1]!);
}

beforeAll(async () => {
  cluster = await ensureBrokerCluster();
  ns = await createTestNamespace('plain');
  vh = await createClusterVhost(cluster, 'plain', plain());
  await loadKubeConfig()
    .makeApiClient(CoreV1Api)
    .createNamespacedSecret({
      namespace: ns.name,
      body: { metadata: { name: 'plain' }, stringData: { uri: plain().managementUrl, amqpUri: plain().amqpUrl, username: cluster.username, password: cluster.password } },
    });
  operator = await startTestOperator(ns.name, { POD_NAME: IDENTITY, RESYNC_INTERVAL: String(RESYNC_MS / 1000) });
  batches = batchClient(ns.name);
}, 300_000);

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
  // Leave the machine as the file found it: nodes started here are stopped and removed.
  if (cluster?.startedHere) await brokerClusterDown();
}, 300_000);

describe('a broker without the event-exchange plugin', () => {
  it('gets the batch applied, says in DriftRepair that drift waits for the resync and when that runs, and repairs a hand-deleted queue at that resync, not before', async () => {
    // The node really lacks the exchange (this is what the test is about, not a setting of the operator).
    const exchange = await clusterMgmt(cluster, plain(), '/api/exchanges/%2F/amq.rabbitmq.event');
    expect(exchange.status).toBe(404);

    await batches.create('plain', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'plain' } }, queues: [{ name: 'plain.q' }, { name: 'plain.kept' }] });
    const b = await batches.waitFor('plain', (x) => isReady(x) && condition(x, 'DriftRepair') !== undefined, 90_000);
    expect(b.status?.summary).toMatchObject({ total: 2, ready: 2, failed: 0 });
    const c = condition(b, 'DriftRepair');
    expect(c).toMatchObject({ status: 'False', reason: 'EventsUnavailable' });
    expect(c?.message).toContain(`RabbitMQ ${cluster.plain.clusterName} has no exchange amq.rabbitmq.event (enable the rabbitmq_event_exchange plugin)`);
    expect(c?.message).toMatch(NEXT_BY);
    for (const name of ['plain.q', 'plain.kept']) expect(await getClusterQueue(cluster, plain(), vh.name, name), name).toBeDefined();
    expect(operator.logs.some((l) => l.includes('has no amq.rabbitmq.event exchange') && l.includes(cluster.plain.clusterName))).toBe(true);

    // A status whose named resync leaves a few seconds to watch the queue stay away. Every status
    // read names a resync at most RESYNC_INTERVAL ahead (it is written before it is read).
    const iso = (t: number) => new Date(t).toISOString();
    const waitUntil = Date.now() + 3 * RESYNC_MS;
    let next: number | undefined;
    while (next === undefined) {
      const x = await batches.get('plain');
      const [at, now] = [nextResyncOf(x), Date.now()];
      expect(at - now, `DriftRepair names ${iso(at)}, read at ${iso(now)}`).toBeLessThanOrEqual(RESYNC_MS);
      if (at >= now + 5_000) next = at;
      else if (now > waitUntil) throw new Error(`no status named a resync 5 s or more ahead within ${3 * RESYNC_MS} ms (last: ${iso(at)} read at ${iso(now)})`);
      else await new Promise((r) => setTimeout(r, 200));
    }

    const deleted = await clusterMgmt(cluster, plain(), `/api/queues/${encodeURIComponent(vh.name)}/plain.q`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    const deletedAt = Date.now();
    // No event tells the operator: the queue stays away until the resync the condition named
    // (the second it names is rounded down, hence the margin). Only answers received before
    // then count: a slow one may describe the broker after the resync.
    let checks = 0;
    for (;;) {
      const q = await getClusterQueue(cluster, plain(), vh.name, 'plain.q');
      const answeredAt = Date.now();
      if (answeredAt >= next - 1_000) break;
      expect(q, `plain.q ${answeredAt - deletedAt} ms after it was deleted by hand`).toBeUndefined();
      checks++;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(checks).toBeGreaterThan(0);
    // ... and is back after it.
    await eventually(async () => expect(await getClusterQueue(cluster, plain(), vh.name, 'plain.q')).toBeDefined(), { timeoutMs: RESYNC_MS + 20_000, intervalMs: 250 });
    console.log(`plain.q deleted by hand: absent in ${checks} checks until 1 s before the named resync ${iso(next)}, back ${Date.now() - next} ms after it`);
    // The resync ran: the condition now names the one after it.
    await eventually(async () => expect(nextResyncOf(await batches.get('plain'))).toBeGreaterThan(next), { timeoutMs: RESYNC_MS });

    await batches.delete('plain');
    await batches.gone('plain');
  }, 240_000);
});
