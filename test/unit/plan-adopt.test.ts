import { describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { planBatch } from '../../src/batch/plan.js';
import type { ObservedVhost } from '../../src/model/observed.js';

const spec = (input: Partial<RabbitQueueBatchSpecInput>) => specSchema.parse(input);
const decisions = (items: { resource: string; decision: string }[]) => Object.fromEntries(items.map((i) => [i.resource, i.decision]));

function observed(ttl = 60000): ObservedVhost {
  return {
    vhost: '/',
    exists: true,
    exchanges: new Map([
      ['orders', { name: 'orders', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} }],
      ['amq.topic', { name: 'amq.topic', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} }],
    ]),
    queues: new Map([['orders.created', { name: 'orders.created', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': ttl } }]]),
    bindings: [{ source: 'orders', destination: 'orders.created', destinationType: 'queue', routingKey: 'created.#', arguments: {}, propertiesKey: 'created.%23' }],
  };
}

const base: Partial<RabbitQueueBatchSpecInput> = {
  exchanges: [{ name: 'orders', type: 'topic' }, { name: 'amq.topic', external: true }],
  queues: [{ name: 'orders.created', arguments: { 'x-message-ttl': 60000 } }],
  bindings: [{ source: 'orders', destination: 'orders.created', routingKey: 'created.#' }],
};

describe('planBatch with adopt', () => {
  it('defaults to Never: identical existing objects stay unchanged and unowned', () => {
    const plan = planBatch({ spec: spec(base), observed: observed() });
    expect(new Set(plan.items.map((i) => i.decision))).toEqual(new Set(['unchanged']));
  });

  it('IfIdentical: adopts every identical object not yet owned, with no operation; externals are never adopted', () => {
    const plan = planBatch({ spec: spec({ ...base, adopt: 'IfIdentical' }), observed: observed(), owned: new Set(['exchange/orders']) });
    expect(plan.phases).toEqual([]);
    expect(decisions(plan.items)).toEqual({
      'exchange/orders': 'unchanged',
      'exchange/amq.topic': 'unchanged',
      'queue/orders.created': 'adopt',
      'binding/orders/orders.created/created.#': 'adopt',
    });
  });

  it('IfIdentical: an object with other settings stays a conflict', () => {
    const plan = planBatch({ spec: spec({ ...base, adopt: 'IfIdentical' }), observed: observed(30000) });
    expect(decisions(plan.items)['queue/orders.created']).toBe('conflict');
    expect(plan.items.find((i) => i.resource === 'queue/orders.created')?.message).toContain('x-message-ttl: desired 60000, actual 30000');
  });

  it('IfIdentical: an object claimed by another batch is not adopted', () => {
    const plan = planBatch({ spec: spec({ ...base, adopt: 'IfIdentical' }), observed: observed(), claimedBy: (r) => (r === 'queue/orders.created' ? 'team-a/orders' : undefined) });
    expect(decisions(plan.items)['queue/orders.created']).toBe('conflict');
    expect(decisions(plan.items)['exchange/orders']).toBe('adopt');
  });
});
