/**
 * The cache's write-through against the real broker: after the operator's own writes (declare,
 * bind, unbind, delete) the cached view equals a fresh read of RabbitMQ, and a snapshot handed
 * out by `observe` never changes under its holder (the cache copies on write).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindingSchema, exchangeSchema, queueSchema } from '../../src/api/schema.js';
import type { Operation } from '../../src/model/operation.js';
import { CachedObservedState } from '../../src/cache/observed-cache.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { observeVhost } from '../../src/rabbit/observe.js';
import type { ObservedVhost } from '../../src/model/observed.js';
import { createTestVhost, rabbitUrl } from '../support/rabbit.js';

let vh: { name: string; cleanup: () => Promise<void> };
const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest', minSize: 1 });

beforeAll(async () => {
  vh = await createTestVhost('cachewt');
});
afterAll(async () => {
  await api.close();
  await vh.cleanup();
});

/** Names and binding identities, comparable between the cache and a fresh read. */
function shape(o: ObservedVhost) {
  return {
    exchanges: [...o.exchanges.keys()].sort(),
    queues: [...o.queues.keys()].sort(),
    bindings: o.bindings.map((b) => `${b.source}>${b.destination}:${b.routingKey}#${b.propertiesKey}`).sort(),
  };
}

describe('CachedObservedState write-through', () => {
  it('matches a fresh read of RabbitMQ after own writes; earlier snapshots stay as they were', async () => {
    const cache = new CachedObservedState();
    const vhost = vh.name;
    const first = await cache.observe(api, vhost);
    const firstShape = shape(first);

    const exchange = exchangeSchema.parse({ name: 'wt.x', type: 'topic' });
    const queues = ['wt.a', 'wt.b', 'wt.c'].map((name) => queueSchema.parse({ name }));
    await api.putExchange(vhost, exchange);
    cache.recordWrite(api, vhost, { type: 'declareExchange', resource: `exchange/${exchange.name}`, exchange }, true);
    for (const queue of queues) {
      await api.putQueue(vhost, queue);
      cache.recordWrite(api, vhost, { type: 'declareQueue', resource: `queue/${queue.name}`, queue }, true);
    }
    const second = await cache.observe(api, vhost);
    for (const name of ['wt.a', 'wt.b']) {
      const binding = bindingSchema.parse({ source: 'wt.x', destination: name, routingKey: `${name}.#` });
      const propertiesKey = await api.postBinding(vhost, binding);
      cache.recordWrite(api, vhost, { type: 'bind', resource: `binding/${name}`, binding }, true, propertiesKey);
    }
    // Unbind one and delete a queue, as pruning does.
    const unbind = (await observeVhost(api, vhost)).bindings.find((b) => b.destination === 'wt.b');
    if (!unbind) throw new Error('binding to wt.b not found');
    await api.deleteBinding(vhost, unbind);
    cache.recordWrite(api, vhost, { type: 'unbind', resource: 'binding/wt.b', binding: unbind } satisfies Operation, true);
    await api.deleteQueue(vhost, 'wt.c');
    cache.recordWrite(api, vhost, { type: 'deleteQueue', resource: 'queue/wt.c', name: 'wt.c' }, true);

    const requests = api.poolStats().requests;
    const cached = await cache.observe(api, vhost);
    expect(api.poolStats().requests).toBe(requests); // answered from the cache
    expect(shape(cached)).toEqual(shape(await observeVhost(api, vhost)));
    expect(shape(cached).queues).toEqual(expect.arrayContaining(['wt.a', 'wt.b']));
    expect(shape(cached).queues).not.toContain('wt.c');
    expect(cached.bindings.map((b) => b.destination)).toEqual(['wt.a']);

    // Snapshots handed out earlier did not move.
    expect(shape(first)).toEqual(firstShape);
    expect([...second.queues.keys()]).toEqual(expect.arrayContaining(['wt.a', 'wt.b', 'wt.c']));
    expect(second.bindings).toHaveLength(0);
  });
});
