/** `namesLookedAt`: the names a plan reads from the observed state, the cache's re-list hint. */
import { describe, expect, it } from 'vitest';
import { bindingId, exchangeId, queueId } from '../../src/model/identity.js';
import { namesLookedAt } from '../../src/batch/names-looked-at.js';

const binding = { source: 'orders', destination: 'orders.created', destinationType: 'queue' as const, routingKey: 'created.#' };
const spec = { exchanges: [{ name: 'orders' }], queues: [{ name: 'orders.created' }], bindings: [binding] };

describe('namesLookedAt', () => {
  it('names the spec items, binding ends and owned exchanges and queues', () => {
    const names = namesLookedAt({ ...spec, bindings: [{ ...binding, source: 'amq.topic' }] }, new Set([queueId('old.queue'), exchangeId('old.exchange')]));
    expect([...names!].sort()).toEqual(['amq.topic', 'old.exchange', 'old.queue', 'orders', 'orders.created']);
  });

  it('names the ends of an owned binding the spec no longer lists, and gives up (every name) when its id is ambiguous', () => {
    expect(namesLookedAt(spec, new Set([bindingId(binding)]))).toBeDefined();
    const gone = namesLookedAt(spec, new Set([bindingId({ source: 'old.src', destination: 'old.dst', destinationType: 'exchange', routingKey: 'gone' })]));
    expect([...gone!].sort()).toEqual(['old.dst', 'old.src', 'orders', 'orders.created']);
    // `/` in a name: the id does not split into source, destination and routing key unambiguously.
    expect(namesLookedAt(spec, new Set([bindingId({ ...binding, routingKey: 'a/b' })]))).toBeUndefined();
  });
});
