import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_EXCHANGES, type RabbitQueueBatchSpec } from '../../src/api/schema.js';
import { validateSpec } from '../../src/api/validate.js';
import { summary } from '../../src/cli/export-command.js';
import { readDefinitions } from '../../src/export/from-definitions.js';
import { readMto } from '../../src/export/from-mto.js';
import { manifestYaml, toManifests } from '../../src/export/manifests.js';
import { groupOf, pack } from '../../src/export/pack.js';
import { POLICY_REASON, select } from '../../src/export/select.js';
import { emptyTopology, ExportInputError, type Topology } from '../../src/export/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-export-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

const q = (name: string, extra: Partial<Topology['queues'][number]> = {}) => ({ vhost: '/', name, type: 'classic', durable: true, autoDelete: false, exclusive: false, arguments: {}, ...extra });
const x = (name: string, extra: Partial<Topology['exchanges'][number]> = {}) => ({ vhost: '/', name, type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {}, ...extra });
const bind = (source: string, destination: string, routingKey = '', extra: Partial<Topology['bindings'][number]> = {}) => ({ vhost: '/', source, destination, destinationType: 'queue' as const, routingKey, arguments: {}, ...extra });

function exportAll(t: Topology, maxItems = 1000) {
  const selection = select(t);
  const manifests = toManifests(selection.vhosts.flatMap((v) => pack(v, { kind: 'prefix' }, { maxItems, maxExchanges: MAX_EXCHANGES })), { adopt: 'IfIdentical', deletionPolicy: 'Retain', maxItems });
  return { manifests, skipped: selection.skipped, specs: manifests.map((m) => m.spec as unknown as RabbitQueueBatchSpec) };
}

describe('export: what is left out', () => {
  it('skips RabbitMQ\'s own and clients\' objects, and policies, each with a reason; exports the rest', () => {
    const t = emptyTopology();
    t.exchanges.push(x('amq.topic'), x('orders'), x('tmp.x', { autoDelete: true }), x('delayed', { type: 'x-delayed-message' }));
    t.queues.push(q('amq.gen-abc', { exclusive: true, autoDelete: true }), q('reply', { exclusive: true }), q('ad', { autoDelete: true }), q('orders.created', { type: 'quorum', arguments: { 'x-queue-type': 'quorum' } }), q('bad name'));
    t.bindings.push(bind('orders', 'orders.created', 'created.#'), bind('orders', 'amq.gen-abc', 'x'), bind('amq.topic', 'orders.created', 'all'));
    t.policies.push({ vhost: '/', name: 'ttl' });
    const { manifests, skipped } = exportAll(t);
    expect(manifests).toHaveLength(1);
    expect(manifests[0]?.spec).toMatchObject({
      exchanges: [{ name: 'orders', type: 'topic' }],
      queues: [{ name: 'orders.created', type: 'quorum' }],
      bindings: [{ source: 'orders', destination: 'orders.created', routingKey: 'created.#' }, { source: 'amq.topic', destination: 'orders.created', routingKey: 'all' }],
    });
    const why = Object.fromEntries(skipped.map((s) => [s.what, s.reason]));
    expect(Object.keys(why).sort()).toEqual([
      'binding/orders/amq.gen-abc/x (vhost /)',
      'exchange///amq.topic',
      'exchange///delayed',
      'exchange///tmp.x',
      'policy///ttl',
      'queue///ad',
      'queue///amq.gen-abc',
      'queue///bad name',
      'queue///reply',
    ]);
    expect(why['queue///amq.gen-abc']).toContain('server-named');
    expect(why['queue///reply']).toContain('exclusive');
    expect(why['exchange///delayed']).toContain('field type');
    expect(why['queue///bad name']).toContain('field name');
    expect(why['policy///ttl']).toBe(POLICY_REASON);
  });
});

describe('export: grouping and limits', () => {
  it('groups by name prefix, keeps bindings with their queue, and names the other end external', () => {
    const t = emptyTopology();
    t.exchanges.push(x('orders'));
    t.queues.push(q('orders.created'), q('billing.invoices'));
    t.bindings.push(bind('orders', 'orders.created'), bind('orders', 'billing.invoices', 'paid'));
    const { manifests } = exportAll(t);
    expect(manifests.map((m) => m.metadata.name)).toEqual(['default-billing', 'default-orders']);
    expect(manifests[0]?.spec).toMatchObject({ exchanges: [{ name: 'orders', external: true }], queues: [{ name: 'billing.invoices' }], bindings: [{ source: 'orders', destination: 'billing.invoices' }] });
    expect(summary(manifests, [{ what: 'queue///amq.gen-1', reason: 'server-named' }])).toBe('rabbitbatch export: 1 exchanges, 2 queues, 2 bindings, 0 policies exported in 2 batches; 1 skipped:\n  1 × server-named: queue///amq.gen-1\n');
    expect(groupOf('orders_v2', { kind: 'prefix' })).toBe('orders');
    expect(groupOf('team-a.orders', { kind: 'regex', pattern: /^[^.]+\.([^.]+)/ })).toBe('orders');
    expect(groupOf('zzz', { kind: 'regex', pattern: /^team-(\w+)/ })).toBe('other');
  });

  it('splits a group over the item and exchange limits; every batch is valid and every object declared exactly once', () => {
    const t = emptyTopology();
    for (let i = 0; i < 100; i++) t.exchanges.push(x(`big.x${String(i).padStart(3, '0')}`));
    for (let i = 0; i < 1500; i++) {
      t.queues.push(q(`big.q${String(i).padStart(4, '0')}`));
      t.bindings.push(bind(`big.x${String(i % 100).padStart(3, '0')}`, `big.q${String(i).padStart(4, '0')}`, 'k'));
    }
    const { specs } = exportAll(t);
    expect(specs.length).toBeGreaterThan(3);
    for (const s of specs) {
      expect(validateSpec(s).ok, JSON.stringify(validateSpec(s))).toBe(true);
      expect((s.exchanges ?? []).length).toBeLessThanOrEqual(MAX_EXCHANGES);
      expect((s.exchanges ?? []).length + (s.queues ?? []).length + (s.bindings ?? []).length).toBeLessThanOrEqual(1000);
    }
    const declared = (k: 'exchanges' | 'queues') => specs.flatMap((s) => (s[k] ?? []).filter((i) => !i.external).map((i) => i.name));
    expect(new Set(declared('exchanges')).size).toBe(100);
    expect(declared('exchanges')).toHaveLength(100);
    expect(declared('queues')).toHaveLength(1500);
    expect(specs.flatMap((s) => s.bindings ?? [])).toHaveLength(1500);
  });

  it('writes manifests as YAML a person can read, with the defaults left out', () => {
    const t = emptyTopology();
    t.queues.push(q('orders.created', { arguments: { 'x-message-ttl': 60000 } }));
    const yaml = manifestYaml(exportAll(t).manifests[0]!);
    expect(parse(yaml)).toEqual({ apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name: 'default-orders' }, spec: { vhost: '/', adopt: 'IfIdentical', deletionPolicy: 'Retain', queues: [{ name: 'orders.created', arguments: { 'x-message-ttl': 60000 } }] } });
  });
});

describe('export: definitions files', () => {
  const defs = { rabbit_version: '3.10.8', vhosts: [{ name: 'shop' }], queues: [{ name: 'orders', vhost: 'shop', durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' } }], exchanges: [], bindings: [], policies: [{ name: 'p', vhost: 'shop', pattern: '.*', definition: {} }] };

  it('reads queues, exchanges, bindings and policies, taking the type from x-queue-type', () => {
    const t = readDefinitions(file('defs.json', JSON.stringify(defs)));
    expect(t.queues).toEqual([{ vhost: 'shop', name: 'orders', type: 'quorum', durable: true, autoDelete: false, exclusive: false, arguments: { 'x-queue-type': 'quorum' } }]);
    expect(t.policies).toEqual([{ vhost: 'shop', name: 'p' }]);
  });

  it('refuses a file that is not one, naming the file; and an entry with a wrong field, naming the object and the field', () => {
    const notDefs = file('batch.json', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap' }));
    expect(() => readDefinitions(notDefs)).toThrow(ExportInputError);
    expect(() => readDefinitions(notDefs)).toThrow(`${notDefs} is not a RabbitMQ definitions file`);
    expect(() => readDefinitions(file('text.json', 'queues: []'))).toThrow('it is not JSON');
    const bad = file('bad.json', JSON.stringify({ ...defs, queues: [defs.queues[0], { name: 'broken', vhost: 'shop', durable: 'yes', auto_delete: false }] }));
    expect(() => readDefinitions(bad)).toThrow(`${bad}: queues[1] ("broken"): field durable:`);
  });

  it('refuses a vhost the file does not hold', () => {
    expect(() => readDefinitions(file('defs2.json', JSON.stringify(defs)), { vhost: 'nope' })).toThrow('vhost "nope" does not exist in');
  });
});

describe('export: the official operator\'s resources', () => {
  const list = (items: unknown[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });
  const ref = { name: 'rabbit' };
  const queue = { apiVersion: 'rabbitmq.com/v1beta1', kind: 'Queue', metadata: { name: 'orders', namespace: 'shop', uid: 'u1' }, spec: { name: 'orders.created', vhost: 'shop', durable: true, type: 'quorum', rabbitmqClusterReference: ref }, status: { conditions: [] } };
  const exchange = { apiVersion: 'rabbitmq.com/v1beta1', kind: 'Exchange', metadata: { name: 'orders-x', namespace: 'shop' }, spec: { name: 'orders', vhost: 'shop', type: 'topic', durable: true, rabbitmqClusterReference: ref } };
  const binding = { apiVersion: 'rabbitmq.com/v1beta1', kind: 'Binding', metadata: { name: 'b', namespace: 'shop' }, spec: { vhost: 'shop', source: 'orders', destination: 'orders.created', destinationType: 'queue', routingKey: 'created', rabbitmqClusterReference: ref } };

  it('reads a List and multi-document YAML with the operator\'s defaults', () => {
    const t = readMto(file('mto.json', list([queue, exchange, binding])));
    expect(t.queues).toEqual([{ vhost: 'shop', name: 'orders.created', type: 'quorum', durable: true, autoDelete: false, exclusive: false, arguments: {} }]);
    expect(t.exchanges).toEqual([{ vhost: 'shop', name: 'orders', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} }]);
    expect(t.bindings).toHaveLength(1);
    const docs = readMto(file('mto.yaml', 'apiVersion: rabbitmq.com/v1beta1\nkind: Queue\nmetadata: {name: q}\nspec: {name: plain, rabbitmqClusterReference: {name: rabbit}}\n---\n'));
    expect(docs.queues).toEqual([{ vhost: '/', name: 'plain', type: 'classic', durable: false, autoDelete: false, exclusive: false, arguments: {} }]);
  });

  it('refuses an unknown field, naming the file, the object and the field', () => {
    const path = file('typo.json', list([queue, { ...exchange, spec: { ...exchange.spec, durabel: true } }]));
    expect(() => readMto(path)).toThrow(`${path}: Exchange shop/orders-x: unknown field spec.durabel`);
    const nested = file('nested.json', list([{ ...queue, spec: { ...queue.spec, rabbitmqClusterReference: { name: 'r', secret: 'x' } } }]));
    expect(() => readMto(nested)).toThrow('Queue shop/orders: unknown field spec.rabbitmqClusterReference.secret');
    const top = file('top.json', list([{ ...queue, extra: 1 }]));
    expect(() => readMto(top)).toThrow('unknown field extra');
    const other = file('other.json', list([{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} }]));
    expect(() => readMto(other)).toThrow('Deployment d (apps/v1) is not a messaging-topology-operator resource');
  });
});
