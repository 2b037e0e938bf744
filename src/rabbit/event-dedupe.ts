/**
 * Drops repeated deliveries of one RabbitMQ event.
 *
 * Seen on RabbitMQ 3.10.8 (Debian): `rabbit_event` can hold the event exchange's handler twice
 * (`gen_event:which_handlers(rabbit_event)` lists `rabbit_exchange_type_event` two times), and then
 * every event is published twice with identical headers, `timestamp_in_ms` included. Taken at face
 * value, the second copy of our own write's event looks like somebody else's change: the cache
 * distrusts the object and the batch is reconciled once more for nothing.
 *
 * Two deliveries are the same event when routing key and headers are equal; the timestamp makes a
 * real second change (created, deleted, created again) differ. Entries expire after `windowMs`.
 */
import { LRUCache } from 'lru-cache';

export class EventDeduplicator {
  private readonly seen: LRUCache<string, true>;

  constructor(windowMs = 10_000, max = 50_000) {
    this.seen = new LRUCache<string, true>({ max, ttl: windowMs, ttlAutopurge: false });
  }

  /** True the first time this (routing key, headers) is seen within the window. */
  first(routingKey: string, headers: Record<string, unknown>): boolean {
    const key = `${routingKey} ${JSON.stringify(headers)}`;
    if (this.seen.has(key)) return false;
    this.seen.set(key, true);
    return true;
  }
}
