/**
 * LayeredMap, the observed-state cache's versions of one list: every version reads like a Map
 * given the same writes, and a version that was copied (handed out) never changes when its
 * copies are written to, across layer fold-ins into a new base.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LayeredMap } from '../../src/cache/layered-map.js';

type Step = { op: 'set'; key: string; value: number } | { op: 'delete'; key: string } | { op: 'copy' };

const key = fc.integer({ min: 0, max: 400 }).map((n) => `k${n}`);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.integer() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
  { weight: 1, arbitrary: fc.constant({ op: 'copy' as const }) },
);

const contents = (m: ReadonlyMap<string, number>) => new Map([...m.entries()]);

describe('LayeredMap', () => {
  it('reads like a Map, and a copied version keeps what it held while later versions change', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.integer()), { maxLength: 300 }), fc.array(step, { maxLength: 1500 }), (initial, steps) => {
        let current = LayeredMap.of(initial);
        let model = new Map(initial);
        const frozen: [LayeredMap<number>, Map<string, number>][] = [];
        for (const s of steps) {
          if (s.op === 'copy') {
            frozen.push([current, new Map(model)]);
            current = current.copy();
            model = new Map(model);
          } else if (s.op === 'set') {
            current.set(s.key, s.value);
            model.set(s.key, s.value);
          } else {
            current.delete(s.key);
            model.delete(s.key);
          }
        }
        expect(current.size).toBe(model.size);
        expect(contents(current)).toEqual(model);
        for (const k of ['k0', 'k1', 'k399', 'absent']) {
          expect(current.get(k)).toBe(model.get(k));
          expect(current.has(k)).toBe(model.has(k));
        }
        for (const [version, held] of frozen) {
          expect(version.size).toBe(held.size);
          expect(contents(version)).toEqual(held);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('keys, values, forEach and spreading agree with entries', () => {
    const m = LayeredMap.of([['a', 1], ['b', 2]]);
    m.set('c', 3);
    m.delete('a');
    m.set('b', 20);
    expect([...m]).toEqual([['b', 20], ['c', 3]]);
    expect([...m.keys()]).toEqual(['b', 'c']);
    expect([...m.values()]).toEqual([20, 3]);
    const seen: string[] = [];
    m.forEach((v, k) => seen.push(`${k}=${v}`));
    expect(seen).toEqual(['b=20', 'c=3']);
  });
});
