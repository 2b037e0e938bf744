/**
 * Jittered exponential backoff that forgets past failures after a quiet period, as kube-rs
 * pairs `ExponentialBackoff` with `ResetTimerBackoff`: a watch that fails once an hour always
 * retries after ~0.8 s, while one that keeps failing backs off to 30 s.
 */

export interface BackoffOptions {
  /** Delay before the first retry, in milliseconds. Defaults to 800. */
  initialMs?: number;
  /** Upper bound of the un-jittered delay, in milliseconds. Defaults to 30000. */
  maxMs?: number;
  /** Growth factor between consecutive failures. Defaults to 2. */
  factor?: number;
  /**
   * Relative jitter: each delay is spread uniformly over ±jitter of its nominal value, so
   * many watchers that failed together do not retry together. Defaults to 0.2.
   */
  jitter?: number;
  /** After this long without a call to `next()`, the sequence starts again from `initialMs`. Defaults to 120000 (2 minutes). */
  resetAfterMs?: number;
  /** Source of randomness in [0, 1), replaceable in tests. Defaults to Math.random. */
  random?: () => number;
  /** Clock in milliseconds, replaceable in tests. Defaults to Date.now. */
  now?: () => number;
}

export class Backoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #resetAfterMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  #lastAt: number | undefined;

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 800;
    this.#maxMs = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.2;
    this.#resetAfterMs = options.resetAfterMs ?? 120_000;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** The delay to wait before the next retry; each call counts as one more failure. */
  next(): number {
    const now = this.#now();
    if (this.#lastAt !== undefined && now - this.#lastAt >= this.#resetAfterMs) this.#attempt = 0;
    this.#lastAt = now;
    const nominal = Math.min(this.#maxMs, this.#initialMs * this.#factor ** this.#attempt);
    // Stop growing the exponent once capped so it never overflows to Infinity.
    if (nominal < this.#maxMs) this.#attempt += 1;
    const spread = 1 + this.#jitter * (2 * this.#random() - 1);
    return Math.round(nominal * spread);
  }

  /** Starts the sequence again from `initialMs`. */
  reset(): void {
    this.#attempt = 0;
    this.#lastAt = undefined;
  }
}
