/**
 * The cache of observed RabbitMQ state: what the planner reads before every reconcile.
 *
 * Entries are per vhost and kind, keyed `{resource}:list:{vhost}:*@{endpoint}` (and
 * `vhost:get:{vhost}:-@{endpoint}` for existence). The operator's own writes update the entries
 * in place (write-through), so applying a batch never forces a re-list; RabbitMQ's event stream
 * keeps them true when someone else changes the broker. While the event stream is subscribed for
 * an endpoint, list entries do not expire (events keep them fresh, and the periodic full re-list
 * is the safety net); without it they live `ttlListsMs`.
 *
 * Guarantees
 * - Concurrent misses of one key are collapsed into one request (lru-cache's `fetchMethod`).
 * - An operation that failed, or an event the cache cannot apply exactly, drops the entry: the
 *   next read re-lists. A wrong entry is never kept on purpose.
 * - With an L2 (Redis), invalidations are broadcast to every replica.
 */
import { LRUCache } from 'lru-cache';
import type { Operation } from '../batch/plan.js';
import type { ManagementApi } from '../rabbit/management-api.js';
import type { ObservedStateSource } from '../rabbit/observe.js';
import { queueArguments } from '../rabbit/queue-arguments.js';
import type { ObservedBinding, ObservedExchange, ObservedQueue, ObservedVhost } from '../rabbit/types.js';
import type { RabbitEvent } from '../rabbit/event-stream.js';
import type { SharedCache } from './shared-cache.js';

type Kind = 'queue' | 'exchange' | 'binding' | 'vhost';
type Entry = { items: unknown[] } | { exists: boolean };
type Loader = () => Promise<Entry>;
export type InvalidationSource = 'write' | 'event' | 'resync' | 'redis' | 'stream-lost';

export interface CacheOptions {
  /** Life of list entries without a live event stream. Defaults to 60000 ms (CACHE_TTL_LISTS). */
  ttlListsMs?: number;
  /** Life of vhost-existence entries. Defaults to 300000 ms (CACHE_TTL_METADATA). */
  ttlMetadataMs?: number;
  /** Entries at most; the least recently used are evicted. Defaults to 1000 (CACHE_MAX_SIZE). */
  maxSize?: number;
  /** A second level shared by replicas (Redis). Defaults to none. */
  shared?: SharedCache;
}

export interface CacheStats {
  hits: number;
  misses: number;
  hitRate: number;
  size: number;
  evictions: number;
  invalidations: Record<InvalidationSource, number>;
}

const KINDS: Kind[] = ['vhost', 'exchange', 'queue', 'binding'];

export const cacheKey = (kind: Kind, endpoint: string, vhost: string) => (kind === 'vhost' ? `vhost:get:${vhost}:-@${endpoint}` : `${kind}:list:${vhost}:*@${endpoint}`);

export class CachedObservedState implements ObservedStateSource {
  private readonly lru: LRUCache<string, Entry, Loader>;
  private readonly ttlListsMs: number;
  private readonly ttlMetadataMs: number;
  private readonly live = new Set<string>();
  private readonly counters = { hits: 0, misses: 0, evictions: 0 };
  private readonly invalidations: Record<InvalidationSource, number> = { write: 0, event: 0, resync: 0, redis: 0, 'stream-lost': 0 };
  /** Objects this process just wrote, so their own events are not mistaken for drift. */
  private readonly ownWrites = new Map<string, number>();

  constructor(private readonly o: CacheOptions = {}) {
    this.ttlListsMs = o.ttlListsMs ?? 60_000;
    this.ttlMetadataMs = o.ttlMetadataMs ?? 300_000;
    this.lru = new LRUCache<string, Entry, Loader>({
      max: o.maxSize ?? 1000,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (key, _stale, { context }) => {
        this.counters.misses++;
        const shared = await this.o.shared?.get(key);
        if (shared) return shared as Entry;
        const value = await context();
        void this.o.shared?.set(key, value, this.ttlFor(key));
        return value;
      },
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
    o.shared?.onInvalidate((keys) => this.drop(keys.includes('*') ? [...this.lru.keys()] : keys, 'redis', false));
  }

  async observe(api: ManagementApi, vhost: string): Promise<ObservedVhost> {
    const ep = api.endpoint;
    const get = <T extends Entry>(kind: Kind, load: () => Promise<T>) => this.fetch(cacheKey(kind, ep, vhost), load) as Promise<T>;
    const lists = Promise.all([
      get('exchange', async () => ({ items: await api.listExchanges(vhost) })),
      get('queue', async () => ({ items: await api.listQueues(vhost) })),
      get('binding', async () => ({ items: await api.listBindings(vhost) })),
    ]);
    lists.catch(() => undefined);
    const { exists } = await get('vhost', async () => ({ exists: await api.vhostExists(vhost) }));
    if (!exists) {
      this.drop(KINDS.filter((k) => k !== 'vhost').map((k) => cacheKey(k, ep, vhost)), 'write', false);
      return { vhost, exists: false, exchanges: new Map(), queues: new Map(), bindings: [] };
    }
    const [exchanges, queues, bindings] = (await lists).map((e) => e.items) as [ObservedExchange[], ObservedQueue[], ObservedBinding[]];
    return { vhost, exists: true, exchanges: new Map(exchanges.map((e) => [e.name, e])), queues: new Map(queues.map((q) => [q.name, q])), bindings: [...bindings] };
  }

  /** Before an operation: remember it, so its event (which can beat the HTTP answer) is not drift. */
  expectWrite(_api: ManagementApi, vhost: string, op: Operation): void {
    this.noteOwnWrite(vhost, op);
  }

  /** Write-through after each operation the operator made; a failed one drops the entry. */
  recordWrite(api: ManagementApi, vhost: string, op: Operation, ok: boolean, propertiesKey?: string): void {
    const kind: Kind = op.type === 'declareExchange' || op.type === 'deleteExchange' ? 'exchange' : op.type === 'bind' || op.type === 'unbind' ? 'binding' : 'queue';
    const key = cacheKey(kind, api.endpoint, vhost);
    const entry = this.lru.get(key, { updateAgeOnGet: false }) as { items: unknown[] } | undefined;
    if (!ok || !entry) {
      this.drop([key], 'write');
      return;
    }
    let items = entry.items;
    switch (op.type) {
      case 'declareExchange': {
        const e = op.exchange;
        items = [...items.filter((x) => (x as ObservedExchange).name !== e.name), { name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: e.arguments }];
        break;
      }
      case 'declareQueue':
      case 'recreateQueue': {
        const q = op.queue;
        items = [...items.filter((x) => (x as ObservedQueue).name !== q.name), { name: q.name, type: q.type, durable: q.durable, autoDelete: q.autoDelete, arguments: queueArguments(q) }];
        break;
      }
      case 'bind': {
        const b = op.binding;
        if (propertiesKey === undefined) return this.drop([key], 'write');
        items = [...items, { source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: b.arguments, propertiesKey }];
        break;
      }
      case 'unbind': {
        const b = op.binding;
        items = items.filter((x) => !sameBinding(x as ObservedBinding, b));
        break;
      }
      case 'deleteQueue':
      case 'deleteExchange':
        items = items.filter((x) => (x as { name: string }).name !== op.name);
        break;
    }
    this.store(key, { items });
  }

  invalidate(api: ManagementApi, vhost: string): void {
    this.drop(KINDS.map((k) => cacheKey(k, api.endpoint, vhost)), 'write');
  }

  /**
   * Applies one RabbitMQ event; returns true when it is somebody else's change (drift), false
   * for the echo of this process's own write.
   */
  applyEvent(endpoint: string, e: RabbitEvent): boolean {
    if (e.kind === 'vhost') {
      this.drop(KINDS.map((k) => cacheKey(k, endpoint, e.name)), 'event');
      return true;
    }
    if (e.kind === 'policy' || e.kind === 'other') return false;
    const name = e.kind === 'binding' ? `${e.source}|${e.destination}|${e.routingKey}` : e.name;
    if (this.consumeOwn(e.vhost, e.kind, name, e.action)) return false;
    const key = cacheKey(e.kind, endpoint, e.vhost);
    const entry = this.lru.get(key, { updateAgeOnGet: false }) as { items: { name?: string }[] } | undefined;
    if (entry && e.action === 'deleted' && e.kind !== 'binding') {
      // Exact: the object is gone. Its bindings went with it (RabbitMQ sends binding.deleted first).
      this.store(key, { items: entry.items.filter((x) => x.name !== e.name) });
      this.invalidations.event++;
    } else {
      this.drop([key], 'event');
    }
    return true;
  }

  /** The event stream for `endpoint` is (un)subscribed: entries stop or start expiring. */
  setEventsLive(endpoint: string, live: boolean): void {
    if (live) this.live.add(endpoint);
    else if (this.live.delete(endpoint)) this.invalidateAll('stream-lost');
  }

  invalidateAll(source: InvalidationSource): void {
    this.drop([...this.lru.keys()], source);
  }

  async warm(api: ManagementApi, vhosts: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(vhosts)].map((v) => this.observe(api, v).catch(() => undefined)));
  }

  stats(): CacheStats {
    const { hits, misses, evictions } = this.counters;
    return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), size: this.lru.size, evictions, invalidations: { ...this.invalidations } };
  }

  private async fetch(key: string, load: Loader): Promise<Entry> {
    if (this.lru.has(key)) this.counters.hits++;
    const value = await this.lru.fetch(key, { context: load, ttl: this.ttlFor(key) });
    if (value === undefined) throw new Error(`cache load of ${key} returned nothing`);
    return value;
  }

  private store(key: string, value: Entry): void {
    this.lru.set(key, value, { ttl: this.ttlFor(key) });
    void this.o.shared?.set(key, value, this.ttlFor(key));
  }

  private ttlFor(key: string): number {
    const endpoint = key.slice(key.lastIndexOf('@') + 1);
    if (key.startsWith('vhost:')) return this.ttlMetadataMs;
    return this.live.has(endpoint) ? 0 : this.ttlListsMs;
  }

  private drop(keys: string[], source: InvalidationSource, broadcast = true): void {
    if (keys.length === 0) return;
    for (const k of keys) this.lru.delete(k);
    this.invalidations[source] += keys.length;
    if (broadcast) void this.o.shared?.invalidate(keys);
  }

  private noteOwnWrite(vhost: string, op: Operation): void {
    switch (op.type) {
      case 'declareExchange':
        return this.noteOwn(vhost, 'exchange', op.exchange.name, 'created');
      case 'declareQueue':
        return this.noteOwn(vhost, 'queue', op.queue.name, 'created');
      case 'recreateQueue':
        this.noteOwn(vhost, 'queue', op.queue.name, 'deleted');
        return this.noteOwn(vhost, 'queue', op.queue.name, 'created');
      case 'bind':
      case 'unbind':
        return this.noteOwn(vhost, 'binding', `${op.binding.source}|${op.binding.destination}|${op.binding.routingKey}`, op.type === 'bind' ? 'created' : 'deleted');
      case 'deleteQueue':
        return this.noteOwn(vhost, 'queue', op.name, 'deleted');
      case 'deleteExchange':
        return this.noteOwn(vhost, 'exchange', op.name, 'deleted');
    }
  }

  private noteOwn(vhost: string, kind: Kind, name: string, action: 'created' | 'deleted'): void {
    const now = Date.now();
    this.ownWrites.set(`${vhost}|${kind}|${name}|${action}`, now);
    if (this.ownWrites.size > 10_000) for (const [k, t] of this.ownWrites) if (now - t > 60_000) this.ownWrites.delete(k);
  }

  private consumeOwn(vhost: string, kind: Kind, name: string, action: string): boolean {
    const key = `${vhost}|${kind}|${name}|${action}`;
    const at = this.ownWrites.get(key);
    if (at === undefined || Date.now() - at > 60_000) return false;
    this.ownWrites.delete(key);
    return true;
  }
}

function sameBinding(a: ObservedBinding, b: ObservedBinding): boolean {
  return a.source === b.source && a.destination === b.destination && a.destinationType === b.destinationType && a.propertiesKey === b.propertiesKey;
}
