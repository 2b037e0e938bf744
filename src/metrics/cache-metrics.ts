/** Cache metrics, read from the cache's own counters at scrape time. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CacheStats } from '../cache/observed-cache.js';

export function registerCacheMetrics(registry: Registry, stats: () => CacheStats): void {
  const r = [registry];
  const counter = (name: string, help: string, read: (s: CacheStats) => number) =>
    new Counter({
      name,
      help,
      registers: r,
      collect() {
        this.reset();
        this.inc(read(stats()));
      },
    });
  counter('rabbitbatch_cache_hits_total', 'Reads of observed RabbitMQ state answered by the cache.', (s) => s.hits);
  counter('rabbitbatch_cache_misses_total', 'Reads of observed RabbitMQ state that went to RabbitMQ (or Redis).', (s) => s.misses);
  counter('rabbitbatch_cache_evictions_total', 'Entries evicted because the cache was full (CACHE_MAX_SIZE).', (s) => s.evictions);
  new Counter({
    name: 'rabbitbatch_cache_invalidations_total',
    help: 'Cache entries dropped, by source: write (own failed write), event (RabbitMQ event), resync (periodic re-list), redis (another replica), stream-lost.',
    labelNames: ['source'],
    registers: r,
    collect() {
      this.reset();
      for (const [source, n] of Object.entries(stats().invalidations)) this.inc({ source }, n);
    },
  });
  new Gauge({ name: 'rabbitbatch_cache_entries', help: 'Entries in the in-process cache.', registers: r, collect() { this.set(stats().size); } });
  new Gauge({ name: 'rabbitbatch_cache_hit_ratio', help: 'Cache hits / reads since start.', registers: r, collect() { this.set(stats().hitRate); } });
}
