/** 10,000 generated specs: every valid one is accepted, every invalid one refused with a field path and a reason, none crashes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateSpec } from '../../src/api/validate.js';
import { invalidSpec, validSpec } from '../support/spec-arbitraries.js';

describe('validateSpec on generated input', () => {
  it('accepts 5,000 valid specs', () => {
    fc.assert(
      fc.property(validSpec, (spec) => {
        const v = validateSpec(spec);
        if (!v.ok) throw new Error(JSON.stringify(v.errors));
      }),
      { numRuns: 5000 },
    );
  }, 120_000);

  it('refuses 5,000 invalid specs, each with a field path and a reason', () => {
    fc.assert(
      fc.property(invalidSpec, ({ spec, mutation }) => {
        const v = validateSpec(spec);
        expect(v.ok, mutation.what).toBe(false);
        if (v.ok) return;
        for (const e of v.errors) {
          expect(e.path).toMatch(/^spec/);
          expect(e.message.length).toBeGreaterThan(3);
        }
      }),
      { numRuns: 5000 },
    );
  }, 120_000);

  it('never throws on arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue(), (input) => void validateSpec(input)), { numRuns: 2000 });
  }, 60_000);
});
