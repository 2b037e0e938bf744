/**
 * The observed-state cache and somebody else's changes (another replica's writes, a change by
 * hand), on an in-memory management API: a foreign event never aborts a load in flight, a
 * foreign creation re-lists only for a caller that wants that name, and a foreign deletion is
 * applied exactly, also to a load that was in flight when it came.
 */
import { describe, expect, it } from 'vitest';
import { CachedObservedState } from '../../src/cache/observed-cache.js';
import type { ManagementApi } from '../../src/model/broker.js';
import type { ObservedQueue } from '../../src/model/observed.js';

/** A broker's queue list behind a gate: each listQueues waits for `release()` when `hold` is set. */
function fakeBroker(names: string[]) {
  const queues = new Set(names);
  const waiting: (() => void)[] = [];
  const b = {
    hold: false,
    queueLists: 0,
    queues,
    release: () => waiting.splice(0).forEach((go) => go()),
    api: {
      endpoint: 'fake',
      vhostExists: async () => true,
      listExchanges: async () => [],
      listBindings: async () => [],
      listPolicies: async () => [],
      listQueues: async (): Promise<ObservedQueue[]> => {
        b.queueLists++;
        const snapshot = [...queues];
        if (b.hold) await new Promise<void>((go) => waiting.push(go));
        return snapshot.map((name) => ({ name, type: 'classic', durable: true, autoDelete: false, arguments: {} }) as ObservedQueue);
      },
    } as unknown as ManagementApi,
  };
  return b;
}

const created = (name: string) => ({ kind: 'queue' as const, action: 'created', vhost: '/', name });
const deleted = (name: string) => ({ kind: 'queue' as const, action: 'deleted', vhost: '/', name });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('CachedObservedState with foreign events', () => {
  it('lets a load in flight finish when another replica creates or deletes a queue meanwhile', async () => {
    const broker = fakeBroker(['mine', 'theirs.old']);
    const cache = new CachedObservedState();
    broker.hold = true;
    const observing = cache.observe(broker.api, '/', new Set(['mine']));
    await tick();
    broker.queues.add('theirs.new');
    expect(cache.applyEvent('fake', created('theirs.new'))).toBe(true);
    broker.queues.delete('theirs.old');
    expect(cache.applyEvent('fake', deleted('theirs.old'))).toBe(true);
    broker.release();
    const observed = await observing;
    // The load was listed before the deletion: the deletion is applied to its result.
    expect([...observed.queues.keys()].sort()).toEqual(['mine']);
    expect(broker.queueLists).toBe(1);
  });

  it('re-lists after a foreign creation only for a caller that wants that name', async () => {
    const broker = fakeBroker(['mine']);
    const cache = new CachedObservedState();
    await cache.observe(broker.api, '/', new Set(['mine']));
    broker.queues.add('theirs');
    cache.applyEvent('fake', created('theirs'));
    await cache.observe(broker.api, '/', new Set(['mine']));
    expect(broker.queueLists).toBe(1);

    const wanting = await cache.observe(broker.api, '/', new Set(['mine', 'theirs']));
    expect(wanting.queues.has('theirs')).toBe(true);
    expect(broker.queueLists).toBe(2);
    // Known now: nobody re-lists for it again.
    await cache.observe(broker.api, '/');
    expect(broker.queueLists).toBe(2);
  });

  it('re-lists for a caller that names nothing while any foreign creation is unknown', async () => {
    const broker = fakeBroker(['mine']);
    const cache = new CachedObservedState();
    await cache.observe(broker.api, '/');
    broker.queues.add('theirs');
    cache.applyEvent('fake', created('theirs'));
    expect((await cache.observe(broker.api, '/')).queues.has('theirs')).toBe(true);
    expect(broker.queueLists).toBe(2);
  });

  it('applies a foreign deletion to a settled entry without a re-list', async () => {
    const broker = fakeBroker(['mine', 'theirs']);
    const cache = new CachedObservedState();
    await cache.observe(broker.api, '/');
    broker.queues.delete('mine');
    cache.applyEvent('fake', deleted('mine'));
    expect((await cache.observe(broker.api, '/', new Set(['mine']))).queues.has('mine')).toBe(false);
    expect(broker.queueLists).toBe(1);
  });

  it('tells a binding to queue x from a binding to exchange x: its own echo of one is not the echo of the other', () => {
    const cache = new CachedObservedState();
    const toQueue: { source: string; destination: string; destinationType: 'queue' | 'exchange'; routingKey: string; arguments: Record<string, string> } = { source: 'src', destination: 'x', destinationType: 'queue', routingKey: 'k', arguments: {} };
    const toExchange = { ...toQueue, destinationType: 'exchange' as const };
    const bindEvent = (b: typeof toQueue, action: string) => ({ kind: 'binding' as const, action, vhost: '/', source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey });
    // The operator binds to the queue; somebody else unbinds the exchange of the same name.
    cache.expectWrite(fakeBroker([]).api, '/', { type: 'bind', resource: 'binding/src/x/k', binding: toQueue });
    cache.expectWrite(fakeBroker([]).api, '/', { type: 'unbind', resource: 'binding/src/x/k', binding: { ...toQueue, propertiesKey: 'k' } });
    expect(cache.applyEvent('fake', bindEvent(toExchange, 'created'))).toBe(true);
    expect(cache.applyEvent('fake', bindEvent(toExchange, 'deleted'))).toBe(true);
    // The operator's own echoes are still recognised as such.
    expect(cache.applyEvent('fake', bindEvent(toQueue, 'created'))).toBe(false);
    expect(cache.applyEvent('fake', bindEvent(toQueue, 'deleted'))).toBe(false);
  });
});
