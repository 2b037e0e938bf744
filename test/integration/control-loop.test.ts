/**
 * The control loop's own guarantees, on the real apiserver and broker with in-process operators:
 * - a binding to queue `x` and one to exchange `x` are two objects: planned, repaired and pruned
 *   independently;
 * - graceful shutdown reaches the executor: no new operation starts, and an AllOrNothing batch
 *   interrupted that way is rolled back, not left half-applied;
 * - a resource that moves A → B → A while B changes it: A does not trust what it remembered from
 *   before the move, so `status.applied` stays exact and deleting the batch leaves nothing behind.
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { RendezvousHash } from '../../src/sharding/ring.js';
import { SHARD_LABEL } from '../../src/sharding/sharder.js';
import { batchApi, createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, listBindings, listQueueNames, mgmt } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const ready = (b: Parameters<typeof condition>[0]) => condition(b, 'Ready')?.status === 'True';
const bindingNames = async (vhost: string) => (await listBindings(vhost)).map((b) => `${b.source}->${b.destination_type}:${b.destination}:${b.routing_key}`).sort();

describe('binding identity', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let vh: { name: string; cleanup: () => Promise<void> };
  let operator: TestOperator;
  beforeAll(async () => {
    ns = await createTestNamespace('identity');
    vh = await createTestVhost('identity');
    operator = await startTestOperator(ns.name);
  });
  afterAll(async () => {
    await operator?.stop();
    await ns?.cleanup();
    await vh?.cleanup();
  });

  it('a queue and an exchange named alike, each bound from one source with one routing key, are planned, repaired and pruned independently', async () => {
    const batches = batchClient(ns.name);
    const toQueue = { source: 'src', destination: 'same', destinationType: 'queue' as const, routingKey: 'k' };
    const toExchange = { ...toQueue, destinationType: 'exchange' as const };
    const spec = (bindings: (typeof toQueue | typeof toExchange)[]): RabbitQueueBatchSpecInput => ({
      vhost: vh.name,
      deletionPolicy: 'Delete',
      exchanges: [{ name: 'src', type: 'direct' }, { name: 'same', type: 'fanout' }],
      queues: [{ name: 'same' }],
      bindings,
    });
    await batches.create('alike', spec([toQueue, toExchange]));
    let b = await batches.waitFor('alike', ready);
    expect(b.status?.applied?.bindings).toEqual(['binding/src/exchange:same/k', 'binding/src/same/k']);
    expect(b.status?.items?.map((i) => `${i.resource}=${i.status}`).sort()).toEqual(['binding/src/exchange:same/k=Ready', 'binding/src/same/k=Ready', 'exchange/same=Ready', 'exchange/src=Ready', 'queue/same=Ready']);
    expect(await bindingNames(vh.name)).toEqual(['src->exchange:same:k', 'src->queue:same:k']);

    // Repaired: the exchange binding deleted by hand comes back; the queue binding is never touched.
    const v = encodeURIComponent(vh.name);
    const del = await mgmt(`/api/bindings/${v}/e/src/e/same/k`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    await eventually(async () => expect(await bindingNames(vh.name)).toEqual(['src->exchange:same:k', 'src->queue:same:k']), { timeoutMs: 30_000 });

    // Pruned: removing the exchange binding from the spec removes exactly that one.
    await batches.setSpec('alike', spec([toQueue]));
    b = await batches.waitFor('alike', (x) => ready(x) && x.status?.applied?.bindings?.length === 1);
    expect(b.status?.applied?.bindings).toEqual(['binding/src/same/k']);
    expect(await bindingNames(vh.name)).toEqual(['src->queue:same:k']);
    await batches.delete('alike');
    await batches.gone('alike');
  });
});

describe('graceful shutdown', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let vh: { name: string; cleanup: () => Promise<void> };
  let operator: TestOperator | undefined;
  afterAll(async () => {
    await operator?.stop();
    // The batch keeps its finalizer (no operator runs any more): remove it, then the object.
    const api = loadKubeConfig().makeApiClient(CustomObjectsApi);
    await api.patchNamespacedCustomObject({ ...batchApi, namespace: ns.name, name: 'big', body: [{ op: 'remove', path: '/metadata/finalizers' }] }).catch(() => undefined);
    await api.deleteNamespacedCustomObject({ ...batchApi, namespace: ns.name, name: 'big' }).catch(() => undefined);
    await ns?.cleanup();
    await vh?.cleanup();
  });

  it('stopping the operator in the middle of an AllOrNothing batch starts no new operation and rolls the batch back', async () => {
    ns = await createTestNamespace('shutdown');
    vh = await createTestVhost('shutdown');
    operator = await startTestOperator(ns.name, { BATCH_CONCURRENCY: '1' });
    const batches = batchClient(ns.name);
    const names = Array.from({ length: 600 }, (_, i) => `stop.${String(i).padStart(3, '0')}`);
    await batches.create('big', { vhost: vh.name, mode: 'AllOrNothing', queues: names.map((name) => ({ name })) });
    // Some queues exist: the run is under way.
    await eventually(async () => expect((await listQueueNames(vh.name)).length).toBeGreaterThanOrEqual(5), { timeoutMs: 30_000, intervalMs: 20 });
    await operator.stop();
    operator = undefined;
    const left = await listQueueNames(vh.name);
    expect(left, 'rolled back: nothing of the interrupted run is left in RabbitMQ').toEqual([]);
    const b = await batches.get('big');
    expect(condition(b, 'Ready')).toMatchObject({ status: 'False', reason: 'RolledBack' });
    expect(condition(b, 'Ready')?.message).toContain('shutting down');
    expect(b.status?.applied?.queues ?? []).toEqual([]);
  });
});

describe('sharding hand-over A → B → A', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  let vh: { name: string; cleanup: () => Promise<void> };
  const operators: TestOperator[] = [];
  afterAll(async () => {
    for (const o of operators) await o.stop().catch(() => undefined);
    await ns?.cleanup();
    await vh?.cleanup();
  });

  it('keeps status.applied exact when a resource comes back after another replica changed it, and its deletion leaves nothing behind', async () => {
    ns = await createTestNamespace('handover');
    vh = await createTestVhost('handover');
    const suffix = ns.name.slice(-6);
    const [A, B] = [`replica-a-${suffix}`, `replica-b-${suffix}`];
    const start = (identity: string) => startTestOperator(ns.name, { POD_NAME: identity, POD_NAMESPACE: ns.name }, { sharding: true });
    const a = await start(A);
    operators.push(a);
    const batches = batchClient(ns.name);
    // A name the ring gives to B once both are members.
    const ring = new RendezvousHash([A, B]);
    const name = Array.from({ length: 200 }, (_, i) => `moving-${i}`).find((n) => ring.owner(`${ns.name}/${n}`) === B)!;
    const shardOf = async () => (await batches.get(name)).metadata.labels?.[SHARD_LABEL];
    const queues = (qs: string[]): RabbitQueueBatchSpecInput => ({ vhost: vh.name, deletionPolicy: 'Delete', queues: qs.map((q) => ({ name: q })) });

    await batches.create(name, queues(['q1', 'q2']));
    await eventually(async () => expect(await shardOf()).toBe(A), { timeoutMs: 60_000 });
    await batches.waitFor(name, (b) => ready(b) && b.status?.applied?.queues?.join() === 'q1,q2', 60_000);

    const b = await start(B);
    operators.push(b);
    await eventually(async () => expect(await shardOf()).toBe(B), { timeoutMs: 60_000 });
    // On B: q2 removed, q3 added. B prunes q2 and creates q3.
    await batches.setSpec(name, queues(['q1', 'q3']));
    await batches.waitFor(name, (x) => ready(x) && x.status?.applied?.queues?.join() === 'q1,q3', 60_000);
    expect((await listQueueNames(vh.name)).sort()).toEqual(['q1', 'q3']);

    // B leaves: the resource goes back to A, which reconciles it again.
    const linesBefore = a.logs.length;
    await b.stop();
    operators.splice(operators.indexOf(b), 1);
    await eventually(async () => expect(await shardOf()).toBe(A), { timeoutMs: 60_000 });
    await eventually(async () => expect(a.logs.slice(linesBefore).some((l) => l.includes('"reconcile finished"') && l.includes(`"name":"${name}"`))).toBe(true), { timeoutMs: 30_000 });
    const back = await batches.waitFor(name, ready, 30_000);
    expect(back.status?.applied?.queues).toEqual(['q1', 'q3']);

    // Nothing orphaned: deleting the batch (deletionPolicy Delete) removes exactly what it owns.
    await batches.delete(name);
    await batches.gone(name);
    expect(await listQueueNames(vh.name)).toEqual([]);
  });
});
