import { describe, expect, it } from 'vitest';
import { addFinalizer, finalizerPatch, hasFinalizer, removeFinalizer } from '../../../src/kube/finalizer.js';
import { statusChanged, withDeletions } from '../../../src/kube/status.js';
import type { KubeObject } from '../../../src/kube/store.js';

describe('finalizer helpers', () => {
  it('add and remove change only the in-memory object and say whether they changed it', () => {
    const obj: KubeObject = { metadata: { name: 'a' } };
    expect(hasFinalizer(obj, 'x/f')).toBe(false);
    expect(addFinalizer(obj, 'x/f')).toBe(true);
    expect(addFinalizer(obj, 'x/f')).toBe(false);
    expect(addFinalizer(obj, 'other/g')).toBe(true);
    expect(obj.metadata?.finalizers).toEqual(['x/f', 'other/g']);
    expect(removeFinalizer(obj, 'x/f')).toBe(true);
    expect(removeFinalizer(obj, 'x/f')).toBe(false);
    expect(obj.metadata?.finalizers).toEqual(['other/g']);
  });

  it('guards the write with a test of the list read before (null when there was none)', () => {
    expect(finalizerPatch(undefined, ['x/f'])).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: null },
      { op: 'add', path: '/metadata/finalizers', value: ['x/f'] },
    ]);
    expect(finalizerPatch(['other/g', 'x/f'], ['other/g'])).toEqual([
      { op: 'test', path: '/metadata/finalizers', value: ['other/g', 'x/f'] },
      { op: 'add', path: '/metadata/finalizers', value: ['other/g'] },
    ]);
  });
});

describe('statusChanged', () => {
  const status = (ready: string, time: string, extra: object = {}) => ({
    observedGeneration: 2,
    conditions: [{ type: 'Ready', status: ready, reason: 'r', message: 'm', lastTransitionTime: time }],
    ...extra,
  });

  it('ignores condition times, key order and undefined properties', () => {
    expect(statusChanged(status('True', 'T1'), status('True', 'T2'))).toBe(false);
    expect(statusChanged({ a: 1, b: 2 }, { b: 2, a: 1, c: undefined })).toBe(false);
    expect(statusChanged(undefined, undefined)).toBe(false);
  });

  it('sees any other change', () => {
    expect(statusChanged(status('True', 'T1'), status('False', 'T1'))).toBe(true);
    expect(statusChanged(status('True', 'T1'), status('True', 'T1', { summary: { ready: 1 } }))).toBe(true);
    expect(statusChanged(undefined, status('True', 'T1'))).toBe(true);
    expect(statusChanged({ items: [1, 2] }, { items: [2, 1] })).toBe(true);
  });
});

describe('withDeletions', () => {
  it('turns fields missing from the new status into merge-patch deletions, at any depth', () => {
    expect(withDeletions({ a: 1, b: { c: 1, d: 2 }, e: [1] }, { b: { c: 2 }, e: [] })).toEqual({ a: null, b: { c: 2, d: null }, e: [] });
    expect(withDeletions(undefined, { a: 1 })).toEqual({ a: 1 });
  });
});
