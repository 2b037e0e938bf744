import { describe, expect, it } from 'vitest';
import { validateBatchSpec } from '../../src/api/validated-spec.js';

const batch = (generation: number | undefined, spec: unknown, uid: string | undefined = 'uid-1') => ({ metadata: { name: 'b', namespace: 'ns', uid, generation }, spec }) as never;

describe('validateBatchSpec', () => {
  it('validates one spec version once: the same uid and generation give the same answer', () => {
    const first = validateBatchSpec(batch(1, { queues: [{ name: 'q' }] }), 1000);
    expect(first).toMatchObject({ ok: true, spec: { queues: [{ name: 'q' }] } });
    expect(validateBatchSpec(batch(1, { queues: [{ name: 'q' }] }), 1000)).toBe(first);
  });

  it('validates again for a new generation, another uid, another limit, or an object without uid/generation', () => {
    expect(validateBatchSpec(batch(1, { queues: [{ name: 'a' }] }, 'uid-2'), 1000).ok).toBe(true);
    expect(validateBatchSpec(batch(2, { queues: [{ name: 'a' }, { name: 'a' }] }, 'uid-2'), 1000).ok).toBe(false);
    expect(validateBatchSpec(batch(1, { queues: [{ name: 'a' }] }, 'uid-3'), 1000).ok).toBe(true);
    expect(validateBatchSpec(batch(1, { queues: [{ name: 'a' }, { name: 'b' }] }, 'uid-3'), 1).ok).toBe(false);
    expect(validateBatchSpec(batch(undefined, { queues: [{ name: 'a' }] }), 1000).ok).toBe(true);
    expect(validateBatchSpec(batch(undefined, { queues: [{ name: 'bad name' }] }), 1000).ok).toBe(false);
  });
});
