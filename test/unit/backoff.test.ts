import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/util/backoff.js';

describe('Backoff', () => {
  it('doubles from 0.8 s to a 30 s cap without jitter', () => {
    const b = new Backoff({ jitter: 0, now: () => 0 });
    expect(Array.from({ length: 8 }, () => b.next())).toEqual([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
  });

  it('spreads each delay within ±20 % by default', () => {
    const low = new Backoff({ random: () => 0, now: () => 0 });
    const high = new Backoff({ random: () => 0.999999, now: () => 0 });
    expect(low.next()).toBe(640);
    expect(high.next()).toBe(960);
    for (let i = 0; i < 10; i++) high.next();
    expect(high.next()).toBe(36000);
  });

  it('starts over after two quiet minutes, not before', () => {
    let now = 0;
    const b = new Backoff({ jitter: 0, now: () => now });
    b.next();
    b.next();
    now += 119_000;
    expect(b.next()).toBe(3200);
    now += 120_000;
    expect(b.next()).toBe(800);
  });

  it('reset() starts over at once', () => {
    const b = new Backoff({ jitter: 0, now: () => 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(800);
  });
});
