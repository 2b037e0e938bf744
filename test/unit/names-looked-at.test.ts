/** `namesLookedAt`: the names a plan reads from the observed state, the cache's re-list hint. */
import { describe, expect, it } from 'vitest';
import { bindingId, exchangeId, namesLookedAt, queueId } from '../../src/batch/resources.js';

const binding = { source: 'orders', destination: 'orders.created', destinationType: 'queue' as const, routingKey: 'created.#' };
const spec = { exchanges: [{ name: 'orders' }], queues: [{ name: 'orders.created' }], bindings: [binding] };

describe('namesLookedAt', () => {
  it('names the spec items, binding ends and owned exchanges and queues', () => {
    const names = namesLookedAt({ ...spec, bindings: [{ ...binding, source: 'amq.topic' }] }, new Set([queueId('old.queue'), exchangeId('old.exchange')]));
    expect([...names!].sort()).toEqual(['amq.topic', 'old.exchange', 'old.queue', 'orders', 'orders.created']);
  });

  it('gives up (every name) for an owned binding the spec no longer lists', () => {
    expect(namesLookedAt(spec, new Set([bindingId(binding)]))).toBeDefined();
    expect(namesLookedAt(spec, new Set([bindingId({ ...binding, routingKey: 'gone' })]))).toBeUndefined();
  });
});
