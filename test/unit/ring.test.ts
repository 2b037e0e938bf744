import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RendezvousHash } from '../../src/sharding/ring.js';

const keys = Array.from({ length: 3000 }, (_, i) => `ns-${i % 7}/batch-${i}`);

describe('RendezvousHash', () => {
  it('spreads keys over members evenly: no member gets more than its share beyond the keys\' own spread', () => {
    // Fixed member sets, pod-like names among them; 3,000 keys spread with a binomial standard
    // deviation of under 0.01 per share, so 0.03 is over 3 of them. The hash ring this replaced
    // (128 virtual nodes each) gave `scale2-0` 55% and `scale2-1` 45% of any key set.
    const sets = [['a', 'b'], ['scale2-0', 'scale2-1'], ['rabbitbatch-7d9f8c6b5-x2k4p', 'rabbitbatch-7d9f8c6b5-q8m3z'], ['a', 'b', 'c'], ['r-0', 'r-1', 'r-2', 'r-3']];
    for (const members of sets) {
      const ring = new RendezvousHash(members);
      const counts = new Map<string, number>();
      for (const k of keys) counts.set(ring.owner(k)!, (counts.get(ring.owner(k)!) ?? 0) + 1);
      for (const m of members) expect(Math.abs((counts.get(m) ?? 0) / keys.length - 1 / members.length), `${m} of ${members.join(', ')}`).toBeLessThan(0.03);
    }
  });

  it('gives a joining member only keys it takes from the others, none moving between them', () => {
    const before = new RendezvousHash(['a', 'b']);
    const after = new RendezvousHash(['a', 'b', 'c']);
    for (const k of keys) if (after.owner(k) !== 'c') expect(after.owner(k)).toBe(before.owner(k));
  });

  it('moves only the keys of the member that left, and to a joining member only its share', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 2, maxLength: 6 }), (members) => {
        const full = new RendezvousHash(members);
        const gone = members[0]!;
        const rest = new RendezvousHash(members.slice(1));
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
    expect(new RendezvousHash([]).owner('a/b')).toBeUndefined();
  });
});
