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
import type { RabbitQueueBatch } from '../api/schema.js';
import { CachedObservedState } from '../cache/observed-cache.js';
import { RedisSharedCache } from '../cache/redis-shared-cache.js';
import type { OperatorConfig } from '../config/config.js';
import { registerCacheMetrics } from '../metrics/cache-metrics.js';
import { bindingId } from '../batch/resources.js';
import { AmqpConnection } from '../rabbit/amqp-connection.js';
import { RabbitEventStream, type RabbitEvent } from '../rabbit/event-stream.js';
import { CLAIMS_INDEX, keyOf } from './rabbitqueuebatch-reconciler.js';

export interface RabbitSide {
  cache: CachedObservedState;
  events: RabbitEventStream;
  /** The default connection's endpoint: the one whose events we receive. */
  endpoint: string;
  lastFullResync: Date | undefined;
  onDrift: (event: RabbitEvent) => void;
  onResync: () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function startRabbitSide(config: Readonly<OperatorConfig>, log: Logger, registry: Registry): RabbitSide {
  const shared = config.cache.backend === 'redis' ? new RedisSharedCache({ url: config.cache.redisUrl, log }) : undefined;
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
  const side: RabbitSide = {
    cache,
    endpoint: '',
    lastFullResync: undefined,
    onDrift: () => undefined,
    onResync: () => undefined,
    events: new RabbitEventStream({
      connection,
      onEvent: (event) => {
        if (cache.applyEvent(side.endpoint, event)) side.onDrift(event);
      },
      onSubscribed: () => {
        log.info('subscribed to RabbitMQ events: re-verifying every batch');
        cache.setEventsLive(side.endpoint, true);
        fullResync('resync');
      },
      onUnsubscribed: () => {
        log.warn('RabbitMQ event stream lost: the cache expires entries until it is back');
        cache.setEventsLive(side.endpoint, false);
      },
      onError: (err) => log.warn({ err }, 'RabbitMQ event stream error'),
    }),
    async start() {
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
    side.onResync();
  }
  return side;
}

/** The batches that declare the object an event is about (drift repair targets). */
export function batchesConcerned(store: { byIndex(i: string, v: string): RabbitQueueBatch[]; list(): RabbitQueueBatch[] }, e: RabbitEvent): string[] {
  // Events come from the default connection's broker: its claims are keyed `default`.
  const lookup = (resource: string) => store.byIndex(CLAIMS_INDEX, `default|${e.vhost}|${resource}`).map(keyOf);
  switch (e.kind) {
    case 'queue':
    case 'exchange':
      return lookup(`${e.kind}/${e.name}`);
    case 'binding':
      return lookup(bindingId({ source: e.source, destination: e.destination, destinationType: e.destinationType, routingKey: e.routingKey }));
    case 'vhost':
      return store.list().filter((b) => (b.spec.vhost ?? '/') === e.vhost).map(keyOf);
    default:
      return [];
  }
}
