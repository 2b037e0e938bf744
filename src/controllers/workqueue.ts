/**
 * A de-duplicating, delaying, rate-limited work queue with client-go's semantics (the queue
 * behind every controller-runtime controller).
 *
 * Guarantees:
 * - De-duplication: a key added again before a worker took it is queued once (`dirty` set).
 * - Exclusivity: a key handed to a worker is not handed out again until `done(key)`, however
 *   often it is re-added meanwhile (`processing` set).
 * - No lost change: a key re-added while it is processed is queued exactly once more at `done`.
 * - FIFO among ready keys; `addAfter` keeps the earliest pending time for a key.
 * - After `shutDown()`, adds are ignored and delayed keys are dropped; keys already queued are
 *   still handed out, then `get()` resolves `undefined`. `shutDownWithDrain()` also waits until
 *   every key handed out has been marked `done`.
 *
 * Failure modes: a worker that never calls `done(key)` blocks that key forever; the
 * `workqueue_unfinished_work_seconds` and `workqueue_longest_running_processor_seconds`
 * gauges make that visible.
 *
 * Metrics (when a registry is given), all labelled `{name, controller}` with the queue name in
 * both, as controller-runtime does: `workqueue_depth`, `workqueue_adds_total`,
 * `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
 * `workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds`,
 * `workqueue_retries_total`.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.js';
import { getOrCreate } from '../metrics/registry.js';

export interface WorkQueueOptions {
  /** Queue name; the `name` and `controller` label of its metrics. Required. */
  name: string;
  /** Where to register metrics; several queues may share one. Defaults to no metrics. */
  registry?: Registry;
  /** Decides the wait of `addRateLimited`. Defaults to `defaultControllerRateLimiter()` (5 ms → 1000 s per key, max with 10/s burst 100). */
  rateLimiter?: RateLimiter;
  /** Clock in milliseconds, replaceable in tests. Defaults to Date.now. */
  now?: () => number;
}

export class WorkQueue {
  readonly name: string;
  readonly #rateLimiter: RateLimiter;
  readonly #metrics: QueueMetrics | undefined;
  /** Ready keys, FIFO. `#head` avoids O(n) shifts on long queues. */
  #queue: string[] = [];
  #head = 0;
  /** Keys that need processing (queued, or re-added while processing). */
  readonly #dirty = new Set<string>();
  /** Keys handed to a worker and not yet `done`. */
  readonly #processing = new Set<string>();
  /** Keys waiting for `addAfter`'s delay. */
  readonly #waiting = new Map<string, { readyAt: number; timer: NodeJS.Timeout }>();
  #getters: Array<(key: string | undefined) => void> = [];
  #drainWaiters: Array<() => void> = [];
  #shuttingDown = false;
  readonly #now: () => number;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.#now = options.now ?? Date.now;
    this.#rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter({ now: this.#now });
    this.#metrics = options.registry ? new QueueMetrics(options.registry, options.name, this.#now) : undefined;
  }

  /** Queues `key` unless it is already queued; a key being processed runs once more after `done`. */
  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#metrics?.add(key);
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const getter = this.#getters.shift();
    if (getter) getter(this.#take(key));
    else this.#queue.push(key);
  }

  /** Adds `key` after `delayMs`; if it is already waiting, the earlier time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    this.#metrics?.retry();
    if (delayMs <= 0) return this.add(key);
    const readyAt = this.#now() + delayMs;
    const pending = this.#waiting.get(key);
    if (pending && pending.readyAt <= readyAt) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#waiting.delete(key);
      this.add(key);
    }, delayMs);
    // Pending retries alone must not keep a process alive.
    timer.unref();
    this.#waiting.set(key, { readyAt, timer });
  }

  /** Adds `key` after the rate limiter's wait: the retry path after a failure. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.#rateLimiter.when(key));
  }

  /** Clears the failure history of `key`; does not remove it from the queue. */
  forget(key: string): void {
    this.#rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.#rateLimiter.numRequeues(key);
  }

  /** Ready keys not yet handed out. */
  len(): number {
    return this.#queue.length - this.#head;
  }

  /** Waits for the next key and marks it processing; `undefined` once shut down and empty. */
  get(): Promise<string | undefined> {
    if (this.len() > 0) {
      const key = this.#queue[this.#head] as string;
      this.#head += 1;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve(this.#take(key));
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /** Marks `key` finished; if it was re-added meanwhile, it is queued again now. */
  done(key: string): void {
    this.#metrics?.done(key);
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      const getter = this.#getters.shift();
      if (getter) getter(this.#take(key));
      else this.#queue.push(key);
    } else if (this.#processing.size === 0) {
      for (const w of this.#drainWaiters.splice(0)) w();
    }
  }

  shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Stops accepting keys, drops delayed ones, and wakes idle workers with `undefined`. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#waiting.values()) clearTimeout(timer);
    this.#waiting.clear();
    for (const g of this.#getters.splice(0)) g(undefined);
    this.#metrics?.close();
  }

  /** `shutDown()`, then waits until every key handed out has been marked `done`. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.#processing.size === 0) return;
    await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
  }

  #take(key: string): string {
    this.#processing.add(key);
    this.#dirty.delete(key);
    this.#metrics?.get(key);
    return key;
  }
}

// controller-runtime: prometheus.ExponentialBuckets(10e-9, 10, 12), i.e. 10 ns … 1000 s.
const DURATION_BUCKETS = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));

/** Point-in-time gauges need one collect per metric; it asks every queue sharing it. */
const gaugeUpdaters = new WeakMap<Gauge, Set<() => void>>();


function progressGauge(registry: Registry, name: string, help: string): Gauge {
  return getOrCreate(registry, name, () => {
    const updaters = new Set<() => void>();
    const gauge = new Gauge({
      name,
      help,
      labelNames: ['name', 'controller'],
      registers: [registry],
      collect() {
        for (const update of updaters) update();
      },
    });
    gaugeUpdaters.set(gauge, updaters);
    return gauge;
  });
}

/** client-go's queue metrics, on a given registry. */
class QueueMetrics {
  readonly #labels: { name: string; controller: string };
  readonly #depth: Gauge;
  readonly #adds: Counter;
  readonly #queueDuration: Histogram;
  readonly #workDuration: Histogram;
  readonly #unfinished: Gauge;
  readonly #longest: Gauge;
  readonly #retries: Counter;
  readonly #addTimes = new Map<string, number>();
  readonly #startTimes = new Map<string, number>();
  readonly #update = () => this.#updateProgress();
  readonly #now: () => number;

  constructor(registry: Registry, name: string, now: () => number) {
    this.#now = now;
    this.#labels = { name, controller: name };
    const labelNames = ['name', 'controller'];
    const r = [registry];
    this.#depth = getOrCreate(registry, 'workqueue_depth', () => new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, registers: r }));
    this.#adds = getOrCreate(registry, 'workqueue_adds_total', () => new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames, registers: r }));
    this.#queueDuration = getOrCreate(
      registry,
      'workqueue_queue_duration_seconds',
      () => new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested', labelNames, buckets: DURATION_BUCKETS, registers: r }),
    );
    this.#workDuration = getOrCreate(
      registry,
      'workqueue_work_duration_seconds',
      () => new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.', labelNames, buckets: DURATION_BUCKETS, registers: r }),
    );
    this.#unfinished = progressGauge(
      registry,
      'workqueue_unfinished_work_seconds',
      "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
    );
    this.#longest = progressGauge(registry, 'workqueue_longest_running_processor_seconds', 'How many seconds has the longest running processor for workqueue been running.');
    this.#retries = getOrCreate(registry, 'workqueue_retries_total', () => new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames, registers: r }));
    // Every series exists from the start, at zero.
    this.#depth.set(this.#labels, 0);
    this.#adds.inc(this.#labels, 0);
    this.#retries.inc(this.#labels, 0);
    this.#queueDuration.zero(this.#labels);
    this.#workDuration.zero(this.#labels);
    this.#updateProgress();
    gaugeUpdaters.get(this.#unfinished)?.add(this.#update);
    gaugeUpdaters.get(this.#longest)?.add(this.#update);
  }

  add(key: string): void {
    this.#adds.inc(this.#labels);
    this.#depth.inc(this.#labels);
    if (!this.#addTimes.has(key)) this.#addTimes.set(key, this.#now());
  }

  get(key: string): void {
    const now = this.#now();
    this.#depth.dec(this.#labels);
    this.#startTimes.set(key, now);
    const added = this.#addTimes.get(key);
    if (added !== undefined) {
      this.#queueDuration.observe(this.#labels, (now - added) / 1000);
      this.#addTimes.delete(key);
    }
  }

  done(key: string): void {
    const started = this.#startTimes.get(key);
    if (started === undefined) return;
    this.#workDuration.observe(this.#labels, (this.#now() - started) / 1000);
    this.#startTimes.delete(key);
  }

  retry(): void {
    this.#retries.inc(this.#labels);
  }

  /** Stops updating the progress gauges (the queue is shut down); leaves them at their last value. */
  close(): void {
    this.#updateProgress();
    gaugeUpdaters.get(this.#unfinished)?.delete(this.#update);
    gaugeUpdaters.get(this.#longest)?.delete(this.#update);
  }

  #updateProgress(): void {
    const now = this.#now();
    let total = 0;
    let longest = 0;
    for (const started of this.#startTimes.values()) {
      const seconds = (now - started) / 1000;
      total += seconds;
      longest = Math.max(longest, seconds);
    }
    this.#unfinished.set(this.#labels, total);
    this.#longest.set(this.#labels, longest);
  }
}
