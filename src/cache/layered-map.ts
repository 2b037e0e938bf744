/**
 * A read-only map made of a shared base and a small layer of changes on top: how the
 * observed-state cache hands out a vhost's list as a snapshot and still takes writes without
 * copying the whole list each time. A new version shares the base and copies only the layer;
 * once the layer outgrows an eighth of the base (256 entries at least) the next version is
 * folded into a new base, so a run of writes costs a full copy every few hundred writes instead
 * of one per write after each observe (a 10,000-queue vhost's Map is ~0.5 MB, in V8's
 * large-object space, collected only by full GCs).
 *
 * Guarantees
 * - The base is never changed once built: a version that was handed out reads the same forever
 *   as long as nobody writes to it (the cache only writes to versions it has not handed out).
 * - Iteration yields base entries in base order (changed values in place), then added ones.
 */
const GONE: unique symbol = Symbol('gone');

export class LayeredMap<V> implements ReadonlyMap<string, V> {
  #size: number;

  private constructor(
    private readonly base: ReadonlyMap<string, V>,
    private readonly layer: Map<string, V | typeof GONE>,
    size: number,
  ) {
    this.#size = size;
  }

  static of<V>(entries: Iterable<readonly [string, V]>): LayeredMap<V> {
    const base = new Map(entries);
    return new LayeredMap(base, new Map(), base.size);
  }

  /** A new version with the same contents, to change instead of this one. */
  copy(): LayeredMap<V> {
    if (this.layer.size >= Math.max(256, this.base.size >> 3)) return LayeredMap.of(this.entries());
    return new LayeredMap(this.base, new Map(this.layer), this.#size);
  }

  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    const changed = this.layer.get(key);
    if (changed !== undefined) return changed === GONE ? undefined : changed;
    return this.base.get(key);
  }

  has(key: string): boolean {
    const changed = this.layer.get(key);
    return changed !== undefined ? changed !== GONE : this.base.has(key);
  }

  /** Changes this version: only for one that has not been handed out. */
  set(key: string, value: V): void {
    if (!this.has(key)) this.#size++;
    this.layer.set(key, value);
  }

  /** Changes this version: only for one that has not been handed out. */
  delete(key: string): void {
    if (!this.has(key)) return;
    this.#size--;
    if (this.base.has(key)) this.layer.set(key, GONE);
    else this.layer.delete(key);
  }

  *entries(): MapIterator<[string, V]> {
    for (const [k, v] of this.base) {
      const changed = this.layer.get(k);
      if (changed === undefined) yield [k, v];
      else if (changed !== GONE) yield [k, changed];
    }
    for (const [k, v] of this.layer) if (v !== GONE && !this.base.has(k)) yield [k, v];
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this);
  }

  get [Symbol.toStringTag](): string {
    return 'LayeredMap';
  }
}
