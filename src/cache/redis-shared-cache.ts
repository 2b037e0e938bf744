/**
 * The L2 cache in Redis, shared by replicas (`CACHE_BACKEND=redis`), and invalidations broadcast
 * over Redis pub/sub so every replica drops stale L1 entries.
 *
 * Guarantees
 * - Never fails a reconcile: while Redis is down every call resolves (get → undefined) and the
 *   operator runs on its L1 cache; node-redis reconnects with backoff and L2 resumes by itself.
 * - A replica ignores its own broadcasts (messages carry an instance id).
 *
 * Failure modes
 * - Invalidations broadcast while a replica is disconnected from Redis are lost to it; that
 *   replica drops its whole L1 when it reconnects, so it cannot keep a stale entry.
 */
import { randomUUID } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import type { Logger } from 'pino';
import type { SharedCache } from './shared-cache.js';

const PREFIX = 'rabbitbatch:';
export const INVALIDATE_CHANNEL = 'rabbitbatch:invalidate';

export interface RedisSharedCacheOptions {
  /** `redis://host:6379`. Required. */
  url: string;
  log: Logger;
}

export class RedisSharedCache implements SharedCache {
  private readonly id = randomUUID();
  private readonly client: RedisClientType;
  private readonly subscriber: RedisClientType;
  private readonly handlers: ((keys: string[]) => void)[] = [];
  private up = false;
  private warned = false;

  constructor(private readonly o: RedisSharedCacheOptions) {
    const socket = { reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 5_000), connectTimeout: 2_000 };
    this.client = createClient({ url: o.url, socket, disableOfflineQueue: true }) as RedisClientType;
    this.subscriber = createClient({ url: o.url, socket }) as RedisClientType;
    for (const c of [this.client, this.subscriber]) c.on('error', (err: Error) => this.down(err));
    this.client.on('ready', () => this.ready());
  }

  /** Connects in the background; resolves at once whether or not Redis answers. */
  start(): void {
    void this.client.connect().catch((err: Error) => this.down(err));
    void this.subscriber
      .connect()
      .then(() =>
        this.subscriber.subscribe(INVALIDATE_CHANNEL, (message) => {
          const { from, keys } = JSON.parse(message) as { from: string; keys: string[] };
          if (from !== this.id) for (const h of this.handlers) h(keys);
        }),
      )
      .catch((err: Error) => this.down(err));
  }

  get connected(): boolean {
    return this.up;
  }

  async get(key: string): Promise<unknown> {
    if (!this.up) return undefined;
    try {
      const text = await this.client.get(PREFIX + key);
      return text === null ? undefined : JSON.parse(text);
    } catch (err) {
      this.down(err as Error);
      return undefined;
    }
  }

  async set(key: string, value: unknown, ttlMs: number): Promise<void> {
    if (!this.up) return;
    try {
      await this.client.set(PREFIX + key, JSON.stringify(value), ttlMs > 0 ? { PX: ttlMs } : {});
    } catch (err) {
      this.down(err as Error);
    }
  }

  async invalidate(keys: string[]): Promise<void> {
    if (!this.up || keys.length === 0) return;
    try {
      await this.client.del(keys.map((k) => PREFIX + k));
      await this.client.publish(INVALIDATE_CHANNEL, JSON.stringify({ from: this.id, keys }));
    } catch (err) {
      this.down(err as Error);
    }
  }

  onInvalidate(handler: (keys: string[]) => void): void {
    this.handlers.push(handler);
  }

  /** Closes gracefully when connected; otherwise stops reconnecting at once (never hangs). */
  async close(): Promise<void> {
    for (const c of [this.client, this.subscriber]) {
      if (c.isReady) await c.close().catch(() => undefined);
      else {
        try {
          c.destroy();
        } catch {
          // never connected: nothing to stop
        }
      }
    }
  }

  private ready(): void {
    if (!this.up && this.warned) this.o.log.info('Redis is back: the shared cache resumes');
    this.up = true;
    this.warned = false;
    // Broadcasts may have been missed while disconnected: drop the whole L1.
    for (const h of this.handlers) h(['*']);
  }

  private down(err: Error): void {
    this.up = false;
    if (!this.warned) this.o.log.warn({ err: err.message }, 'Redis unavailable: running on the in-process cache only');
    this.warned = true;
  }
}
