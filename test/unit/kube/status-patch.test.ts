/** A status write sends what changed, and applying it to the previous status gives exactly the next one. */
import { describe, expect, it } from 'vitest';
import { mergePatchBetween } from '../../../src/kube/status.js';

/** RFC 7386, as the API server applies a merge patch. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ resource: `queue/q${i}`, status: 'Ready' }));
const previous = {
  observedGeneration: 3,
  ready: '999/999',
  summary: { total: 999, ready: 999, failed: 0 },
  items: items(999),
  applied: { vhost: '/', exchanges: [], queues: items(999).map((i) => i.resource.slice(6)), bindings: [] },
  applying: [],
  adopted: 2,
};

describe('mergePatchBetween', () => {
  it('leaves out what did not change: a write-ahead record is only its applying list', () => {
    const next = { ...previous, applying: ['queue/q999'] };
    expect(mergePatchBetween(previous, next)).toEqual({ applying: ['queue/q999'] });
  });

  it('turns the previous status into exactly the next one, with removed keys as null', () => {
    const { adopted: _gone, ...rest } = previous;
    const next = { ...rest, observedGeneration: 4, ready: '1000/1000', summary: { ...previous.summary, total: 1000, ready: 1000 }, items: items(1000) };
    const patch = mergePatchBetween(previous, next) as Record<string, unknown>;
    expect(patch).toEqual({ observedGeneration: 4, ready: '1000/1000', summary: { total: 1000, ready: 1000 }, items: items(1000), adopted: null });
    expect(applyMergePatch(previous, patch)).toEqual(next);
  });

  it('writes everything when there was no status', () => {
    expect(applyMergePatch({}, mergePatchBetween(undefined, previous))).toEqual(previous);
  });
});
