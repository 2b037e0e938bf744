import { describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { planBatch, planDeletion, type Plan } from '../../src/batch/plan.js';
import type { ObservedBinding, ObservedExchange, ObservedQueue, ObservedVhost } from '../../src/model/observed.js';

const spec = (input: Partial<RabbitQueueBatchSpecInput>) => specSchema.parse(input);
/** An observed vhost the test fills in (the cache hands out read-only maps; a test builds its own). */
const empty = () => ({ vhost: '/', exists: true, exchanges: new Map<string, ObservedExchange>(), queues: new Map<string, ObservedQueue>(), bindings: [] as ObservedBinding[] }) satisfies ObservedVhost;
const opTypes = (plan: Plan) => plan.phases.map((p) => p.map((o) => `${o.type}:${o.resource}`));
const decisions = (plan: Plan) => Object.fromEntries(plan.items.map((i) => [i.resource, i.decision]));

const ordersSpec = spec({
  exchanges: [{ name: 'orders', type: 'topic' }],
  queues: [{ name: 'orders.created', arguments: { 'x-message-ttl': 60000 } }],
  bindings: [{ source: 'orders', destination: 'orders.created', routingKey: 'created.#' }],
});

describe('planBatch', () => {
  it('creates exchanges, then queues, then bindings, from an empty vhost', () => {
    const plan = planBatch({ spec: ordersSpec, observed: empty() });
    expect(opTypes(plan)).toEqual([
      ['declareExchange:exchange/orders'],
      ['declareQueue:queue/orders.created'],
      ['bind:binding/orders/orders.created/created.#'],
    ]);
  });

  it('does nothing when RabbitMQ already matches', () => {
    const observed = empty();
    observed.exchanges.set('orders', { name: 'orders', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} });
    observed.queues.set('orders.created', { name: 'orders.created', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': 60000 } });
    observed.bindings.push({ source: 'orders', destination: 'orders.created', destinationType: 'queue', routingKey: 'created.#', arguments: {}, propertiesKey: 'created.%23' });
    const plan = planBatch({ spec: ordersSpec, observed });
    expect(plan.phases).toEqual([]);
    expect(Object.values(decisions(plan))).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('reports argument drift as a conflict naming desired and actual values, and never deletes', () => {
    const observed = empty();
    observed.queues.set('orders.created', { name: 'orders.created', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': 30000 } });
    const plan = planBatch({ spec: ordersSpec, observed });
    const item = plan.items.find((i) => i.resource === 'queue/orders.created');
    expect(item?.decision).toBe('conflict');
    expect(item?.message).toContain('arguments.x-message-ttl: desired 60000, actual 30000');
    expect(item?.message).toContain('RecreateIfEmpty');
    expect(plan.phases.flat().some((o) => o.type.startsWith('delete'))).toBe(false);
  });

  it('reports a type change as a conflict, or recreates when the spec opts in', () => {
    const observed = empty();
    observed.queues.set('q', { name: 'q', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    const quorum = { queues: [{ name: 'q', type: 'quorum' as const }] };
    expect(planBatch({ spec: spec(quorum), observed }).items[0]?.message).toContain('type: desired "quorum", actual "classic"');
    const plan = planBatch({ spec: spec({ ...quorum, onConflict: 'RecreateIfEmpty' }), observed });
    expect(opTypes(plan)).toEqual([['recreateQueue:queue/q']]);
  });

  it('prunes only what the batch owns, bindings before queues before exchanges', () => {
    const observed = empty();
    observed.exchanges.set('old', { name: 'old', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: {} });
    observed.queues.set('old.q', { name: 'old.q', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    observed.queues.set('someone.elses', { name: 'someone.elses', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    observed.bindings.push({ source: 'old', destination: 'old.q', destinationType: 'queue', routingKey: 'k', arguments: {}, propertiesKey: 'k' });
    const owned = new Set(['exchange/old', 'queue/old.q', 'binding/old/old.q/k', 'queue/already-gone']);
    const plan = planBatch({ spec: spec({}), observed, owned });
    expect(opTypes(plan)).toEqual([['unbind:binding/old/old.q/k'], ['deleteQueue:queue/old.q'], ['deleteExchange:exchange/old']]);
  });

  it('marks an item claimed by another batch as a conflict naming that batch', () => {
    const plan = planBatch({ spec: ordersSpec, observed: empty(), claimedBy: (r) => (r === 'queue/orders.created' ? 'team-a/orders' : undefined) });
    const item = plan.items.find((i) => i.resource === 'queue/orders.created');
    expect(item).toMatchObject({ decision: 'conflict' });
    expect(item?.message).toContain('team-a/orders');
    expect(plan.phases.flat().map((o) => o.resource)).not.toContain('queue/orders.created');
  });

  it('reports a missing external exchange', () => {
    const plan = planBatch({ spec: spec({ exchanges: [{ name: 'shared', external: true }] }), observed: empty() });
    expect(plan.items[0]).toMatchObject({ decision: 'missing' });
    expect(plan.phases).toEqual([]);
  });

  it('replaces a binding whose arguments changed: bind the new one, then unbind the old one it owns', () => {
    const observed = empty();
    observed.bindings.push({ source: 'orders', destination: 'orders.created', destinationType: 'queue', routingKey: 'created.#', arguments: { a: 1 }, propertiesKey: 'old' });
    const plan = planBatch({ spec: ordersSpec, observed, owned: new Set(['binding/orders/orders.created/created.#']) });
    expect(opTypes(plan).slice(-2)).toEqual([['bind:binding/orders/orders.created/created.#'], ['unbind:binding/orders/orders.created/created.#']]);
  });

  it('plans deletion of everything owned and nothing else', () => {
    const observed = empty();
    observed.queues.set('mine', { name: 'mine', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    observed.queues.set('theirs', { name: 'theirs', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    const plan = planDeletion(spec({ queues: [{ name: 'mine' }, { name: 'theirs' }] }), observed, new Set(['queue/mine']));
    expect(opTypes(plan)).toEqual([['deleteQueue:queue/mine']]);
  });
});
