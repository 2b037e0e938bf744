/**
 * Rate limiters for the work queue, as client-go defines them: each says how long a key must
 * wait before its next try. The controller default combines a per-key exponential backoff
 * (5 ms → 1000 s) with a global token bucket (10/s, burst 100) and takes the longer wait, so
 * one broken object backs off alone while a storm of failures is throttled as a whole.
 */

export interface RateLimiter {
  /** How long `key` must wait before its next try, in milliseconds; counts one more failure. */
  when(key: string): number;
  /** Clears the failure history of `key` (it succeeded, or is gone). */
  forget(key: string): void;
  /** How many failures of `key` have been counted since the last `forget`. */
  numRequeues(key: string): number;
}

/** Waits `baseDelayMs · 2^failures`, capped at `maxDelayMs`, per key. */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  readonly #failures = new Map<string, number>();

  /**
   * @param baseDelayMs wait after the first failure. Defaults to 5.
   * @param maxDelayMs longest wait. Defaults to 1000000 (1000 s).
   */
  constructor(
    readonly baseDelayMs = 5,
    readonly maxDelayMs = 1_000_000,
  ) {}

  when(key: string): number {
    const exp = this.#failures.get(key) ?? 0;
    this.#failures.set(key, exp + 1);
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** exp);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

export interface BucketRateLimiterOptions {
  /** Tokens added per second. Defaults to 10. */
  qps?: number;
  /** Bucket size: how many tries may pass at once after a quiet period. Defaults to 100. */
  burst?: number;
  /** Clock in milliseconds, replaceable in tests. Defaults to Date.now. */
  now?: () => number;
}

/**
 * A global token bucket (Go's `rate.Limiter` with `Reserve()`): every call takes a token, and
 * when none is left the caller waits until its token will have been refilled. Keys are ignored.
 */
export class BucketRateLimiter implements RateLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(options: BucketRateLimiterOptions = {}) {
    this.#qps = options.qps ?? 10;
    this.#burst = options.burst ?? 100;
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  when(): number {
    const now = this.#now();
    const elapsedSeconds = Math.max(0, now - this.#last) / 1000;
    this.#tokens = Math.min(this.#burst, this.#tokens + elapsedSeconds * this.#qps);
    this.#last = now;
    // Taking a token may go into debt: later callers then wait behind this one.
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.#qps) * 1000);
  }

  forget(): void {}

  numRequeues(): number {
    return 0;
  }
}

/** Asks every limiter and waits for the longest answer. */
export class MaxOfRateLimiter implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.#limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must see every call (the bucket takes a token, the backoff counts a failure).
    return Math.max(0, ...this.#limiters.map((l) => l.when(key)));
  }

  forget(key: string): void {
    for (const l of this.#limiters) l.forget(key);
  }

  numRequeues(key: string): number {
    return Math.max(0, ...this.#limiters.map((l) => l.numRequeues(key)));
  }
}

/** controller-runtime's default: exponential 5 ms → 1000 s per key, and 10/s (burst 100) overall. */
export function defaultControllerRateLimiter(options: { now?: () => number } = {}): RateLimiter {
  return new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5, 1_000_000), new BucketRateLimiter({ qps: 10, burst: 100, now: options.now }));
}
