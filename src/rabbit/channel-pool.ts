/**
 * A pool of AMQP channels on one `AmqpConnection`, built on generic-pool.
 *
 * Guarantees
 * - At most `size` channels. Every channel gets an 'error' listener (without one, a channel
 *   error takes the whole connection down).
 * - A channel that emitted 'close' or 'error' (amqplib closes a channel after a failed operation:
 *   404 from `checkQueue`, 406 from `assertQueue`) is destroyed and never handed out again:
 *   `release` destroys it, and every borrow validates first (generic-pool `testOnBorrow`).
 * - After a connection loss every channel of the old connection is invalid; new ones are opened
 *   on the reconnected connection.
 * - Exhaustion, when all `size` channels are borrowed: `block` waits up to `acquireTimeoutMs`,
 *   then rejects with `PoolExhaustedError` naming the size and the wait; `fail-fast` rejects
 *   with `PoolExhaustedError` at once; `queue` waits in FIFO order without limit.
 *
 * Failure modes
 * - Connection down: opening a channel waits for the reconnect. In `block` and `fail-fast` the
 *   wait is bounded by `acquireTimeoutMs` and rejects with `BrokerUnavailableError`; in `queue`
 *   it is not bounded.
 * - `idle` in `stats()` may count channels that died while idle; they are dropped at their next
 *   borrow, never handed out.
 * - A channel that cannot be opened is retried every 0.5 s while acquires wait.
 * - `drain()`/`close()` wait for borrowed channels to come back and for waiting acquires to be
 *   served: in `queue` mode with the broker away (or its `AmqpConnection` closed) that can be
 *   forever, so bound a shutdown with a timeout of its own.
 */
import { setTimeout } from 'node:timers/promises';
import type { Channel } from 'amqplib';
import { createPool, type Pool } from 'generic-pool';
import type { Registry } from 'prom-client';
import { registerChannelPoolMetrics, type ChannelPoolMetrics } from '../metrics/pool-metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { BrokerUnavailableError } from '../model/errors.js';

const CREATE_RETRY_PAUSE_MS = 500;

export type ExhaustionMode = 'block' | 'fail-fast' | 'queue';

export interface ChannelPoolOptions {
  /** The connection channels are opened on. Required. */
  connection: AmqpConnection;
  /** Most channels open at once (AMQP_CHANNEL_POOL_SIZE). Defaults to 10. */
  size?: number;
  /** Open publisher-confirm channels (type the pool `ChannelPool<ConfirmChannel>`). Defaults to false. */
  confirm?: boolean;
  /** What an acquire does when every channel is borrowed. Defaults to `block`. */
  exhaustion?: ExhaustionMode;
  /** How long `block` (and opening a channel in `fail-fast`) waits (CONNECTION_POOL_TIMEOUT). Defaults to 10000 ms. */
  acquireTimeoutMs?: number;
  /** The `pool` label of this pool's metrics, and its name in errors. Defaults to `default`. */
  name?: string;
  /** Where the `rabbitbatch_amqp_*` metrics go. Defaults to none. */
  registry?: Registry;
}

/** Every channel was borrowed for longer than the caller was willing to wait. */
export class PoolExhaustedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolExhaustedError';
  }
}

export interface ChannelPoolStats {
  /** Channels open (borrowed, idle, or being opened). */
  size: number;
  /** Channels borrowed. */
  active: number;
  /** Channels open and free. */
  idle: number;
  /** Acquires waiting. */
  pending: number;
  max: number;
}

/** What the pool remembers about a channel it opened. */
interface ChannelState {
  broken: boolean;
  /** The connection generation it was opened on. */
  generation: number;
}

export class ChannelPool<C extends Channel = Channel> {
  private readonly pool: Pool<C>;
  private readonly size: number;
  private readonly mode: ExhaustionMode;
  private readonly timeoutMs: number;
  private readonly name: string;
  private readonly metrics: ChannelPoolMetrics | undefined;
  private readonly state = new WeakMap<C, ChannelState>();
  /** Bumped on every connection loss: channels of an older generation are dead. */
  private generation = 0;
  private readonly onDisconnected = () => void this.generation++;

  constructor(private readonly o: ChannelPoolOptions) {
    this.size = Math.max(1, o.size ?? 10);
    this.mode = o.exhaustion ?? 'block';
    this.timeoutMs = o.acquireTimeoutMs ?? 10_000;
    this.name = o.name ?? 'default';
    this.pool = createPool<C>(
      {
        create: () => this.open(),
        destroy: async (ch) => {
          this.metrics?.destroyed();
          if (this.isUsable(ch)) await ch.close().catch(() => undefined);
        },
        validate: async (ch) => this.isUsable(ch),
      },
      {
        max: this.size,
        min: 0,
        testOnBorrow: true,
        fifo: true, // waiters are served in order; free channels are reused oldest first
        // generic-pool's own timeout removes the waiter from its queue when it fires.
        ...(this.mode === 'queue' ? {} : { acquireTimeoutMillis: this.timeoutMs }),
      },
    );
    o.connection.on('disconnected', this.onDisconnected);
    this.metrics = o.registry ? registerChannelPoolMetrics(o.registry, this.name, () => this.stats()) : undefined;
  }

  /** A free channel, validated; see the exhaustion modes above. */
  async acquire(): Promise<C> {
    const started = performance.now();
    try {
      if (this.mode === 'fail-fast' && this.noneFree()) {
        this.metrics?.exhausted();
        throw new PoolExhaustedError(`all ${this.size} AMQP channels of pool "${this.name}" are in use (exhaustion mode fail-fast; raise AMQP_CHANNEL_POOL_SIZE or choose block)`);
      }
      return await this.pool.acquire();
    } catch (err) {
      throw this.explain(err);
    } finally {
      this.metrics?.waited((performance.now() - started) / 1000);
    }
  }

  /** Gives a channel back; one that closed or failed is destroyed instead. */
  async release(ch: C): Promise<void> {
    if (this.isUsable(ch)) await this.pool.release(ch);
    else await this.pool.destroy(ch);
  }

  /** Closes a borrowed channel and frees its place. */
  async destroy(ch: C): Promise<void> {
    await this.pool.destroy(ch);
  }

  /**
   * Runs `fn` on a channel and gives it back. When `fn` fails the channel is destroyed rather
   * than reused: a failed operation has usually closed it, and one that has not may still have
   * an unfinished operation queued on it.
   */
  async use<T>(fn: (ch: C) => Promise<T>): Promise<T> {
    const ch = await this.acquire();
    let result: T;
    try {
      result = await fn(ch);
    } catch (err) {
      await this.destroy(ch).catch(() => undefined);
      throw err;
    }
    await this.release(ch);
    return result;
  }

  stats(): ChannelPoolStats {
    return { size: this.pool.size, active: this.pool.borrowed, idle: this.pool.available, pending: this.pool.pending, max: this.size };
  }

  /** Refuses new acquires and waits until every borrowed channel has come back. */
  async drain(): Promise<void> {
    await this.pool.drain();
  }

  /** `drain()`, then closes every channel; the pool cannot be used afterwards. */
  async close(): Promise<void> {
    this.o.connection.off('disconnected', this.onDisconnected);
    await this.drain();
    await this.pool.clear();
    this.metrics?.unregister();
  }

  private async open(): Promise<C> {
    let ch: C;
    let generation: number;
    try {
      const conn = await this.o.connection.connection();
      // Taken before the channel opens: if the connection is lost meanwhile, the channel belongs
      // to an older generation and fails validation instead of being handed out dead.
      generation = this.generation;
      ch = (this.o.confirm ? await conn.createConfirmChannel() : await conn.createChannel()) as C;
    } catch (err) {
      // generic-pool retries a failed create at once for as long as acquires wait: pause, so a
      // connection that refuses channels (or was closed for good) is not retried in a hot loop.
      await setTimeout(CREATE_RETRY_PAUSE_MS);
      throw err;
    }
    const state: ChannelState = { broken: false, generation };
    this.state.set(ch, state);
    ch.on('error', () => (state.broken = true)); // without this listener the connection dies too
    ch.on('close', () => (state.broken = true));
    this.metrics?.created();
    return ch;
  }

  private isUsable(ch: C): boolean {
    const s = this.state.get(ch);
    return s !== undefined && !s.broken && s.generation === this.generation;
  }

  /** No free channel and no room to open one. */
  private noneFree(): boolean {
    return this.pool.available === 0 && this.pool.size >= this.size;
  }

  /** Turns generic-pool's anonymous timeout into an error that says what happened. */
  private explain(err: unknown): unknown {
    if ((err as Error | undefined)?.name !== 'TimeoutError') return err;
    if (this.pool.borrowed >= this.size) {
      this.metrics?.exhausted();
      return new PoolExhaustedError(`no AMQP channel free after waiting ${this.timeoutMs} ms: all ${this.size} channels of pool "${this.name}" are in use (exhaustion mode ${this.mode}; raise AMQP_CHANNEL_POOL_SIZE or CONNECTION_POOL_TIMEOUT)`);
    }
    // Say why the connection is down when it is known (a TLS refusal reads very differently).
    const why = this.o.connection.lastError?.message;
    return new BrokerUnavailableError(`could not open an AMQP channel within ${this.timeoutMs} ms: the connection to RabbitMQ is down or refuses channels${why ? ` (last connection error: ${why})` : ''}`, { cause: err });
  }
}
