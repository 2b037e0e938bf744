/**
 * The RabbitQueueBatch operator end to end: the real apiserver, the real broker, the operator
 * running in-process and watching only this file's namespace. Outcomes are read back from
 * RabbitMQ and from the resource's status.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, item, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, deleteQueueByHand, getExchange, getQueue, listBindings, listQueueNames, messageCount, mgmt, publish } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
let vhost: string;

beforeAll(async () => {
  ns = await createTestNamespace('operator');
  vh = await createTestVhost('operator');
  vhost = vh.name;
  operator = await startTestOperator(ns.name);
  batches = batchClient(ns.name);
});

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

const spec = (s: RabbitQueueBatchSpecInput): RabbitQueueBatchSpecInput => ({ vhost, deletionPolicy: 'Delete', ...s });

/** The Events recorded for batch `name` with `reason`: their messages. */
async function events(name: string, reason: string): Promise<string[]> {
  const list = await loadKubeConfig().makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: ns.name });
  return list.items.filter((e) => e.involvedObject.name === name && e.reason === reason).map((e) => e.message ?? '');
}

describe('RabbitQueueBatch', () => {
  it('creates exchanges, queues and bindings from empty and reports every item Ready', async () => {
    await batches.create(
      'orders',
      spec({
        exchanges: [{ name: 'orders', type: 'topic' }],
        queues: [{ name: 'orders.created', arguments: { 'x-message-ttl': 60000 } }, { name: 'orders.audit', type: 'quorum' }],
        bindings: [
          { source: 'orders', destination: 'orders.created', routingKey: 'created.#' },
          { source: 'orders', destination: 'orders.audit', routingKey: '#' },
        ],
      }),
    );
    const b = await batches.waitFor('orders', (b) => condition(b, 'Ready')?.status === 'True');
    expect(b.status?.summary).toMatchObject({ total: 5, ready: 5, failed: 0, conflicts: 0 });
    expect(b.status?.applied).toEqual({ vhost, exchanges: ['orders'], queues: ['orders.audit', 'orders.created'], bindings: ['binding/orders/orders.audit/#', 'binding/orders/orders.created/created.#'] });
    expect(await getQueue(vhost, 'orders.created')).toMatchObject({ durable: true, arguments: { 'x-message-ttl': 60000 } });
    expect((await getQueue(vhost, 'orders.audit'))?.type).toBe('quorum');
    expect(await getExchange(vhost, 'orders')).toMatchObject({ type: 'topic', durable: true });
    expect((await listBindings(vhost)).map((x) => `${x.source}->${x.destination}:${x.routing_key}`).sort()).toEqual(['orders->orders.audit:#', 'orders->orders.created:created.#']);
    expect(b.metadata.finalizers).toContain('rabbitbatch.io/finalizer');
  });

  it('reports a change RabbitMQ cannot make as Conflict, with desired and actual values, and keeps the messages', async () => {
    await batches.create('immutable', spec({ queues: [{ name: 'imm.q', arguments: { 'x-max-length': 10 } }] }));
    await batches.waitFor('immutable', (b) => condition(b, 'Ready')?.status === 'True');
    await publish(vhost, 'imm.q', ['keep me']);
    await batches.setSpec('immutable', spec({ queues: [{ name: 'imm.q', arguments: { 'x-max-length': 20 } }] }));
    const b = await batches.waitFor('immutable', (b) => item(b, 'queue/imm.q')?.status === 'Conflict');
    expect(item(b, 'queue/imm.q')?.error).toContain('arguments.x-max-length: desired 20, actual 10');
    expect(condition(b, 'Ready')).toMatchObject({ status: 'False', reason: 'Conflict' });
    expect(condition(b, 'Degraded')).toMatchObject({ status: 'True', reason: 'Conflict' });
    expect(await messageCount(vhost, 'imm.q')).toBe(1);
  });

  it('detects argument drift made by hand while it was down, and reports it', async () => {
    await batches.create('drift', spec({ queues: [{ name: 'drift.q', arguments: { 'x-message-ttl': 1000 } }] }));
    await batches.waitFor('drift', (b) => condition(b, 'Ready')?.status === 'True');
    await operator.stop();
    await deleteQueueByHand(vhost, 'drift.q');
    await mgmt(`/api/queues/${encodeURIComponent(vhost)}/drift.q`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: { 'x-message-ttl': 5000 } } });
    operator = await startTestOperator(ns.name); // re-verifies every batch against RabbitMQ on start
    const b = await batches.waitFor('drift', (b) => item(b, 'queue/drift.q')?.status === 'Conflict');
    expect(item(b, 'queue/drift.q')?.error).toContain('arguments.x-message-ttl: desired 1000, actual 5000');
  });

  it('re-creates a queue, an exchange and a binding deleted by hand, and says so', async () => {
    await batches.create('heal', spec({ exchanges: [{ name: 'heal.x' }], queues: [{ name: 'heal.q' }], bindings: [{ source: 'heal.x', destination: 'heal.q', routingKey: 'k' }] }));
    await batches.waitFor('heal', (b) => condition(b, 'Ready')?.status === 'True');
    await deleteQueueByHand(vhost, 'heal.q');
    await eventually(async () => expect(await getQueue(vhost, 'heal.q')).toBeDefined());
    await eventually(async () => expect((await listBindings(vhost)).some((x) => x.source === 'heal.x' && x.destination === 'heal.q')).toBe(true));
    await mgmt(`/api/exchanges/${encodeURIComponent(vhost)}/heal.x`, { method: 'DELETE' });
    await eventually(async () => expect(await getExchange(vhost, 'heal.x')).toBeDefined());
    await eventually(async () => expect((await listBindings(vhost)).some((x) => x.source === 'heal.x' && x.destination === 'heal.q')).toBe(true));
    // Counted when the repairing reconcile ends, a moment after the broker shows the object again.
    await eventually(async () => {
      const text = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
      expect(text).toMatch(/rabbitbatch_drift_repairs_total\{kind="queue"\} [1-9]/);
      expect(text).toMatch(/rabbitbatch_drift_repairs_total\{kind="exchange"\} [1-9]/);
    });
    // ...and says so where users look: an Event naming what was re-created.
    await eventually(async () => expect((await events('heal', 'DriftRepaired')).join('\n')).toContain('queue/heal.q'));
    expect((await events('heal', 'DriftRepaired')).join('\n')).toContain('exchange/heal.x');
  });

  it('re-creates a binding deleted on its own (queue and exchange untouched), with a DriftRepaired Event', async () => {
    await batches.create('bind', spec({ exchanges: [{ name: 'bind.x' }], queues: [{ name: 'bind.q' }], bindings: [{ source: 'bind.x', destination: 'bind.q', routingKey: 'rk' }] }));
    await batches.waitFor('bind', (b) => condition(b, 'Ready')?.status === 'True');
    const bound = () => listBindings(vhost).then((all) => all.some((x) => x.source === 'bind.x' && x.destination === 'bind.q' && x.routing_key === 'rk'));
    expect(await bound()).toBe(true);
    const res = await mgmt(`/api/bindings/${encodeURIComponent(vhost)}/e/bind.x/q/bind.q/rk`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await bound()).toBe(false);
    await eventually(async () => expect(await bound()).toBe(true));
    await eventually(async () => expect((await events('bind', 'DriftRepaired')).join('\n')).toMatch(/binding\//));
  });

  it('AllOrNothing: a failure in the middle is rolled back and nothing is left behind', async () => {
    await batches.create(
      'rollback',
      spec({
        exchanges: [{ name: 'rb.x' }],
        queues: [{ name: 'rb.a' }, { name: 'rb.b' }, { name: 'rb.bad', type: 'quorum', arguments: { 'x-max-age': '1D' } }],
        bindings: [{ source: 'rb.x', destination: 'rb.a' }],
      }),
    );
    const b = await batches.waitFor('rollback', (b) => condition(b, 'Degraded')?.reason === 'RolledBack');
    expect(condition(b, 'Ready')?.message).toContain('queue/rb.bad');
    expect(item(b, 'queue/rb.bad')?.status).toBe('Failed');
    expect(item(b, 'queue/rb.a')?.status).toBe('Pending');
    // Nothing left behind once no run is in flight: another run of the batch may have started by
    // the time the status is read (seen with the operator in a Pod), and it fails and rolls back
    // the same way, so the broker is read until it holds none of the batch.
    await eventually(async () => {
      expect((await listQueueNames(vhost)).filter((n) => n.startsWith('rb.'))).toEqual([]);
      expect(await getExchange(vhost, 'rb.x')).toBeUndefined();
    });
    expect(b.status?.applied?.queues ?? []).toEqual([]);
  });

  it('BestEffort: applies what it can and reports the failure per item', async () => {
    await batches.create('besteffort', spec({ mode: 'BestEffort', queues: [{ name: 'be.ok' }, { name: 'be.bad', type: 'quorum', arguments: { 'x-max-age': '1D' } }] }));
    const b = await batches.waitFor('besteffort', (b) => item(b, 'queue/be.bad')?.status === 'Failed');
    expect(item(b, 'queue/be.ok')?.status).toBe('Ready');
    expect(item(b, 'queue/be.bad')?.error).toContain("invalid arg 'x-max-age'");
    expect(condition(b, 'Ready')?.reason).toBe('PartiallyApplied');
    expect(await getQueue(vhost, 'be.ok')).toBeDefined();
  });

  it('prunes removed items it owns, but keeps a queue that still holds messages (Retained)', async () => {
    await batches.create('prune', spec({ queues: [{ name: 'prune.empty' }, { name: 'prune.full' }, { name: 'prune.stays' }] }));
    await batches.waitFor('prune', (b) => condition(b, 'Ready')?.status === 'True');
    await publish(vhost, 'prune.full', ['a', 'b', 'c']);
    await batches.setSpec('prune', spec({ queues: [{ name: 'prune.stays' }] }));
    const b = await batches.waitFor('prune', (b) => item(b, 'queue/prune.full')?.status === 'Retained');
    expect(await getQueue(vhost, 'prune.empty')).toBeUndefined();
    expect(await messageCount(vhost, 'prune.full')).toBe(3);
    expect(item(b, 'queue/prune.empty')).toBeUndefined();
    expect(b.status?.applied?.queues).toEqual(['prune.full', 'prune.stays']);
  });

  it('deletionPolicy Delete on a batch whose queue holds messages: the queue and its messages stay, the batch goes, a Retained Event names it', async () => {
    await batches.create('full', spec({ queues: [{ name: 'full.q' }, { name: 'full.empty' }] }));
    await batches.waitFor('full', (b) => condition(b, 'Ready')?.status === 'True');
    await publish(vhost, 'full.q', ['one', 'two']);
    await batches.delete('full');
    await batches.gone('full');
    expect(await messageCount(vhost, 'full.q')).toBe(2);
    expect(await getQueue(vhost, 'full.empty')).toBeUndefined(); // the empty one was deleted
    const retained = await events('full', 'Retained');
    expect(retained.join('\n')).toContain('queue/full.q');
    await deleteQueueByHand(vhost, 'full.q');
  });

  it('deletionPolicy Delete removes what the batch created; Retain leaves RabbitMQ alone', async () => {
    await batches.create('del', spec({ queues: [{ name: 'del.q' }] }));
    await batches.create('keep', spec({ deletionPolicy: 'Retain', queues: [{ name: 'keep.q' }] }));
    await batches.waitFor('del', (b) => condition(b, 'Ready')?.status === 'True');
    await batches.waitFor('keep', (b) => condition(b, 'Ready')?.status === 'True');
    await batches.delete('del');
    await batches.delete('keep');
    await batches.gone('del');
    await batches.gone('keep');
    expect(await getQueue(vhost, 'del.q')).toBeUndefined();
    expect(await getQueue(vhost, 'keep.q')).toBeDefined();
  });

  it('puts its finalizer only on a batch with deletionPolicy Delete, and adds it when a Retain batch becomes one', async () => {
    await batches.create('retain-fin', spec({ deletionPolicy: 'Retain', queues: [{ name: 'retain-fin.q' }] }));
    const retained = await batches.waitFor('retain-fin', (b) => condition(b, 'Ready')?.status === 'True');
    expect(retained.metadata.finalizers ?? []).not.toContain('rabbitbatch.io/finalizer');
    await batches.setSpec('retain-fin', spec({ deletionPolicy: 'Delete', queues: [{ name: 'retain-fin.q' }] }));
    await batches.waitFor('retain-fin', (b) => b.metadata.finalizers?.includes('rabbitbatch.io/finalizer') === true);
    await batches.delete('retain-fin');
    await batches.gone('retain-fin');
    expect(await getQueue(vhost, 'retain-fin.q')).toBeUndefined();
  });

  it('two batches declaring one queue: the later one reports Conflict naming the owner, and nothing flip-flops', async () => {
    await batches.create('first', spec({ queues: [{ name: 'shared.q' }] }));
    await batches.waitFor('first', (b) => condition(b, 'Ready')?.status === 'True');
    await batches.create('second', spec({ mode: 'BestEffort', queues: [{ name: 'shared.q' }, { name: 'second.own' }] }));
    const second = await batches.waitFor('second', (b) => item(b, 'queue/shared.q')?.status === 'Conflict');
    expect(item(second, 'queue/shared.q')?.error).toContain(`${ns.name}/first`);
    expect(item(second, 'queue/second.own')?.status).toBe('Ready');
    const first = await batches.get('first');
    expect(condition(first, 'Ready')?.status).toBe('True');
    expect(first.status?.applied?.queues).toEqual(['shared.q']);
    expect(second.status?.applied?.queues).toEqual(['second.own']);
  });

  it('reports a vhost that does not exist', async () => {
    await batches.create('novhost', { vhost: 'no-such-vhost', queues: [{ name: 'q' }] });
    const b = await batches.waitFor('novhost', (b) => condition(b, 'Ready')?.reason === 'VhostNotFound');
    expect(condition(b, 'Ready')?.message).toContain('no-such-vhost');
  });

  it('refuses a schema-invalid batch at the API server, naming the field', async () => {
    const refused = (s: unknown) =>
      batches.create(`bad-${Math.random().toString(36).slice(2, 7)}`, s as RabbitQueueBatchSpecInput).then(
        () => 'accepted',
        (err: { body?: string }) => String(err.body),
      );
    expect(await refused(spec({ queues: [{ name: 'q', type: 'lazy' as never }] }))).toContain('spec.queues[0].type');
    expect(await refused(spec({ queues: [{ name: 'q', type: 'quorum', durable: false }] }))).toContain('quorum and stream queues must be durable');
    expect(await refused(spec({ queues: [{ name: 'q' }, { name: 'q' }] }))).toMatch(/spec.queues\[1\].*Duplicate value/);
    expect(await refused(spec({ queues: [{ name: 'q' }], bindings: [{ source: 'missing', destination: 'q' }] }))).toContain('every binding source');
    expect(await refused(spec({ queues: [{ name: 'amq.q' }] }))).toContain('reserved');
    // Item defaults are not stored: the rules read an omitted field as its default.
    expect(await refused(spec({ queues: [{ name: 'q', type: 'stream', autoDelete: true }] }))).toContain('quorum and stream queues must be durable');
    expect(await refused(spec({ exchanges: [{ name: 'amq.mine' }] }))).toContain('mark the exchange external');
  });

  it('stores items as written and applies their defaults when it reads them', async () => {
    await batches.create('defaults', spec({ exchanges: [{ name: 'defaults.x' }], queues: [{ name: 'defaults.q' }, { name: 'defaults.quorum', type: 'quorum' }], bindings: [{ source: 'defaults.x', destination: 'defaults.q' }] }));
    const b = await batches.waitFor('defaults', (b) => condition(b, 'Ready')?.status === 'True');
    // Only what was written, and the list-map keys the API server must default.
    expect(b.spec.queues).toEqual([{ name: 'defaults.q' }, { name: 'defaults.quorum', type: 'quorum' }]);
    expect(b.spec.exchanges).toEqual([{ name: 'defaults.x' }]);
    expect(b.spec.bindings).toEqual([{ source: 'defaults.x', destination: 'defaults.q', destinationType: 'queue', routingKey: '' }]);
    expect(await getQueue(vhost, 'defaults.q')).toMatchObject({ durable: true, auto_delete: false, arguments: {} });
    expect(await getQueue(vhost, 'defaults.quorum')).toMatchObject({ durable: true, type: 'quorum' });
    expect(await getExchange(vhost, 'defaults.x')).toMatchObject({ type: 'direct', durable: true, auto_delete: false, internal: false });
  });

  it('exposes controller-runtime and batch metrics that match what happened', async () => {
    const text = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
    const value = (line: RegExp) => Number(text.split('\n').find((l) => line.test(l))?.split(' ').pop());
    expect(value(/^controller_runtime_reconcile_total\{controller="rabbitqueuebatch",result="requeue_after"\}/)).toBeGreaterThan(0);
    expect(value(/^rabbitbatch_batch_operations_total\{kind="declareQueue",result="success"\}/)).toBeGreaterThanOrEqual(10);
    expect(value(/^rabbitbatch_batch_rollbacks_total/)).toBeGreaterThanOrEqual(1);
    expect(text).toContain('workqueue_depth{name="rabbitqueuebatch",controller="rabbitqueuebatch"}');
    await eventually(async () => expect((await fetch(`http://${operator.probeAddress}/readyz`)).status).toBe(200));
  });
});
