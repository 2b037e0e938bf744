/**
 * Watches the connection Secrets the operator reads, each one by name (`fieldSelector
 * metadata.name=<name>` in its namespace), so a fixed password or a Secret created after
 * `SecretNotFound` is noticed at once instead of at the next resync.
 *
 * Only `watch` is used, never `list`: the API server authorizes a watch narrowed to one name
 * against that name (RBAC `resourceNames` work), and the operator never asks for Secrets it was
 * not told about.
 *
 * Guarantees
 * - `onChange(namespace, name)` runs after the Secret was created, changed or deleted; not for
 *   the first state a watch reports when that state was already known (reconnects do not
 *   re-trigger every batch).
 * - A watch that ends or fails is re-opened after a jittered backoff (1 s → 30 s) until `stop()`.
 * - `current(namespace, name)` is the Secret as its open watch last delivered it, and undefined
 *   whenever the watch is not open or has not delivered the current state yet (the caller then
 *   reads the Secret itself). A change made meanwhile arrives as an event, and `onChange` follows.
 *
 * Failure modes
 * - Missing `watch` permission (403): retried with backoff and logged once per Secret; the
 *   batches still see the new Secret at their next reconcile (every minute while failing).
 */
import type { Logger } from 'pino';
import { Backoff } from '../util/backoff.js';
import type { KubeAccess } from './api-request.js';
import { watchStream } from './watch-stream.js';

interface Watched {
  /** The last resourceVersion seen; '' when the Secret was seen missing. */
  version: string;
  abort: (() => void) | undefined;
  backoff: Backoff;
  warned: boolean;
  timer: NodeJS.Timeout | undefined;
  /** The Secret as the open watch last delivered it; undefined while closed or not yet told. */
  current: WatchedSecret | undefined;
}

export interface WatchedSecret {
  data?: Record<string, string>;
  metadata?: { resourceVersion?: string };
}

export interface SecretWatchOptions {
  kubeConfig: KubeAccess;
  log: Logger;
  onChange: (namespace: string, name: string) => void;
}

export class SecretWatch {
  private readonly watched = new Map<string, Watched>();
  private stopped = false;

  constructor(private readonly o: SecretWatchOptions) {}

  /**
   * Starts watching `namespace/name` (once; later calls do nothing). `version`: the
   * resourceVersion the caller just read, or '' when the Secret is missing: the watch's first
   * event is news only if it differs.
   */
  ensure(namespace: string, name: string, version: string): void {
    const key = `${namespace}/${name}`;
    if (this.stopped || this.watched.has(key)) return;
    const w: Watched = { version, abort: undefined, backoff: new Backoff({ initialMs: 1_000, maxMs: 30_000 }), warned: false, timer: undefined, current: undefined };
    this.watched.set(key, w);
    void this.open(namespace, name, w);
  }

  /** The Secret as its open watch last delivered it (see Guarantees); undefined when not known that way. */
  current(namespace: string, name: string): WatchedSecret | undefined {
    return this.watched.get(`${namespace}/${name}`)?.current;
  }

  /** Secrets being watched, as `namespace/name`. */
  get names(): string[] {
    return [...this.watched.keys()].sort();
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watched.values()) {
      clearTimeout(w.timer);
      w.abort?.();
    }
    this.watched.clear();
  }

  private async open(namespace: string, name: string, w: Watched): Promise<void> {
    if (this.stopped) return;
    const onEvent = (type: string, raw: unknown) => {
      const object = raw as WatchedSecret;
      if (type === 'BOOKMARK' || type === 'ERROR') return;
      const version = type === 'DELETED' ? '' : (object.metadata?.resourceVersion ?? '');
      w.current = type === 'DELETED' ? undefined : object;
      // A fresh watch starts with the current state: news only if it differs from what was known.
      const isNews = w.version !== version;
      w.version = version;
      w.backoff.reset();
      if (isNews) this.o.onChange(namespace, name);
    };
    const done = (err: unknown) => {
      w.abort = undefined;
      w.current = undefined; // no longer told about changes
      if (this.stopped || !this.watched.has(`${namespace}/${name}`)) return;
      if (err && !w.warned) {
        w.warned = true;
        this.o.log.warn({ secret: `${namespace}/${name}`, err: (err as Error).message }, 'cannot watch the connection Secret (RBAC needs get and watch on secrets): a change is seen at the next reconcile');
      }
      w.timer = setTimeout(() => void this.open(namespace, name, w), err ? w.backoff.next() : 0);
      w.timer.unref();
    };
    try {
      // The server ends the watch after timeoutSeconds; the stream's inactivity abort is beyond it.
      const controller = await watchStream(
        this.o.kubeConfig,
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
        { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: 'true', timeoutSeconds: '290' },
        onEvent,
        done,
        { inactivityMs: 330_000 },
      );
      w.abort = () => controller.abort();
      if (this.stopped) controller.abort();
    } catch (err) {
      done(err);
    }
  }
}
