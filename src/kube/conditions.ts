/**
 * Kubernetes conditions (`metav1.Condition`) as `meta.SetStatusCondition` maintains them:
 * `lastTransitionTime` changes only when `status` changes, so a reconcile that finds nothing
 * new produces an identical list (and no status write).
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  /** RFC 3339 time of the last change of `status`. */
  lastTransitionTime: string;
  /** The `metadata.generation` this condition was computed from. */
  observedGeneration?: number;
}

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** Kubernetes serializes condition times with second precision. */
export function conditionTime(now: Date | string): string {
  const d = typeof now === 'string' ? new Date(now) : now;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns a new list with `input` set: an existing condition of the same type keeps its
 * `lastTransitionTime` unless `status` changed; a new type is appended. Other conditions and
 * their order are kept. Never changes `conditions`.
 */
export function setCondition(conditions: readonly Condition[] | undefined, input: ConditionInput, generation: number | undefined, now: Date | string): Condition[] {
  const list = conditions ?? [];
  const old = list.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: old && old.status === input.status ? old.lastTransitionTime : conditionTime(now),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return old ? list.map((c) => (c === old ? next : c)) : [...list, next];
}
