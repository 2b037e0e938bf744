/**
 * The operator's view of RabbitMQ beyond single requests: the cache of observed state, the
 * event stream that keeps it true and triggers drift repair, and the periodic full re-list.
 *
 * Expected flow: subscribe to `amq.rabbitmq.event` → (after every subscribe) drop the cache and
 * re-verify every batch → each event updates the cache and, when it is someone else's change,
 * enqueues the batches that declare the object → every `RESYNC_INTERVAL` a full re-list again.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CachedObservedState } from '../cache/observed-cache.js';
import type { OperatorConfig } from '../config/config.js';
import { registerCacheMetrics } from '../metrics/cache-metrics.js';
import { AmqpConnection } from '../rabbit/amqp-connection.js';
import { RabbitEventStream } from '../rabbit/event-stream.js';
import type { RabbitEvent } from '../model/observed.js';

/** What the batch controller does with RabbitMQ's side: given at `start`, never patched in later. */
export interface RabbitHooks {
  /** The default connection's endpoint: the one whose events we receive. */
  endpoint: string;
  /** Somebody else changed an object: repair the batches that declare it. */
  onDrift(event: RabbitEvent): void;
  /** The cache was dropped (subscribe, periodic resync): re-verify every batch. */
  onResync(): void;
}

export interface RabbitSide {
  cache: CachedObservedState;
  events: RabbitEventStream;
  lastFullResync: Date | undefined;
  start(hooks: RabbitHooks): Promise<void>;
  stop(): Promise<void>;
}

export async function startRabbitSide(config: Readonly<OperatorConfig>, log: Logger, registry: Registry): Promise<RabbitSide> {
  // Imported only with CACHE_BACKEND=redis: the Redis client is ~600 modules the in-memory cache does not need.
  const shared = config.cache.backend === 'redis' ? new (await import('../cache/redis-shared-cache.js')).RedisSharedCache({ url: config.cache.redisUrl, log }) : undefined;
  const cache = new CachedObservedState({
    ttlListsMs: config.cache.ttlListsMs,
    ttlMetadataMs: config.cache.ttlMetadataMs,
    maxSize: config.cache.maxSize,
    ...(shared ? { shared } : {}),
  });
  registerCacheMetrics(registry, () => cache.stats());
  const url = new URL(config.amqpUrl);
  url.username = encodeURIComponent(config.rabbit.username);
  url.password = encodeURIComponent(config.rabbit.password);
  url.pathname = '/'; // amq.rabbitmq.event lives in vhost "/" and carries every vhost's events
  const connection = new AmqpConnection({ url: url.href, connectionName: `rabbitbatch-events-${config.identity}`, ...(config.rabbit.ca ? { ca: config.rabbit.ca } : {}) });
  connection.on('retry', (err: unknown, delay: number) => log.warn({ err, retryInMs: delay }, 'RabbitMQ event stream: reconnecting'));
  connection.on('disconnected', () => log.info('RabbitMQ event stream: AMQP connection closed'));
  connection.on('connected', () => log.info('RabbitMQ event stream: AMQP connection open'));

  let timer: NodeJS.Timeout | undefined;
  let hooks: RabbitHooks = { endpoint: '', onDrift: () => undefined, onResync: () => undefined };
  const side: RabbitSide = {
    cache,
    lastFullResync: undefined,
    events: new RabbitEventStream({
      connection,
      onEvent: (event) => {
        if (cache.applyEvent(hooks.endpoint, event)) hooks.onDrift(event);
      },
      onSubscribed: () => {
        log.info('subscribed to RabbitMQ events: re-verifying every batch');
        cache.setEventsLive(hooks.endpoint, true);
        fullResync('resync');
      },
      onUnsubscribed: () => {
        log.warn('RabbitMQ event stream lost: the cache expires entries until it is back');
        cache.setEventsLive(hooks.endpoint, false);
      },
      onError: (err) => log.warn({ err }, 'RabbitMQ event stream error'),
    }),
    async start(given) {
      hooks = given;
      shared?.start();
      timer = setInterval(() => fullResync('resync'), config.resyncIntervalMs);
      timer.unref();
      // Events are an optimisation over TTLs: the operator works without them.
      if (config.events) void side.events.start().catch((err: Error) => log.warn({ err: err.message }, 'RabbitMQ event stream not available yet'));
      else log.info('RabbitMQ events off (RABBITMQ_EVENTS=false): drift is repaired by the periodic re-list only');
    },
    async stop() {
      clearInterval(timer);
      await side.events.stop();
      await connection.close();
      await shared?.close();
    },
  };
  function fullResync(source: 'resync'): void {
    cache.invalidateAll(source);
    side.lastFullResync = new Date();
    hooks.onResync();
  }
  return side;
}
