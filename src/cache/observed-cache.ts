/**
 * The cache of observed RabbitMQ state: what the planner reads before every reconcile.
 *
 * Entries are per vhost and kind, keyed `{resource}:list:{vhost}:*@{broker}` (and
 * `vhost:get:{vhost}:-@{broker}` for existence). The broker is the client's `broker` (the cluster
 * name, shared by every connection to one broker) or else its endpoint: two Secrets for one
 * broker share one partition, and the broker's event stream keeps it true. The operator's own writes update the entries
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
 * - Somebody else's change (another replica's writes, a change by hand) never aborts a load in
 *   flight: a deletion is applied exactly (to the entry, or to the load's result), and a
 *   creation, whose settings the event does not carry, marks that name unknown. `observe` re-lists
 *   a kind when an unknown name is one the caller asked for (`wanted`; every name when it gives
 *   none), so replicas creating disjoint objects in one vhost do not make each other re-list it.
 * - `observe` returns a snapshot: later writes never change what an earlier caller holds. L1
 *   keeps each list indexed by identity and hands that index out as is; a write copies it only
 *   when a caller holds the current version (copy on write), so a reconcile costs one copy of
 *   the vhost at most instead of one per observe and one per write.
 * - The echo of this process's own write is never drift, however many times it arrives (RabbitMQ
 *   3.10 publishes `queue.created`, `queue.deleted` and `exchange.created` twice): repeats within
 *   a few seconds of the first echo are echoes too. Somebody else's event about the same object
 *   ends that, so their change after ours is still seen.
 */
import { LRUCache } from 'lru-cache';
import type { ManagementApi, ObservedStateSource } from '../model/broker.js';
import { bindingId, bindingInstanceId, parseResource } from '../model/identity.js';
import type { ObservedBinding, ObservedExchange, ObservedPolicy, ObservedQueue, ObservedVhost, RabbitEvent } from '../model/observed.js';
import type { Operation } from '../model/operation.js';
import { queueArguments } from '../model/queue-arguments.js';
import type { SharedCache } from './shared-cache.js';

type Kind = 'queue' | 'exchange' | 'binding' | 'vhost' | 'policy' | 'operator-policy';
/** What the loader and the L2 hold: plain JSON. */
type RawEntry = { items: unknown[] } | { exists: boolean };
type Entry = ListEntry | { exists: boolean };
type Loader = () => Promise<RawEntry>;

/**
 * L1 form of a list: items by identity (name; a binding by source, destination, type and
 * properties key), and whether a snapshot of this version has been handed out, after which it
 * must not change in place.
 */
class ListEntry {
  handedOut = false;
  #bindings?: ObservedBinding[];
  constructor(
    readonly kind: Exclude<Kind, 'vhost'>,
    readonly byId: Map<string, unknown>,
  ) {}

  static of(kind: Exclude<Kind, 'vhost'>, items: unknown[]): ListEntry {
    return new ListEntry(kind, new Map(items.map((i) => [itemId(kind, i), i])));
  }

  get items(): unknown[] {
    return [...this.byId.values()];
  }

  /** The bindings as an array, built once per version. */
  bindings(): ObservedBinding[] {
    return (this.#bindings ??= this.items as ObservedBinding[]);
  }

  /** This entry if nobody holds it, else a copy to change instead. */
  writable(): ListEntry {
    return this.handedOut ? new ListEntry(this.kind, new Map(this.byId)) : this;
  }

  changed(): void {
    this.#bindings = undefined;
  }
}

function itemId(kind: Exclude<Kind, 'vhost'>, item: unknown): string {
  return kind === 'binding' ? bindingInstanceId(item as ObservedBinding) : (item as { name: string }).name;
}

/** The broker part of a key (a cluster name such as `rabbit@host` may itself hold an `@`). */
function brokerOfKey(key: string): string {
  const at = key.search(/:[*-]@/);
  return at < 0 ? '' : key.slice(at + 3);
}

function kindOfKey(key: string): Kind {
  return key.slice(0, key.indexOf(':')) as Kind;
}

/** The L1 form of a loaded or shared entry. */
function toEntry(key: string, raw: RawEntry): Entry {
  const kind = kindOfKey(key);
  return kind === 'vhost' || !('items' in raw) ? (raw as { exists: boolean }) : ListEntry.of(kind, raw.items);
}

/** A loaded entry without the names deleted while it was loading. */
function withoutDeleted(entry: Entry, deleted: ReadonlySet<string>): Entry {
  if (!(entry instanceof ListEntry) || deleted.size === 0) return entry;
  for (const name of deleted) entry.byId.delete(name);
  return entry;
}

/** The JSON form for the L2. */
function toRaw(entry: Entry): RawEntry {
  return entry instanceof ListEntry ? { items: entry.items } : entry;
}
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

const KINDS: Kind[] = ['vhost', 'exchange', 'queue', 'binding', 'policy', 'operator-policy'];

/** The cache partition of a client: its broker once known, else its endpoint. */
export const brokerOf = (api: Pick<ManagementApi, 'endpoint' | 'broker'>): string => api.broker ?? api.endpoint;

/** How long a write of ours waits for its echo, and how long after the first echo a repeat still is one. */
const OWN_WRITE_MS = 60_000;
const ECHO_REPEAT_MS = 5_000;
const ACTIONS = ['created', 'deleted', 'set', 'cleared'] as const;

export const cacheKey = (kind: Kind, endpoint: string, vhost: string) => (kind === 'vhost' ? `vhost:get:${vhost}:-@${endpoint}` : `${kind}:list:${vhost}:*@${endpoint}`);

export class CachedObservedState implements ObservedStateSource {
  private readonly lru: LRUCache<string, Entry, Loader>;
  private readonly ttlListsMs: number;
  private readonly ttlMetadataMs: number;
  private readonly live = new Set<string>();
  private readonly counters = { hits: 0, misses: 0, evictions: 0 };
  private readonly invalidations: Record<InvalidationSource, number> = { write: 0, event: 0, resync: 0, redis: 0, 'stream-lost': 0 };
  /** Objects this process just wrote, so their own events are not mistaken for drift. */
  private readonly ownWrites = new Map<string, { at: number; echoedAt?: number }>();
  /** Per list key: names created by somebody else since the last load began (settings unknown). */
  private readonly unknown = new Map<string, Set<string>>();
  /** Per list key with a load in flight: names somebody else deleted meanwhile, removed from its result. */
  private readonly loading = new Map<string, Set<string>>();

  constructor(private readonly o: CacheOptions = {}) {
    this.ttlListsMs = o.ttlListsMs ?? 60_000;
    this.ttlMetadataMs = o.ttlMetadataMs ?? 300_000;
    this.lru = new LRUCache<string, Entry, Loader>({
      max: o.maxSize ?? 1000,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (key, _stale, { context }) => {
        this.counters.misses++;
        // What was created before this load began is in its result; what comes during it is not known.
        this.unknown.delete(key);
        const deleted = new Set<string>();
        this.loading.set(key, deleted);
        try {
          const shared = await this.o.shared?.get(key);
          if (shared) return withoutDeleted(toEntry(key, shared as RawEntry), deleted);
          const value = await context();
          void this.o.shared?.set(key, value, this.ttlFor(key));
          return withoutDeleted(toEntry(key, value), deleted);
        } finally {
          if (this.loading.get(key) === deleted) this.loading.delete(key);
        }
      },
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') this.counters.evictions++;
      },
    });
    o.shared?.onInvalidate((keys) => this.drop(keys.includes('*') ? [...this.lru.keys()] : keys, 'redis', false));
  }

  /**
   * The vhost as known. `wanted`: the exchange and queue names the caller will look at (its spec,
   * binding ends and owned objects); a kind is re-listed only when one of them is unknown.
   * Defaults to every name.
   */
  async observe(api: ManagementApi, vhost: string, wanted?: ReadonlySet<string>): Promise<ObservedVhost> {
    const ep = brokerOf(api);
    const get = <T extends Entry>(kind: Kind, load: Loader) => this.fetchKnown(cacheKey(kind, ep, vhost), kind, load, wanted) as Promise<T>;
    const lists = Promise.all([
      get<ListEntry>('exchange', async () => ({ items: await api.listExchanges(vhost) })),
      get<ListEntry>('queue', async () => ({ items: await api.listQueues(vhost) })),
      get<ListEntry>('binding', async () => ({ items: await api.listBindings(vhost) })),
      get<ListEntry>('policy', async () => ({ items: await api.listPolicies(vhost, 'policy') })),
      get<ListEntry>('operator-policy', async () => ({ items: await api.listPolicies(vhost, 'operator-policy') })),
    ]);
    lists.catch(() => undefined);
    const { exists } = await get<{ exists: boolean }>('vhost', async () => ({ exists: await api.vhostExists(vhost) }));
    if (!exists) {
      this.drop(KINDS.filter((k) => k !== 'vhost').map((k) => cacheKey(k, ep, vhost)), 'write', false);
      return { vhost, exists: false, exchanges: new Map(), queues: new Map(), bindings: [] };
    }
    const entries = await lists;
    // Handed out as is: from now on a write copies these entries instead of changing them.
    for (const e of entries) e.handedOut = true;
    const [exchanges, queues, bindings, policies, operatorPolicies] = entries;
    return {
      vhost,
      exists: true,
      exchanges: exchanges.byId as Map<string, ObservedExchange>,
      queues: queues.byId as Map<string, ObservedQueue>,
      bindings: bindings.bindings(),
      policies: policies.byId as Map<string, ObservedPolicy>,
      operatorPolicies: operatorPolicies.byId as Map<string, ObservedPolicy>,
    };
  }

  /** Before an operation: remember it, so its event (which can beat the HTTP answer) is not drift. */
  expectWrite(_api: ManagementApi, vhost: string, op: Operation): void {
    this.noteOwnWrite(vhost, op);
  }

  /** Write-through after each operation the operator made; a failed one drops the entry. */
  recordWrite(api: ManagementApi, vhost: string, op: Operation, ok: boolean, propertiesKey?: string): void {
    if (op.type === 'putPolicy' || op.type === 'deletePolicy') return this.recordPolicyWrite(brokerOf(api), vhost, op, ok);
    const kind: Kind = op.type === 'declareExchange' || op.type === 'deleteExchange' ? 'exchange' : op.type === 'bind' || op.type === 'unbind' ? 'binding' : 'queue';
    const key = cacheKey(kind, brokerOf(api), vhost);
    const current = this.lru.get(key, { updateAgeOnGet: false });
    if (!ok || !(current instanceof ListEntry)) {
      this.drop([key], 'write');
      return;
    }
    if (op.type === 'bind' && propertiesKey === undefined) return this.drop([key], 'write');
    const entry = current.writable();
    const items = entry.byId;
    switch (op.type) {
      case 'declareExchange': {
        const e = op.exchange;
        items.set(e.name, { name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: e.arguments });
        break;
      }
      case 'declareQueue':
      case 'recreateQueue': {
        const q = op.queue;
        items.set(q.name, { name: q.name, type: q.type, durable: q.durable, autoDelete: q.autoDelete, arguments: queueArguments(q) });
        break;
      }
      case 'bind': {
        const b = op.binding;
        const observed: ObservedBinding = { source: b.source, destination: b.destination, destinationType: b.destinationType, routingKey: b.routingKey, arguments: b.arguments, propertiesKey: propertiesKey as string };
        items.set(itemId('binding', observed), observed);
        break;
      }
      case 'unbind':
        items.delete(itemId('binding', op.binding));
        break;
      case 'deleteQueue':
      case 'deleteExchange':
        items.delete(op.name);
        break;
    }
    entry.changed();
    this.store(key, entry);
    // The old queue took its bindings with it: the cached binding list no longer holds.
    if (op.type === 'recreateQueue') this.drop([cacheKey('binding', brokerOf(api), vhost)], 'write');
  }

  /**
   * A policy written: its list entry is updated; the queue list is dropped, since RabbitMQ
   * re-applies policies to the matching queues and each queue's `policy` changes with it.
   */
  private recordPolicyWrite(endpoint: string, vhost: string, op: Extract<Operation, { type: 'putPolicy' | 'deletePolicy' }>, ok: boolean): void {
    const key = cacheKey(op.kind, endpoint, vhost);
    this.drop([cacheKey('queue', endpoint, vhost)], 'write');
    const current = this.lru.get(key, { updateAgeOnGet: false });
    if (!ok || !(current instanceof ListEntry)) return this.drop([key], 'write');
    const entry = current.writable();
    if (op.type === 'deletePolicy') entry.byId.delete(op.name);
    else {
      const p = op.policy;
      const definition = Object.fromEntries(Object.entries(p.definition).filter(([, v]) => v !== undefined));
      entry.byId.set(p.name, { name: p.name, pattern: p.pattern, applyTo: p.applyTo, priority: p.priority, definition } satisfies ObservedPolicy);
    }
    entry.changed();
    this.store(key, entry);
  }

  invalidate(api: ManagementApi, vhost: string): void {
    this.drop(KINDS.map((k) => cacheKey(k, brokerOf(api), vhost)), 'write');
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
    if (e.kind === 'other') return false;
    if (e.kind === 'policy') return this.applyPolicyEvent(endpoint, e);
    const name = e.kind === 'binding' ? bindingId(e) : e.name;
    if (this.consumeOwn(e.vhost, e.kind, name, e.action)) return false;
    const key = cacheKey(e.kind, endpoint, e.vhost);
    const current = this.lru.get(key, { updateAgeOnGet: false });
    const inFlight = this.loading.get(key);
    this.invalidations.event++;
    if (e.action === 'deleted' && e.kind !== 'binding') {
      // Exact: the object is gone. Its bindings went with it (RabbitMQ sends binding.deleted first).
      inFlight?.add(e.name);
      if (current instanceof ListEntry && current.byId.has(e.name)) {
        const entry = current.writable();
        entry.byId.delete(e.name);
        entry.changed();
        this.store(key, entry);
      }
    } else if (current instanceof ListEntry || inFlight) {
      // Settings unknown (the event does not carry them): re-listed only for a caller that wants this name.
      // Dropping instead would abort the load in flight for every reconcile waiting on it.
      const names = this.unknown.get(key) ?? new Set<string>();
      names.add(name);
      this.unknown.set(key, names);
    }
    return true;
  }

  /**
   * `policy.set` / `policy.cleared`: RabbitMQ sends the same events for policies and operator
   * policies (3.10 sends none when an operator policy is cleared), so the name becomes unknown in
   * both lists and they are re-listed at the next observe; the queue list goes too (each queue's
   * effective policy may have changed).
   */
  private applyPolicyEvent(endpoint: string, e: Extract<RabbitEvent, { kind: 'policy' }>): boolean {
    if (this.consumeOwn(e.vhost, 'policy', e.name, e.action)) return false;
    this.invalidations.event++;
    const queues = cacheKey('queue', endpoint, e.vhost);
    if (!this.loading.has(queues)) this.drop([queues], 'event', false);
    for (const kind of ['policy', 'operator-policy'] as const) {
      const key = cacheKey(kind, endpoint, e.vhost);
      const names = this.unknown.get(key) ?? new Set<string>();
      this.unknown.set(key, names.add(e.name));
    }
    return true;
  }

  /** The event stream for `broker` is (un)subscribed: its entries stop or start expiring. */
  setEventsLive(broker: string, live: boolean): void {
    if (live) this.live.add(broker);
    else if (this.live.delete(broker)) this.invalidateBroker(broker, 'stream-lost');
  }

  invalidateAll(source: InvalidationSource): void {
    this.drop([...this.lru.keys()], source);
  }

  /** Drops every entry of one broker (its event stream (re)subscribed or was lost). */
  invalidateBroker(broker: string, source: InvalidationSource): void {
    this.drop([...this.lru.keys()].filter((k) => brokerOfKey(k) === broker), source);
  }

  async warm(api: ManagementApi, vhosts: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(vhosts)].map((v) => this.observe(api, v).catch(() => undefined)));
  }

  stats(): CacheStats {
    const { hits, misses, evictions } = this.counters;
    return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses), size: this.lru.size, evictions, invalidations: { ...this.invalidations } };
  }

  /** `fetch`, re-listing while a name the caller wants is unknown (a few times at most: events keep coming). */
  private async fetchKnown(key: string, kind: Kind, load: Loader, wanted: ReadonlySet<string> | undefined): Promise<Entry> {
    for (let attempt = 0; attempt < 3 && this.wantsUnknown(key, kind, wanted); attempt++) {
      // Only a settled entry is dropped: a load in flight is awaited, never aborted.
      if (!this.loading.has(key)) this.lru.delete(key);
      await this.fetch(key, load);
    }
    return this.fetch(key, load);
  }

  private wantsUnknown(key: string, kind: Kind, wanted: ReadonlySet<string> | undefined): boolean {
    const names = this.unknown.get(key);
    if (!names || names.size === 0) return false;
    // Policy lists are small and every name in them may matter (pruning): any unknown one re-lists.
    if (!wanted || kind === 'policy' || kind === 'operator-policy') return true;
    for (const n of names) {
      // A binding is known by its identity: wanted when either end is (or when its ends are ambiguous).
      if (kind !== 'binding') {
        if (wanted.has(n)) return true;
        continue;
      }
      const b = parseResource(n);
      if (b?.kind !== 'binding' || wanted.has(b.source) || wanted.has(b.destination)) return true;
    }
    return false;
  }

  private async fetch(key: string, load: Loader): Promise<Entry> {
    if (this.lru.has(key)) this.counters.hits++;
    const value = await this.lru.fetch(key, { context: load, ttl: this.ttlFor(key) });
    if (value === undefined) throw new Error(`cache load of ${key} returned nothing`);
    return value;
  }

  private store(key: string, value: Entry): void {
    this.lru.set(key, value, { ttl: this.ttlFor(key) });
    if (this.o.shared) void this.o.shared.set(key, toRaw(value), this.ttlFor(key));
  }

  private ttlFor(key: string): number {
    if (key.startsWith('vhost:')) return this.ttlMetadataMs;
    return this.live.has(brokerOfKey(key)) ? 0 : this.ttlListsMs;
  }

  private drop(keys: string[], source: InvalidationSource, broadcast = true): void {
    if (keys.length === 0) return;
    for (const k of keys) {
      this.lru.delete(k);
      this.unknown.delete(k);
    }
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
        // Deleting the queue deletes its bindings: those events are this write's echo too.
        for (const b of op.bindings) this.noteOwn(vhost, 'binding', `${b.source}|${b.destination}|${b.routingKey}`, 'deleted');
        this.noteOwn(vhost, 'queue', op.queue.name, 'deleted');
        return this.noteOwn(vhost, 'queue', op.queue.name, 'created');
      case 'bind':
      case 'unbind':
        return this.noteOwn(vhost, 'binding', bindingId(op.binding), op.type === 'bind' ? 'created' : 'deleted');
      case 'deleteQueue':
        return this.noteOwn(vhost, 'queue', op.name, 'deleted');
      case 'deleteExchange':
        return this.noteOwn(vhost, 'exchange', op.name, 'deleted');
      case 'putPolicy':
        return this.noteOwn(vhost, 'policy', op.policy.name, 'set');
      case 'deletePolicy':
        return this.noteOwn(vhost, 'policy', op.name, 'cleared');
    }
  }

  private noteOwn(vhost: string, kind: Kind, name: string, action: 'created' | 'deleted' | 'set' | 'cleared'): void {
    const now = Date.now();
    this.ownWrites.set(`${vhost}|${kind}|${name}|${action}`, { at: now });
    if (this.ownWrites.size > 10_000) for (const [k, w] of this.ownWrites) if (now - w.at > OWN_WRITE_MS) this.ownWrites.delete(k);
  }

  private consumeOwn(vhost: string, kind: Kind, name: string, action: string): boolean {
    const key = `${vhost}|${kind}|${name}|${action}`;
    const w = this.ownWrites.get(key);
    const now = Date.now();
    if (w === undefined || now - w.at > OWN_WRITE_MS) return this.forgetOwn(vhost, kind, name);
    if (w.echoedAt === undefined) {
      // The newest echo of this object: its older ones (another action) are over.
      for (const other of ACTIONS) if (other !== action && this.ownWrites.get(`${vhost}|${kind}|${name}|${other}`)?.echoedAt !== undefined) this.ownWrites.delete(`${vhost}|${kind}|${name}|${other}`);
      w.echoedAt = now;
      return true;
    }
    if (now - w.echoedAt <= ECHO_REPEAT_MS) return true;
    this.ownWrites.delete(key);
    return false;
  }

  /** Somebody else's event about this object: no later event of it is our echo. Returns false. */
  private forgetOwn(vhost: string, kind: Kind, name: string): false {
    for (const action of ACTIONS) this.ownWrites.delete(`${vhost}|${kind}|${name}|${action}`);
    return false;
  }
}
