/**
 * The operator's view of RabbitMQ beyond single requests: the cache of observed state, the
 * event stream that keeps it true and triggers drift repair, and the periodic full re-list.
 *
 * Expected flow: per broker in use (broker-registry.ts), subscribe to `amq.rabbitmq.event` →
 * (after every subscribe) drop that broker's cache and re-verify its batches → each event
 * updates the cache and, when it is someone else's change, enqueues the batches that declare the
 * object → every `RESYNC_INTERVAL` a full re-list of every broker.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CachedObservedState } from '../cache/observed-cache.js';
import type { OperatorConfig } from '../config/config.js';
import { registerCacheMetrics } from '../metrics/cache-metrics.js';
import type { RabbitEvent } from '../model/observed.js';
import { BrokerRegistry } from './broker-registry.js';

/** What the batch controller does with RabbitMQ's side: given at `start`, never patched in later. */
export interface RabbitHooks {
  /** Somebody else changed an object on `broker`: repair the batches that declare it. */
  onDrift(broker: string, event: RabbitEvent): void;
  /** The cache of `broker` was dropped (its stream subscribed): re-verify its batches; every batch when `broker` is undefined (periodic resync). */
  onResync(broker?: string): void;
  /** `broker` lost or gained the event exchange: its batches' status says how drift is repaired. */
  onEventStateChanged(broker: string): void;
}

export interface RabbitSide {
  cache: CachedObservedState;
  /** One event stream per broker in use. */
  brokers: BrokerRegistry;
  lastFullResync: Date | undefined;
  /** When the next periodic full re-list runs. */
  nextFullResync(): Date;
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

  let timer: NodeJS.Timeout | undefined;
  const startedAt = Date.now();
  let hooks: RabbitHooks = { onDrift: () => undefined, onResync: () => undefined, onEventStateChanged: () => undefined };
  if (!config.events) log.info('RabbitMQ events off (RABBITMQ_EVENTS=false): drift is repaired by the periodic re-list only');
  const side: RabbitSide = {
    cache,
    lastFullResync: undefined,
    nextFullResync: () => new Date((side.lastFullResync?.getTime() ?? startedAt) + config.resyncIntervalMs),
    brokers: new BrokerRegistry({
      identity: config.identity,
      enabled: config.events,
      log,
      hooks: {
        onEvent: (broker, event) => {
          if (cache.applyEvent(broker, event)) hooks.onDrift(broker, event);
        },
        onSubscribed: (broker) => {
          cache.setEventsLive(broker, true);
          cache.invalidateBroker(broker, 'resync');
          hooks.onResync(broker);
        },
        onUnsubscribed: (broker) => cache.setEventsLive(broker, false),
        onStateChanged: (broker) => hooks.onEventStateChanged(broker),
      },
    }),
    async start(given) {
      hooks = given;
      shared?.start();
      timer = setInterval(() => {
        cache.invalidateAll('resync');
        side.lastFullResync = new Date();
        hooks.onResync();
      }, config.resyncIntervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await side.brokers.stop();
      await shared?.close();
    },
  };
  return side;
}
