/**
 * The cache against the real broker and Redis: a warm cache costs RabbitMQ nothing, an
 * invalidation on one replica reaches another through Redis, and Redis being down degrades to L1.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueSchema } from '../../src/api/schema.js';
import { CachedObservedState } from '../../src/cache/observed-cache.js';
import { RedisSharedCache } from '../../src/cache/redis-shared-cache.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { createTestVhost, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const log = pino({ enabled: false });
let vh: { name: string; cleanup: () => Promise<void> };
const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest', minSize: 1 });
const redis: RedisSharedCache[] = [];

beforeAll(async () => {
  vh = await createTestVhost('cache');
});
afterAll(async () => {
  await Promise.all(redis.map((r) => r.close()));
  await api.close();
  await vh.cleanup();
});

function replica(url = 'redis://127.0.0.1:6379') {
  const shared = new RedisSharedCache({ url, log });
  shared.start();
  redis.push(shared);
  return { shared, cache: new CachedObservedState({ shared }) };
}

describe('CachedObservedState', () => {
  it('answers repeated reads from the cache: no request after warming', async () => {
    const cache = new CachedObservedState();
    await cache.warm(api, [vh.name]);
    const before = api.poolStats().requests;
    for (let i = 0; i < 50; i++) await cache.observe(api, vh.name);
    expect(api.poolStats().requests - before).toBe(0);
    expect(cache.stats().hitRate).toBeGreaterThan(0.95);
  });

  it('an invalidation on one replica reaches the other through Redis', async () => {
    const a = replica();
    const b = replica();
    await eventually(() => expect(a.shared.connected && b.shared.connected).toBe(true));
    await a.cache.observe(api, vh.name);
    await b.cache.observe(api, vh.name);
    await api.putQueue(vh.name, queueSchema.parse({ name: 'redis.seen' }));
    a.cache.invalidate(api, vh.name); // replica a made (or saw) the change
    await eventually(async () => expect((await b.cache.observe(api, vh.name)).queues.has('redis.seen')).toBe(true));
    expect(b.cache.stats().invalidations.redis).toBeGreaterThan(0);
  });

  it('runs on its in-process cache when Redis is unreachable', async () => {
    const down = replica('redis://127.0.0.1:1');
    const observed = await down.cache.observe(api, vh.name);
    expect(observed.exists).toBe(true);
    expect(down.shared.connected).toBe(false);
  });
});
