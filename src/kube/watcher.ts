/**
 * Turns list+watch of one resource path into a stream of events, and keeps nothing else
 * (kube-rs `watcher.rs`). Built on a low-level watch stream (./watch-stream.ts, client-node's
 * `Watch` without the library) because client-node's informer stops for good on any error
 * other than 410.
 *
 * State machine (kube-rs's):
 * ```
 *   Empty ──list──▶ InitPage ──more pages──▶ InitPage ──last page, emit `restarted`──▶ InitListed
 *     ▲               │ 410 (continue token expired)                                     │ open watch
 *     └───────────────┘                                                                  ▼
 *     ▲                            stream ended or failed: resume from the last rv ◀── Watching
 *     └──────────────── 410 Gone (HTTP or ERROR event), restartWatch() ─────────────────┘
 * ```
 * A list is paged (`limit`, `continue`) and is emitted as one `restarted` event once every
 * page has arrived. The watch starts from the list's resourceVersion with bookmarks, so a
 * reconnect resumes from the newest version seen (bookmarks move it forward on quiet streams).
 *
 * Guarantees:
 * - Events are delivered in the order the apiserver sent them, one at a time, synchronously.
 * - After a `restarted` event, the receiver has a complete and consistent view; every later
 *   change arrives as `applied` or `deleted`, unless a 410 forces another `restarted`.
 * - It never gives up: every failure is retried, after a jittered backoff (0.8 s → 30 s,
 *   reset after 2 quiet minutes), until `stop()`.
 *
 * Failure modes:
 * - 410 Gone on the watch (HTTP status or an ERROR event) or on a list continuation: full
 *   relist after backoff. Deletions missed meanwhile surface only as absence from `restarted`.
 * - Any other HTTP error, a network error, or a stream that ends: the watch is re-opened from
 *   the last resourceVersion after backoff; a normal end (the server-side `timeoutSeconds`)
 *   that carried at least one event or bookmark reconnects at once.
 * - A watch that delivers nothing, not even a bookmark, for `timeoutSeconds` + `watchdogMarginMs`
 *   is presumed dead (half-open TCP), aborted and resumed after backoff.
 * - A throwing event handler is logged; the watcher carries on.
 * - The watch stream drops lines that are not JSON (as client-node's `Watch` does); such an
 *   event is lost until the next relist.
 */
import pino, { type Logger } from 'pino';
import { request } from 'undici';
import { Backoff, type BackoffOptions } from '../util/backoff.js';
import { prepareRequest, type KubeAccess } from './api-request.js';
import { watchStream } from './watch-stream.js';
import type { KubeObject } from './store.js';

export type WatcherEvent<T> =
  /** A complete list: the receiver's view is replaced by exactly these objects. */
  | { type: 'restarted'; objects: T[] }
  /** An object was added or modified. */
  | { type: 'applied'; object: T }
  /** An object was deleted (its last state). */
  | { type: 'deleted'; object: T };

export type WatcherPhase = 'Empty' | 'InitPage' | 'InitListed' | 'Watching';

export interface WatcherOptions {
  /** Connection and credentials. Required. */
  kubeConfig: KubeAccess;
  /**
   * List/watch URL path, e.g. `/apis/rabbitbatch.io/v1alpha1/rabbitqueuebatches` (all
   * namespaces) or `/apis/rabbitbatch.io/v1alpha1/namespaces/ns/rabbitqueuebatches`. Required.
   */
  path: string;
  /** Only objects matching this label selector (e.g. a shard). Defaults to all objects. */
  labelSelector?: string;
  /** Only objects matching this field selector. Defaults to all objects. */
  fieldSelector?: string;
  /** Objects per list page. Defaults to 500. */
  pageSize?: number;
  /** Server-side watch timeout; the server ends the stream after it and we reconnect. Defaults to 290 (just under 5 minutes). */
  timeoutSeconds?: number;
  /** Extra silence tolerated beyond `timeoutSeconds` before the watchdog aborts a watch. Defaults to 30000. */
  watchdogMarginMs?: number;
  /** Retry backoff. Defaults to 0.8 s → 30 s, ±20 % jitter, reset after 2 quiet minutes. */
  backoff?: BackoffOptions;
  /** Where to log reconnects and errors. Defaults to a silent logger. */
  logger?: Logger;
}

/** An HTTP or watch ERROR status from the apiserver. */
export class KubeStatusError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'KubeStatusError';
  }
}

/** True for 410 Gone: the requested resourceVersion (or continue token) has been compacted away. */
export function isGone(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const e = err as { statusCode?: unknown; code?: unknown };
  return e.statusCode === 410 || e.code === 410;
}

interface ListPage<T> {
  items: T[];
  continueToken: string | undefined;
  resourceVersion: string;
}

type State<T> =
  | { phase: 'Empty' }
  | { phase: 'InitPage'; continueToken: string; objects: T[] }
  | { phase: 'InitListed'; resourceVersion: string }
  | { phase: 'Watching'; resourceVersion: string };

/** Thrown inside the loop when `restartWatch()` or `stop()` interrupts a step. */
class Interrupted extends Error {}

export class Watcher<T extends KubeObject> {
  readonly #kc: KubeAccess;
  readonly #path: string;
  readonly #labelSelector: string | undefined;
  readonly #fieldSelector: string | undefined;
  readonly #pageSize: number;
  readonly #timeoutSeconds: number;
  readonly #watchdogMs: number;
  readonly #backoff: Backoff;
  readonly #log: Logger;
  #state: State<T> = { phase: 'Empty' };
  #onEvent: ((event: WatcherEvent<T>) => void) | undefined;
  #loop: Promise<void> | undefined;
  #stopped = false;
  #relistRequested = false;
  #lastError: string | undefined;
  /** Aborts whatever the loop is waiting on (a list request, a watch, a backoff sleep). */
  #stepAbort = new AbortController();

  constructor(options: WatcherOptions) {
    this.#kc = options.kubeConfig;
    this.#path = options.path;
    this.#labelSelector = options.labelSelector;
    this.#fieldSelector = options.fieldSelector;
    this.#pageSize = options.pageSize ?? 500;
    this.#timeoutSeconds = options.timeoutSeconds ?? 290;
    this.#watchdogMs = this.#timeoutSeconds * 1000 + (options.watchdogMarginMs ?? 30_000);
    this.#backoff = new Backoff(options.backoff);
    this.#log = (options.logger ?? pino({ enabled: false })).child({ watch: options.path, labelSelector: options.labelSelector });
  }

  get phase(): WatcherPhase {
    return this.#state.phase;
  }

  /** Starts listing and watching; `onEvent` receives every event until `stop()`. */
  start(onEvent: (event: WatcherEvent<T>) => void): void {
    if (this.#loop) throw new Error('watcher already started');
    this.#onEvent = onEvent;
    this.#loop = this.#run();
  }

  /**
   * The last list or watch failure, until a later step succeeds (e.g. `list ...: HTTP 403: ...
   * forbidden`): readiness reports it, so an RBAC or network problem is not a silent stall.
   */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Stops watching and resolves once no more events will be emitted. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stepAbort.abort(new Interrupted('stopped'));
    await this.#loop;
  }

  /**
   * Drops the current list or watch and starts again with a full relist, at once. The store
   * fed by this watcher then loses objects deleted in between. For tests and for recovery
   * from suspected cache drift.
   */
  restartWatch(): void {
    this.#relistRequested = true;
    this.#stepAbort.abort(new Interrupted('relist requested'));
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (this.#relistRequested) {
        this.#relistRequested = false;
        this.#stepAbort = new AbortController();
        this.#state = { phase: 'Empty' };
        this.#log.info('relist requested');
      }
      const signal = this.#stepAbort.signal;
      try {
        await this.#step(signal);
        this.#lastError = undefined;
      } catch (err) {
        // Interrupted on purpose: the loop head sorts it out.
        if (this.#stopped || this.#relistRequested) continue;
        this.#lastError = (err as Error).message;
        if (isGone(err)) this.#state = { phase: 'Empty' };
        else if (this.#state.phase === 'Watching') this.#state = { phase: 'InitListed', resourceVersion: this.#state.resourceVersion };
        const delayMs = this.#backoff.next();
        const msg = isGone(err) ? 'resourceVersion gone; relisting after backoff' : 'list/watch failed; retrying after backoff';
        this.#log.warn({ err, phase: this.#state.phase, delayMs }, msg);
        await sleep(delayMs, signal).catch(() => undefined);
      }
    }
  }

  /** One transition of the state machine. Throws on failure, leaving the state to retry from. */
  async #step(signal: AbortSignal): Promise<void> {
    const state = this.#state;
    switch (state.phase) {
      case 'Empty':
      case 'InitPage': {
        const previous = state.phase === 'InitPage' ? state : undefined;
        let page: ListPage<T>;
        try {
          page = await this.#listPage(previous?.continueToken, signal);
        } catch (err) {
          // An expired continue token means the snapshot is gone: start the list over.
          if (isGone(err)) this.#state = { phase: 'Empty' };
          throw err;
        }
        const objects = previous ? previous.objects.concat(page.items) : page.items;
        if (page.continueToken) {
          this.#state = { phase: 'InitPage', continueToken: page.continueToken, objects };
          return;
        }
        this.#state = { phase: 'InitListed', resourceVersion: page.resourceVersion };
        this.#log.debug({ count: objects.length, resourceVersion: page.resourceVersion }, 'listed');
        this.#emit({ type: 'restarted', objects });
        return;
      }
      case 'InitListed':
      case 'Watching': {
        this.#state = { phase: 'Watching', resourceVersion: state.resourceVersion };
        const received = await this.#watchOnce(signal);
        // The server ended the stream normally (timeoutSeconds): resume at once. The apiserver
        // (1.35, measured) sends a bookmark just before that deadline even on a quiet resource,
        // so a stream that ends empty is treated as a failure: a proxy that closes at once
        // cannot make us reconnect in a hot loop.
        if (this.#state.phase === 'Watching') this.#state = { phase: 'InitListed', resourceVersion: this.#state.resourceVersion };
        if (received === 0) throw new Error('watch stream ended without any event');
        return;
      }
    }
  }

  #emit(event: WatcherEvent<T>): void {
    try {
      this.#onEvent?.(event);
    } catch (err) {
      this.#log.error({ err, event: event.type }, 'watch event handler threw');
    }
  }

  async #listPage(continueToken: string | undefined, signal: AbortSignal): Promise<ListPage<T>> {
    const { url, headers, dispatcher } = await prepareRequest(this.#kc, this.#path);
    const params = { labelSelector: this.#labelSelector, fieldSelector: this.#fieldSelector, limit: String(this.#pageSize), continue: continueToken };
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
    const res = await request(url, { headers: { ...headers, accept: 'application/json' }, signal, ...(dispatcher ? { dispatcher } : {}) });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new KubeStatusError(res.statusCode, `list ${this.#path}: HTTP ${res.statusCode}: ${statusMessage(text)}`);
    const list = JSON.parse(text) as { apiVersion?: string; kind?: string; metadata?: { resourceVersion?: string; continue?: string }; items?: T[] };
    // Lists of built-in kinds omit apiVersion/kind on their items; fill them in so every
    // object looks like it does in a watch event.
    const kind = list.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined;
    const items = (list.items ?? []).map((item) => ({ apiVersion: list.apiVersion, kind, ...item }));
    return { items, continueToken: list.metadata?.continue || undefined, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /**
   * Runs one watch stream to its end. Resolves with the number of events received on a normal
   * end; rejects on errors and interruptions.
   */
  #watchOnce(signal: AbortSignal): Promise<number> {
    const watching = this.#state;
    if (watching.phase !== 'Watching') throw new Error('not in Watching phase');
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      let received = 0;
      let stream: AbortController | undefined;
      let watchdog: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        signal.removeEventListener('abort', onAbort);
        stream?.abort();
        if (err) reject(err as Error);
        else resolve(received);
      };
      const armWatchdog = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => finish(new Error(`watch silent for ${this.#watchdogMs} ms; presumed dead`)), this.#watchdogMs);
        watchdog.unref();
      };
      const onAbort = () => finish(signal.reason ?? new Interrupted('aborted'));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      armWatchdog();

      const onLine = (type: string, object: unknown) => {
        // Lines still buffered after we gave up on this stream must not be applied.
        if (settled) return;
        received += 1;
        armWatchdog();
        if (type === 'ERROR') {
          const status = object as { code?: number; message?: string };
          finish(new KubeStatusError(status.code ?? 500, `watch ${this.#path}: ${status.message ?? 'ERROR event'}`));
          return;
        }
        const obj = object as T;
        const rv = obj.metadata?.resourceVersion;
        if (rv) watching.resourceVersion = rv;
        if (type === 'ADDED' || type === 'MODIFIED') this.#emit({ type: 'applied', object: obj });
        else if (type === 'DELETED') this.#emit({ type: 'deleted', object: obj });
        // BOOKMARK: only the resourceVersion matters, taken above.
      };

      const params = {
        allowWatchBookmarks: 'true',
        resourceVersion: watching.resourceVersion,
        timeoutSeconds: String(this.#timeoutSeconds),
        labelSelector: this.#labelSelector,
        fieldSelector: this.#fieldSelector,
      };
      // Our watchdog is the inactivity timeout; keep the stream's own one out of its way.
      watchStream(this.#kc, this.#path, params, onLine, (err: unknown) => finish(err ?? undefined), { inactivityMs: this.#watchdogMs + 10_000 })
        .then((controller) => {
          stream = controller;
          if (settled) controller.abort();
        }, finish);
    });
  }
}

function statusMessage(body: string): string {
  try {
    const status = JSON.parse(body) as { message?: string };
    return status.message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
