/**
 * Writing the `/status` subresource of a custom object, only when it changed. Status goes
 * through a JSON merge patch (RFC 7386): no resourceVersion, so a status write never fails
 * for a concurrent spec change, and one key is never reconciled twice at once, so nobody else
 * writes this status.
 */
import { customObjectPath, kubeCall, MERGE_PATCH, type KubeAccess } from './api-request.js';
import type { CustomObjectRef } from './custom-object.js';
import type { KubeObject } from './store.js';

/**
 * Merge-patches `status` into the object's `/status` subresource and returns the object as
 * stored. Fields absent from `status` are left alone (merge semantics); set them to null to
 * remove them, or use `writeStatusIfChanged`, which does so. Throws the API's error.
 */
export async function patchStatus<T extends KubeObject = KubeObject>(kc: KubeAccess, ref: CustomObjectRef, status: unknown): Promise<T> {
  return kubeCall<T>(kc, 'PATCH', customObjectPath(ref, 'status'), { body: { status }, contentType: MERGE_PATCH });
}

/**
 * Whether `next` differs from `previous` in anything but condition `lastTransitionTime`s
 * (with `setCondition` a time only moves when a status does, which is a change anyway).
 * Key order and properties set to `undefined` do not count as differences.
 */
export function statusChanged(previous: unknown, next: unknown): boolean {
  return canonical(previous) !== canonical(next);
}

/**
 * Writes `next` as the status when `statusChanged(previous, next)`; fields of `previous`
 * missing from `next` are removed. Returns whether it wrote.
 */
export async function writeStatusIfChanged(kc: KubeAccess, ref: CustomObjectRef, previous: unknown, next: unknown): Promise<boolean> {
  if (!statusChanged(previous, next)) return false;
  await patchStatus(kc, ref, withDeletions(previous, next));
  return true;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `next`, plus `null` for every object key of `previous` that `next` lacks (merge-patch deletes). */
export function withDeletions(previous: unknown, next: unknown): unknown {
  if (!isPlainObject(next)) return next;
  const out: Record<string, unknown> = {};
  const prev = isPlainObject(previous) ? previous : {};
  for (const [k, v] of Object.entries(next)) if (v !== undefined) out[k] = withDeletions(prev[k], v);
  for (const k of Object.keys(prev)) if (next[k] === undefined && prev[k] !== undefined) out[k] = null;
  return out;
}

/** Stable JSON with sorted keys, `undefined` dropped, and condition times blanked. */
function canonical(value: unknown): string {
  const normalize = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) {
      const items = key === 'conditions' ? v.map((c: unknown) => (isPlainObject(c) ? { ...c, lastTransitionTime: undefined } : c)) : v;
      return items.map((i) => normalize(i));
    }
    if (!isPlainObject(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = normalize(v[k], k);
    return out;
  };
  return JSON.stringify(normalize(value ?? null)) ?? 'null';
}
