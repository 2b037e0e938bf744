import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashRing } from '../../src/sharding/ring.js';

const keys = Array.from({ length: 3000 }, (_, i) => `ns-${i % 7}/batch-${i}`);

describe('HashRing', () => {
  it('spreads keys over members roughly evenly', () => {
    const ring = new HashRing(['a', 'b', 'c']);
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(ring.owner(k)!, (counts.get(ring.owner(k)!) ?? 0) + 1);
    for (const n of counts.values()) expect(n).toBeGreaterThan(keys.length / 3 / 1.5);
  });

  it('moves only the keys of the member that left, and to a joining member only its share', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 2, maxLength: 6 }), (members) => {
        const full = new HashRing(members);
        const gone = members[0]!;
        const rest = new HashRing(members.slice(1));
        for (const k of keys.slice(0, 500)) {
          const before = full.owner(k)!;
          if (before !== gone) expect(rest.owner(k)).toBe(before); // nobody else's keys move
          else expect(rest.owner(k)).not.toBe(gone);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('owns nothing when empty', () => {
    expect(new HashRing([]).owner('a/b')).toBeUndefined();
  });
});
