/**
 * An in-memory cache of Kubernetes objects keyed `namespace/name` (`name` for cluster-scoped
 * objects), modelled on kube-rs `reflector::store`: one writer (the reflector), many readers.
 * `createStore()` hands out the two halves separately so only the reflector can change it.
 *
 * Objects are deep-frozen when stored: a reader that changes one in place (adding a finalizer,
 * say) would silently corrupt the cache for every other reader, so it gets a TypeError
 * instead. Copy with `structuredClone` before changing.
 */

/** The part of `metadata` the runtime relies on; everything else is carried as-is. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  finalizers?: string[];
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Any Kubernetes object, treated as plain JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** `namespace/name`, or `name` for a cluster-scoped object (the format client-go uses). */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error('object has no metadata.name');
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by `objectKey`; `namespace` is '' for cluster-scoped objects. */
export function parseKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/** Computes the values under which an object is indexed (e.g. the RabbitMQ objects it declares). */
export type IndexFunc<T> = (obj: T) => readonly string[];

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** State shared by the reader and the writer halves; not exported. */
class StoreState<T extends KubeObject> {
  objects = new Map<string, T>();
  indexers = new Map<string, IndexFunc<T>>();
  /** index name → value → keys */
  indices = new Map<string, Map<string, Set<string>>>();
  synced = false;
  syncWaiters: Array<() => void> = [];

  indexAdd(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    const index = this.indices.get(name);
    if (!index) return;
    for (const value of fn(obj)) {
      let keys = index.get(value);
      if (!keys) index.set(value, (keys = new Set()));
      keys.add(key);
    }
  }

  indexRemove(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    const index = this.indices.get(name);
    if (!index) return;
    for (const value of fn(obj)) {
      const keys = index.get(value);
      keys?.delete(key);
      if (keys?.size === 0) index.delete(value);
    }
  }

  put(key: string, obj: T): void {
    const old = this.objects.get(key);
    for (const [name, fn] of this.indexers) {
      if (old) this.indexRemove(name, fn, key, old);
      this.indexAdd(name, fn, key, obj);
    }
    this.objects.set(key, obj);
  }

  remove(key: string): T | undefined {
    const old = this.objects.get(key);
    if (!old) return undefined;
    for (const [name, fn] of this.indexers) this.indexRemove(name, fn, key, old);
    this.objects.delete(key);
    return old;
  }

  rebuildIndices(): void {
    for (const [name, fn] of this.indexers) {
      this.indices.set(name, new Map());
      for (const [key, obj] of this.objects) this.indexAdd(name, fn, key, obj);
    }
  }
}

/** The read-only half: what controllers and reconcilers see. */
export class Store<T extends KubeObject> {
  readonly #state: StoreState<T>;

  /** @internal use `createStore()`. */
  constructor(state: StoreState<T>) {
    this.#state = state;
  }

  get(key: string): T | undefined {
    return this.#state.objects.get(key);
  }

  list(): T[] {
    return [...this.#state.objects.values()];
  }

  keys(): string[] {
    return [...this.#state.objects.keys()];
  }

  get size(): number {
    return this.#state.objects.size;
  }

  /** True once the first complete list has been stored. */
  hasSynced(): boolean {
    return this.#state.synced;
  }

  /** Resolves once the first complete list has been stored; rejects when `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#state.synced) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#state.syncWaiters = this.#state.syncWaiters.filter((w) => w !== done);
        reject(signal?.reason as Error);
      };
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#state.syncWaiters.push(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Registers an index; `byIndex(name, value)` then returns every object for which `fn`
   * returned `value`. May be called before or after objects arrive.
   */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.#state.indexers.has(name)) throw new Error(`index "${name}" already exists`);
    this.#state.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.#state.indices.set(name, index);
    for (const [key, obj] of this.#state.objects) this.#state.indexAdd(name, fn, key, obj);
  }

  byIndex(name: string, value: string): T[] {
    const index = this.#state.indices.get(name);
    if (!index) throw new Error(`no index named "${name}"`);
    const out: T[] = [];
    for (const key of index.get(value) ?? []) {
      const obj = this.#state.objects.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }
}

/** The writing half, held by the reflector alone. */
export class StoreWriter<T extends KubeObject> {
  readonly #state: StoreState<T>;

  /** @internal use `createStore()`. */
  constructor(state: StoreState<T>) {
    this.#state = state;
  }

  /** Stores `obj` (frozen) and returns what it replaced. */
  apply(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.#state.objects.get(key);
    this.#state.put(key, deepFreeze(obj));
    return old;
  }

  /** Removes the object with `obj`'s key and returns what was stored. */
  delete(obj: T): T | undefined {
    return this.#state.remove(objectKey(obj));
  }

  /**
   * Replaces the whole content with a complete list, in one step: readers never see a half
   * relisted store. Returns the keys that were stored before and are absent now (objects
   * deleted while the watch was down) so the caller can act on them; no delete events are
   * invented. Marks the store synced.
   */
  replace(objects: readonly T[]): { vanished: string[] } {
    const next = new Map<string, T>();
    for (const obj of objects) next.set(objectKey(obj), deepFreeze(obj));
    const vanished = [...this.#state.objects.keys()].filter((k) => !next.has(k));
    this.#state.objects = next;
    this.#state.rebuildIndices();
    if (!this.#state.synced) {
      this.#state.synced = true;
      const waiters = this.#state.syncWaiters;
      this.#state.syncWaiters = [];
      for (const w of waiters) w();
    }
    return { vanished };
  }
}

/** A new empty store: give `store` to readers and `writer` to exactly one reflector. */
export function createStore<T extends KubeObject>(): { store: Store<T>; writer: StoreWriter<T> } {
  const state = new StoreState<T>();
  return { store: new Store(state), writer: new StoreWriter(state) };
}
