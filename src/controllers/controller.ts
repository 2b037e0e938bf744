/**
 * A generic controller: watcher → reflector/store → work queue → workers → reconcile, as
 * controller-runtime's `internal/controller` and kube-rs `controller` chain them. Nothing in
 * here knows what is being reconciled.
 *
 * Expected flow: `start()` lists and watches `path`; every watch event and every relist puts
 * the object's key on the queue; workers take keys and call `reconcile({namespace, name})`,
 * which reads the object from `store` (level-based: the event only says "look at this key").
 *
 * Guarantees:
 * - A key is never reconciled by two workers at once; changes during a run cause one more run.
 * - Workers start only after the store holds a complete list (`start()` resolves then).
 * - Result handling is controller-runtime's switch: a thrown `TerminalError` is logged and
 *   counted, not retried; any other error → rate-limited retry (5 ms → 1000 s per key, 10/s
 *   overall); `requeueAfterMs` → forget the failures, run again after that delay; `requeue` →
 *   rate-limited retry; otherwise → forget the failures, wait for the next change.
 * - A relist enqueues every listed key and every key that vanished meanwhile, so deletions
 *   missed while the watch was down still reach the reconciler (which finds no object).
 *
 * Failure modes:
 * - The apiserver is unreachable: the watcher retries forever with backoff; the store keeps
 *   serving the last known state and reconciles continue on it.
 * - Cache sync takes longer than `cacheSyncTimeoutMs`: `start()` stops the controller and
 *   rejects (controller-runtime's CacheSyncTimeout).
 * - `stop()` aborts the signal of running reconciles at once (controller-runtime cancels their
 *   context): they should start nothing new and return. One that ignores the signal can outlive
 *   the grace period; `stop()` then returns anyway, logging how many runs were still in flight.
 * - JavaScript has no panics; counted as one (`controller_runtime_reconcile_panics_total`) is
 *   what signals a bug rather than a failure: a thrown non-Error, ReferenceError, RangeError,
 *   SyntaxError, EvalError, or a TypeError without a `cause` (undici's "fetch failed" has one).
 *   A panic is otherwise handled like an error, as controller-runtime's RecoverPanic does.
 */
import { randomUUID } from 'node:crypto';
import type { KubeAccess } from '../kube/api-request.js';
import pino, { type Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Reflector, type ReflectedEvent } from '../kube/reflector.js';
import { objectKey, parseKey, type KubeObject, type Store } from '../kube/store.js';
import type { WatcherOptions } from '../kube/watcher.js';
import type { RateLimiter } from './rate-limiter.js';
import { WorkQueue } from './workqueue.js';
import { getOrCreate } from '../metrics/registry.js';

/** What to reconcile: only a name. The current state is read from the store. */
export interface ReconcileRequest {
  /** '' for cluster-scoped objects. */
  namespace: string;
  name: string;
}

export interface ReconcileResult {
  /** Run again after this many milliseconds (a periodic check); failures are forgotten. */
  requeueAfterMs?: number;
  /** Run again after the rate limiter's backoff, without reporting an error. */
  requeue?: boolean;
}

export interface ReconcileContext<T extends KubeObject> {
  /** Aborted when a graceful shutdown begins: start nothing new, leave the object resumable, return. */
  signal: AbortSignal;
  /** Child logger carrying `controller`, `key`, `namespace`, `name` and `reconcileID`. */
  log: Logger;
  /** Unique per run, to find every log line of one run. */
  reconcileID: string;
  /** The controller's cache, to read the object and its neighbours. */
  store: Store<T>;
}

export type Reconciler<T extends KubeObject> = (req: ReconcileRequest, ctx: ReconcileContext<T>) => Promise<ReconcileResult | void>;

/** An error that retrying cannot fix (e.g. an invalid spec): logged and counted, not retried. */
export class TerminalError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export function isTerminal(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 10; e = e.cause, depth++) if (e instanceof TerminalError) return true;
  return false;
}

function isPanic(err: unknown): boolean {
  if (!(err instanceof Error)) return true;
  if (err instanceof TypeError) return err.cause === undefined;
  return err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError || err instanceof EvalError;
}

export interface ControllerOptions<T extends KubeObject> {
  /** Controller name: the `controller` label of every metric and log line. Required. */
  name: string;
  /** Connection and credentials. Required. */
  kubeConfig: KubeAccess;
  /** List/watch URL path, e.g. `/apis/rabbitbatch.io/v1alpha1/rabbitqueuebatches`. Required. */
  path: string;
  /** Only objects matching this label selector (sharding). Defaults to all objects. */
  labelSelector?: string;
  /** Only objects matching this field selector. Defaults to all objects. */
  fieldSelector?: string;
  /** The reconcile function. Required. */
  reconcile: Reconciler<T>;
  /** Workers running reconciles in parallel (never two for one key). Defaults to 10. */
  maxConcurrentReconciles?: number;
  /** Where to register metrics; several controllers may share one. Defaults to a private registry nobody scrapes. */
  registry?: Registry;
  /** Logger. Defaults to a silent logger. */
  logger?: Logger;
  /**
   * Enqueue every cached key this often, a safety net for changes made outside Kubernetes.
   * Defaults to 0 (off).
   */
  resyncPeriodMs?: number;
  /**
   * Decides whether an add/update event enqueues its key (e.g. skip status-only updates).
   * Deletions and relists always enqueue. Defaults to always.
   */
  predicate?: (old: T | undefined, obj: T) => boolean;
  /** Backoff of failed reconciles. Defaults to 5 ms → 1000 s per key, max with 10/s burst 100. */
  rateLimiter?: RateLimiter;
  /** How long `start()` waits for the first complete list. Defaults to 120000 (controller-runtime's 2 minutes). */
  cacheSyncTimeoutMs?: number;
  /** How long `stop()` waits for running reconciles (their signal aborted) before returning anyway. Defaults to 30000. */
  gracefulShutdownTimeoutMs?: number;
  /** Tuning of the underlying watcher (page size, watch timeout, backoff). Defaults to the watcher's defaults. */
  watch?: Pick<WatcherOptions, 'pageSize' | 'timeoutSeconds' | 'watchdogMarginMs' | 'backoff'>;
}

const RESULTS = ['success', 'error', 'requeue', 'requeue_after'] as const;
type ResultLabel = (typeof RESULTS)[number];

// controller-runtime's buckets for controller_runtime_reconcile_time_seconds.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15,
  20, 25, 30, 40, 50, 60,
];


/** controller-runtime's controller metrics, shared by every controller on one registry. */
function controllerMetrics(registry: Registry) {
  const r = [registry];
  const labelNames = ['controller'];
  return {
    total: getOrCreate(
      registry,
      'controller_runtime_reconcile_total',
      () => new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers: r }),
    ),
    errors: getOrCreate(
      registry,
      'controller_runtime_reconcile_errors_total',
      () => new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames, registers: r }),
    ),
    terminal: getOrCreate(
      registry,
      'controller_runtime_terminal_reconcile_errors_total',
      () => new Counter({ name: 'controller_runtime_terminal_reconcile_errors_total', help: 'Total number of terminal reconciliation errors per controller', labelNames, registers: r }),
    ),
    panics: getOrCreate(
      registry,
      'controller_runtime_reconcile_panics_total',
      () => new Counter({ name: 'controller_runtime_reconcile_panics_total', help: 'Total number of reconciliation panics per controller', labelNames, registers: r }),
    ),
    time: getOrCreate(
      registry,
      'controller_runtime_reconcile_time_seconds',
      () => new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller', labelNames, buckets: RECONCILE_BUCKETS, registers: r }),
    ),
    maxConcurrent: getOrCreate(
      registry,
      'controller_runtime_max_concurrent_reconciles',
      () => new Gauge({ name: 'controller_runtime_max_concurrent_reconciles', help: 'Maximum number of concurrent reconciles per controller', labelNames, registers: r }),
    ),
    active: getOrCreate(
      registry,
      'controller_runtime_active_workers',
      () => new Gauge({ name: 'controller_runtime_active_workers', help: 'Number of currently used workers per controller', labelNames, registers: r }),
    ),
  };
}

export class Controller<T extends KubeObject> {
  readonly name: string;
  /** The controller's cache (read-only); filled by its reflector. */
  readonly store: Store<T>;
  readonly #reflector: Reflector<T>;
  readonly #queue: WorkQueue;
  readonly #reconcile: Reconciler<T>;
  readonly #workers: number;
  readonly #log: Logger;
  readonly #metrics: ReturnType<typeof controllerMetrics>;
  readonly #labels: { controller: string };
  readonly #predicate: ((old: T | undefined, obj: T) => boolean) | undefined;
  readonly #resyncPeriodMs: number;
  readonly #cacheSyncTimeoutMs: number;
  readonly #gracefulShutdownTimeoutMs: number;
  /** Aborts the signal of running reconciles when a graceful shutdown begins. */
  readonly #abort = new AbortController();
  /** Aborts a `start()` still waiting for the cache. */
  readonly #stopSignal = new AbortController();
  #running: Promise<void>[] = [];
  #inFlight = 0;
  #resync: NodeJS.Timeout | undefined;
  #started = false;
  #stopping: Promise<void> | undefined;

  constructor(options: ControllerOptions<T>) {
    this.name = options.name;
    this.#reconcile = options.reconcile;
    this.#workers = options.maxConcurrentReconciles ?? 10;
    this.#log = (options.logger ?? pino({ enabled: false })).child({ controller: options.name });
    this.#predicate = options.predicate;
    this.#resyncPeriodMs = options.resyncPeriodMs ?? 0;
    this.#cacheSyncTimeoutMs = options.cacheSyncTimeoutMs ?? 120_000;
    this.#gracefulShutdownTimeoutMs = options.gracefulShutdownTimeoutMs ?? 30_000;
    const registry = options.registry ?? new Registry();
    this.#reflector = new Reflector<T>({
      ...options.watch,
      kubeConfig: options.kubeConfig,
      path: options.path,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      logger: this.#log,
    });
    this.store = this.#reflector.store;
    this.#queue = new WorkQueue({ name: options.name, registry, rateLimiter: options.rateLimiter });
    this.#metrics = controllerMetrics(registry);
    this.#labels = { controller: options.name };
  }

  /**
   * Lists, watches, waits for the cache, then starts the workers. Resolves once synced (or
   * at once if `stop()` is called meanwhile); rejects when the cache does not sync in time.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error(`controller ${this.name} already started`);
    this.#started = true;
    this.#initMetrics();
    this.#log.info({ workers: this.#workers }, 'Starting Controller');
    this.#reflector.start((event) => this.#onChange(event));
    try {
      await this.store.waitForSync(AbortSignal.any([this.#stopSignal.signal, AbortSignal.timeout(this.#cacheSyncTimeoutMs)]));
    } catch (err) {
      // Stopped while waiting (shutdown, lost leadership): not a failure of start().
      if (this.#stopping) return;
      await this.stop();
      throw new Error(`controller ${this.name}: cache did not sync: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (this.#stopping) return;
    this.#log.info({ objects: this.store.size }, 'Starting workers');
    this.#running = Array.from({ length: this.#workers }, () => this.#worker());
    if (this.#resyncPeriodMs > 0) {
      this.#resync = setInterval(() => {
        for (const key of this.store.keys()) this.#queue.add(key);
      }, this.#resyncPeriodMs);
      this.#resync.unref();
    }
  }

  /** Why the watch is failing right now (e.g. RBAC forbids the list), or undefined. */
  watchError(): string | undefined {
    return this.#reflector.lastError;
  }

  hasSynced(): boolean {
    return this.store.hasSynced();
  }

  /** Queues a reconcile of `key` (`namespace/name`); for other event sources (e.g. RabbitMQ). */
  enqueue(key: string): void {
    this.#queue.add(key);
  }

  /** Queues a reconcile of `key` after `delayMs`. */
  enqueueAfter(key: string, delayMs: number): void {
    this.#queue.addAfter(key, delayMs);
  }

  /** Forces a full relist of the watched resource (see `Watcher.restartWatch`). */
  restartWatch(): void {
    this.#reflector.restartWatch();
  }

  /**
   * Graceful shutdown: stops watching and taking keys, aborts the signal of running reconciles
   * and waits for them (up to `gracefulShutdownTimeoutMs`, then returns anyway). Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#stopSignal.abort(new Error('controller stopped'));
    this.#abort.abort(new Error('controller stopping'));
    clearInterval(this.#resync);
    this.#queue.shutDown();
    await this.#reflector.stop();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#gracefulShutdownTimeoutMs);
    });
    const finished = Promise.all(this.#running).then(() => false);
    const late = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    if (late) this.#log.warn({ inFlight: this.#inFlight }, 'graceful shutdown timed out; reconciles still running');
    this.#log.info('Stopped Controller');
  }

  #onChange(event: ReflectedEvent<T>): void {
    switch (event.type) {
      case 'restarted':
        for (const obj of event.objects) this.#queue.add(objectKey(obj));
        for (const key of event.vanished) this.#queue.add(key);
        return;
      case 'applied':
        if (!this.#predicate || this.#predicate(event.old, event.object)) this.#queue.add(event.key);
        return;
      case 'deleted':
        this.#queue.add(event.key);
        return;
    }
  }

  #initMetrics(): void {
    const m = this.#metrics;
    for (const result of RESULTS) m.total.inc({ ...this.#labels, result }, 0);
    m.errors.inc(this.#labels, 0);
    m.terminal.inc(this.#labels, 0);
    m.panics.inc(this.#labels, 0);
    m.time.zero(this.#labels);
    m.maxConcurrent.set(this.#labels, this.#workers);
    m.active.set(this.#labels, 0);
  }

  async #worker(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      // Shutting down: keys still queued are left for the next leader or start.
      if (this.#stopping) {
        this.#queue.done(key);
        return;
      }
      try {
        await this.#reconcileHandler(key);
      } finally {
        this.#queue.done(key);
      }
    }
  }

  async #reconcileHandler(key: string): Promise<void> {
    const { namespace, name } = parseKey(key);
    const reconcileID = randomUUID();
    const log = this.#log.child({ key, namespace, name, reconcileID });
    const m = this.#metrics;
    m.active.inc(this.#labels);
    this.#inFlight += 1;
    const started = performance.now();
    let result: ReconcileResult = {};
    let error: unknown;
    let failed = false;
    try {
      result = (await this.#reconcile({ namespace, name }, { signal: this.#abort.signal, log, reconcileID, store: this.store })) ?? {};
    } catch (err) {
      failed = true;
      error = err;
      if (isPanic(err)) {
        m.panics.inc(this.#labels);
        log.error({ err }, 'Observed a panic in reconciler');
      }
    } finally {
      m.time.observe(this.#labels, (performance.now() - started) / 1000);
      m.active.dec(this.#labels);
      this.#inFlight -= 1;
    }

    let label: ResultLabel;
    if (failed) {
      if (isTerminal(error)) m.terminal.inc(this.#labels);
      else this.#queue.addRateLimited(key);
      m.errors.inc(this.#labels);
      label = 'error';
      log.error({ err: error, terminal: isTerminal(error) }, 'Reconciler error');
    } else if (result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
      this.#queue.forget(key);
      this.#queue.addAfter(key, result.requeueAfterMs);
      label = 'requeue_after';
    } else if (result.requeue) {
      this.#queue.addRateLimited(key);
      label = 'requeue';
    } else {
      this.#queue.forget(key);
      label = 'success';
    }
    m.total.inc({ ...this.#labels, result: label });
  }
}
