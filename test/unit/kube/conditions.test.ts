import { describe, expect, it } from 'vitest';
import { conditionTime, setCondition } from '../../../src/kube/conditions.js';

const T1 = '2025-01-01T00:00:00Z';
const T2 = '2025-01-01T01:00:00Z';

describe('setCondition', () => {
  it('adds a new condition with the current time and generation', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Applying', message: 'working' }, 3, T1);
    expect(list).toEqual([{ type: 'Ready', status: 'False', reason: 'Applying', message: 'working', lastTransitionTime: T1, observedGeneration: 3 }]);
  });

  it('keeps lastTransitionTime when the status stays, even if reason and message change', () => {
    const before = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'Applying', message: 'a' }, 1, T1);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'Failed', message: 'b' }, 2, T2);
    expect(after[0]).toMatchObject({ reason: 'Failed', message: 'b', lastTransitionTime: T1, observedGeneration: 2 });
    expect(before[0]?.reason).toBe('Applying');
  });

  it('moves lastTransitionTime when the status changes, and keeps the order of others', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'r', message: 'm' }, 1, T1);
    list = setCondition(list, { type: 'Degraded', status: 'True', reason: 'r', message: 'm' }, 1, T1);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'ok', message: 'm' }, 1, new Date(T2));
    expect(list.map((c) => c.type)).toEqual(['Ready', 'Degraded']);
    expect(list.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: T2 });
  });

  it('formats times with second precision, as the apiserver does', () => {
    expect(conditionTime(new Date('2025-01-01T00:00:00.123Z'))).toBe('2025-01-01T00:00:00Z');
  });
});
