/** One RabbitMQ event delivered twice reaches the cache once; a real second change does not look like a repeat. */
import { describe, expect, it } from 'vitest';
import { EventDeduplicator } from '../../src/rabbit/event-dedupe.js';

const created = (ts: number) => ({ user_who_performed_action: 'guest', durable: true, name: 'q', vhost: 'v', timestamp_in_ms: ts });

describe('EventDeduplicator', () => {
  it('drops the second delivery of an identical event', () => {
    const d = new EventDeduplicator();
    expect(d.first('queue.created', created(1))).toBe(true);
    expect(d.first('queue.created', created(1))).toBe(false);
  });

  it('lets through a later change of the same object (created, deleted, created again)', () => {
    const d = new EventDeduplicator();
    expect(d.first('queue.created', created(1))).toBe(true);
    expect(d.first('queue.deleted', { name: 'q', vhost: 'v', timestamp_in_ms: 2 })).toBe(true);
    expect(d.first('queue.created', created(3))).toBe(true);
  });

  it('forgets an event after its window', async () => {
    const d = new EventDeduplicator(20);
    expect(d.first('queue.created', created(1))).toBe(true);
    await new Promise((r) => setTimeout(r, 40));
    expect(d.first('queue.created', created(1))).toBe(true);
  });
});
