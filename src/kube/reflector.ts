/**
 * The reflector: the single writer of a `Store`, fed by a `Watcher` (kube-rs `reflector`).
 * It applies each watcher event to the store and then passes it on, enriched with what the
 * store held before, so a controller can enqueue keys without reading events as truth.
 *
 * Guarantees:
 * - A listener is called only after the store reflects the event.
 * - A relist swaps the store content in one step; keys that vanished (deleted while the watch
 *   was down) are reported in `vanished`, and no delete events are invented for them.
 *
 * Failure modes: those of the `Watcher`; a throwing listener is logged by the watcher.
 */
import { createStore, objectKey, type KubeObject, type Store, type StoreWriter } from './store.js';
import { Watcher, type WatcherEvent, type WatcherOptions } from './watcher.js';

export type ReflectedEvent<T> =
  | { type: 'restarted'; objects: readonly T[]; vanished: string[] }
  | { type: 'applied'; key: string; object: T; old: T | undefined }
  | { type: 'deleted'; key: string; object: T; old: T | undefined };

/** Applies one watcher event to the store and describes what changed. */
export function applyWatcherEvent<T extends KubeObject>(writer: StoreWriter<T>, event: WatcherEvent<T>): ReflectedEvent<T> {
  switch (event.type) {
    case 'restarted': {
      const { vanished } = writer.replace(event.objects);
      return { type: 'restarted', objects: event.objects, vanished };
    }
    case 'applied':
      return { type: 'applied', key: objectKey(event.object), object: event.object, old: writer.apply(event.object) };
    case 'deleted':
      return { type: 'deleted', key: objectKey(event.object), object: event.object, old: writer.delete(event.object) };
  }
}

export class Reflector<T extends KubeObject> {
  /** Read-only view of the cache this reflector maintains. */
  readonly store: Store<T>;
  readonly #writer: StoreWriter<T>;
  readonly #watcher: Watcher<T>;

  /** The watcher's last list or watch failure, until a later step succeeds. */
  get lastError(): string | undefined {
    return this.#watcher.lastError;
  }

  constructor(options: WatcherOptions) {
    const { store, writer } = createStore<T>();
    this.store = store;
    this.#writer = writer;
    this.#watcher = new Watcher<T>(options);
  }

  /** Starts list+watch; `onChange` (optional) sees every change after it reached the store. */
  start(onChange?: (event: ReflectedEvent<T>) => void): void {
    this.#watcher.start((event) => {
      const reflected = applyWatcherEvent(this.#writer, event);
      onChange?.(reflected);
    });
  }

  async stop(): Promise<void> {
    await this.#watcher.stop();
  }

  /** Forces a full relist now (see `Watcher.restartWatch`). */
  restartWatch(): void {
    this.#watcher.restartWatch();
  }
}
