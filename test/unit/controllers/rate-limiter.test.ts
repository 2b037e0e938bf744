import { describe, expect, it } from 'vitest';
import { BucketRateLimiter, ItemExponentialFailureRateLimiter, defaultControllerRateLimiter } from '../../../src/controllers/rate-limiter.js';

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles from 5 ms per key up to 1000 s, and forgets', () => {
    const rl = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    expect([1, 2, 3, 4, 5].map(() => rl.when('a'))).toEqual([5, 10, 20, 40, 80]);
    expect(rl.when('b')).toBe(5);
    expect(rl.numRequeues('a')).toBe(5);
    for (let i = 0; i < 40; i++) rl.when('a');
    expect(rl.when('a')).toBe(1_000_000);
    rl.forget('a');
    expect(rl.numRequeues('a')).toBe(0);
    expect(rl.when('a')).toBe(5);
  });

  it('stays capped (no Infinity or NaN) after thousands of failures', () => {
    const rl = new ItemExponentialFailureRateLimiter(5, 1_000_000);
    let last = 0;
    for (let i = 0; i < 5000; i++) last = rl.when('a');
    expect(last).toBe(1_000_000);
  });
});

describe('BucketRateLimiter', () => {
  it('lets a burst of 100 through, then spaces calls 100 ms apart, and refills at 10/s', () => {
    let now = 0;
    const rl = new BucketRateLimiter({ qps: 10, burst: 100, now: () => now });
    for (let i = 0; i < 100; i++) expect(rl.when()).toBe(0);
    expect(rl.when()).toBe(100);
    expect(rl.when()).toBe(200);
    now += 1_000; // 10 tokens back, 2 owed
    expect(rl.when()).toBe(0);
    for (let i = 0; i < 7; i++) rl.when();
    expect(rl.when()).toBe(100);
  });
});

describe('defaultControllerRateLimiter', () => {
  it('takes the longer of per-key backoff and the global bucket', () => {
    const now = 0;
    const rl = defaultControllerRateLimiter({ now: () => now });
    expect(rl.when('a')).toBe(5);
    expect(rl.when('a')).toBe(10);
    for (let i = 0; i < 98; i++) rl.when(`k${i}`);
    // The bucket is empty: a fresh key waits for the bucket, not its own 5 ms.
    expect(rl.when('fresh')).toBe(100);
    expect(rl.numRequeues('a')).toBe(2);
  });
});
