import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ItemExponentialFailureRateLimiter } from '../../../src/controllers/rate-limiter.js';
import { WorkQueue } from '../../../src/controllers/workqueue.js';

/** Histogram samples carry their series name (`_sum`, `_bucket`, ...) outside the declared type. */
const metricName = (v: object) => (v as { metricName?: string }).metricName;

/** Resolves the promise's value if it settled within the current macrotask, else 'pending'. */
async function peek<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
}

describe('WorkQueue', () => {
  it('hands out a key queued twice only once', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
  });

  it('never hands a key to a second worker while the first still has it', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    const second = q.get();
    expect(await peek(second)).toBe('pending');
    q.done('a');
    expect(await second).toBe('a');
  });

  it('runs a key re-added during processing exactly once more', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    q.add('a');
    q.done('a');
    expect(await q.get()).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
    expect(await peek(q.get())).toBe('pending');
  });

  it('wakes a waiting worker when a key arrives', async () => {
    const q = new WorkQueue({ name: 't' });
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
  });

  it('keeps keys in FIFO order across many adds (queue compaction)', async () => {
    const q = new WorkQueue({ name: 't' });
    for (let i = 0; i < 3000; i++) q.add(`k${i}`);
    for (let i = 0; i < 3000; i++) {
      const key = await q.get();
      expect(key).toBe(`k${i}`);
      q.done(key as string);
    }
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('releases delayed keys in order of their due time; the earliest request for a key wins', async () => {
      const q = new WorkQueue({ name: 't' });
      q.addAfter('b', 200);
      q.addAfter('a', 100);
      q.addAfter('c', 300);
      q.addAfter('b', 50); // earlier: replaces 200
      q.addAfter('a', 500); // later: ignored, stays at 100
      expect(q.len()).toBe(0);
      vi.advanceTimersByTime(50);
      expect(q.len()).toBe(1);
      vi.advanceTimersByTime(250);
      expect(q.len()).toBe(3);
      expect([await q.get(), await q.get(), await q.get()]).toEqual(['b', 'a', 'c']);
      vi.advanceTimersByTime(1000);
      expect(q.len()).toBe(0);
    });

    it('addAfter with no delay adds at once', () => {
      const q = new WorkQueue({ name: 't' });
      q.addAfter('a', 0);
      expect(q.len()).toBe(1);
    });

    it('retries with per-key exponential backoff and forgets on success', () => {
      const q = new WorkQueue({ name: 't', rateLimiter: new ItemExponentialFailureRateLimiter(5, 1_000_000) });
      q.addRateLimited('a'); // 5 ms
      vi.advanceTimersByTime(4);
      expect(q.len()).toBe(0);
      vi.advanceTimersByTime(1);
      expect(q.len()).toBe(1);
      expect(q.numRequeues('a')).toBe(1);
      q.addRateLimited('b');
      q.addRateLimited('b'); // b waits 5 ms (the first), the 10 ms one is later and ignored
      expect(q.numRequeues('b')).toBe(2);
      q.forget('a');
      expect(q.numRequeues('a')).toBe(0);
    });

    it('drops delayed keys on shutdown', () => {
      const q = new WorkQueue({ name: 't' });
      q.addAfter('a', 100);
      q.shutDown();
      vi.advanceTimersByTime(200);
      expect(q.len()).toBe(0);
    });
  });

  it('shuts down: ignores adds, still hands out queued keys, then undefined', async () => {
    const q = new WorkQueue({ name: 't' });
    const idle = q.get();
    q.add('a');
    expect(await idle).toBe('a');
    q.add('b');
    const idle2 = q.get(); // gets b
    const idle3 = q.get(); // waits
    q.shutDown();
    expect(await idle2).toBe('b');
    expect(await idle3).toBeUndefined();
    q.add('c');
    expect(q.len()).toBe(0);
    expect(await q.get()).toBeUndefined();
  });

  it('shutDownWithDrain waits until keys in progress are done', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    expect(await q.get()).toBe('a');
    const drained = q.shutDownWithDrain();
    expect(await peek(drained)).toBe('pending');
    q.done('a');
    await drained;
  });

  it('exports controller-runtime workqueue metrics labelled {name, controller}, several queues per registry', async () => {
    const registry = new Registry();
    let now = 1_000;
    const q = new WorkQueue({ name: 'gadgets', registry, now: () => now });
    new WorkQueue({ name: 'other', registry });
    const value = async (metric: string, suffix = '') => {
      const m = (await registry.getSingleMetric(metric)?.get())?.values.find((v) => v.labels.name === 'gadgets' && (suffix ? metricName(v) === metric + suffix : true));
      return m;
    };
    // Every series exists at zero before anything happened.
    expect((await value('workqueue_adds_total'))?.value).toBe(0);
    expect((await value('workqueue_depth'))?.labels).toEqual({ name: 'gadgets', controller: 'gadgets' });

    q.add('a');
    q.add('a');
    q.add('b');
    expect((await value('workqueue_adds_total'))?.value).toBe(2);
    expect((await value('workqueue_depth'))?.value).toBe(2);
    now += 2_000;
    await q.get();
    expect((await value('workqueue_depth'))?.value).toBe(1);
    expect((await value('workqueue_queue_duration_seconds', '_sum'))?.value).toBe(2);
    now += 3_000;
    expect((await value('workqueue_unfinished_work_seconds'))?.value).toBe(3);
    expect((await value('workqueue_longest_running_processor_seconds'))?.value).toBe(3);
    q.done('a');
    expect((await value('workqueue_work_duration_seconds', '_count'))?.value).toBe(1);
    expect((await value('workqueue_work_duration_seconds', '_sum'))?.value).toBe(3);
    expect((await value('workqueue_unfinished_work_seconds'))?.value).toBe(0);
    q.addAfter('c', 10);
    q.addRateLimited('d');
    expect((await value('workqueue_retries_total'))?.value).toBe(2);
    q.shutDown();
    const buckets = (await registry.getSingleMetric('workqueue_work_duration_seconds')?.get())?.values.filter((v) => metricName(v)?.endsWith('_bucket') && v.labels.name === 'gadgets').map((v) => v.labels.le);
    expect(buckets).toEqual([1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000, '+Inf']);
  });
});
