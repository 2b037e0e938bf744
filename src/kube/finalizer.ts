/**
 * Finalizers, as controllerutil offers them (in-memory helpers that say whether they changed
 * anything) plus one guarded write, as kube-rs `finalizer.rs` does it.
 *
 * Expected flow: the reconciler sees an object without its finalizer → `addFinalizerPersisted`
 * (the write triggers a new event, and the next run does the real work). On deletion
 * (`metadata.deletionTimestamp` set) it cleans up, then `removeFinalizerPersisted`; the apiserver
 * deletes the object once no finalizer is left.
 *
 * Guarantees: the write is a JSON Patch whose first operation tests that the server still
 * holds exactly the finalizer list this controller last read; a concurrent change by anyone
 * (another controller adding or removing its own finalizer) makes the patch fail, never
 * clobbered. Nothing else of the object is touched, so spec or status changes do not
 * conflict.
 *
 * Assumptions: the caller's object comes from a cache that may be stale; that is what the
 * test operation guards against.
 *
 * Caveats: `addFinalizer`/`removeFinalizer` change the object in place; objects from a
 * `Store` are frozen, so pass a copy (`addFinalizerPersisted`/`removeFinalizerPersisted` copy for you).
 *
 * Errors: a failed test is HTTP 422 (`isFinalizerConflict`): the cache was stale; retry after
 * the watch delivers the new state (the controller's rate-limited requeue does that). Other
 * API errors are thrown as they are; `removeFinalizerPersisted` treats 404 (object gone) as done.
 */
import { customObjectPath, JSON_PATCH, kubeCall, type KubeAccess } from './api-request.js';
import { apiStatusCode, isNotFound, type CustomObjectRef } from './custom-object.js';
import type { KubeObject } from './store.js';

export function hasFinalizer(obj: KubeObject, name: string): boolean {
  return obj.metadata?.finalizers?.includes(name) ?? false;
}

/** Appends `name` to the object's finalizers in memory; false if it was already there. */
export function addFinalizer(obj: KubeObject, name: string): boolean {
  if (hasFinalizer(obj, name)) return false;
  obj.metadata ??= {};
  obj.metadata.finalizers = [...(obj.metadata.finalizers ?? []), name];
  return true;
}

/** Removes every occurrence of `name` from the object's finalizers in memory; false if absent. */
export function removeFinalizer(obj: KubeObject, name: string): boolean {
  if (!hasFinalizer(obj, name)) return false;
  const meta = obj.metadata as NonNullable<KubeObject['metadata']>;
  meta.finalizers = (meta.finalizers ?? []).filter((f) => f !== name);
  return true;
}

/** The JSON Patch that moves the server's finalizers from `previous` to `next`, guarded by a test. */
export function finalizerPatch(previous: readonly string[] | undefined, next: readonly string[]): object[] {
  // The apiserver omits an empty list, and a JSON Patch test of a missing member against null
  // succeeds, so "no finalizers" is tested as null.
  const expected = previous && previous.length > 0 ? previous : null;
  return [
    { op: 'test', path: '/metadata/finalizers', value: expected },
    { op: 'add', path: '/metadata/finalizers', value: next },
  ];
}

/**
 * Writes `next` as the object's finalizers if the server still has `previous`; returns the
 * object as stored. See the module documentation for guarantees and errors.
 */
export async function persistFinalizers<T extends KubeObject = KubeObject>(
  kc: KubeAccess,
  ref: CustomObjectRef,
  previous: readonly string[] | undefined,
  next: readonly string[],
): Promise<T> {
  return kubeCall<T>(kc, 'PATCH', customObjectPath(ref), { body: finalizerPatch(previous, next), contentType: JSON_PATCH });
}

/** Adds finalizer `name` on the server unless `obj` already has it; returns whether it wrote. */
export async function addFinalizerPersisted(kc: KubeAccess, ref: CustomObjectRef, obj: KubeObject, name: string): Promise<boolean> {
  const copy = structuredClone(obj);
  if (!addFinalizer(copy, name)) return false;
  await persistFinalizers(kc, ref, obj.metadata?.finalizers, copy.metadata?.finalizers ?? []);
  return true;
}

/** Removes finalizer `name` on the server if `obj` has it; an object already gone counts as done. */
export async function removeFinalizerPersisted(kc: KubeAccess, ref: CustomObjectRef, obj: KubeObject, name: string): Promise<boolean> {
  const copy = structuredClone(obj);
  if (!removeFinalizer(copy, name)) return false;
  try {
    await persistFinalizers(kc, ref, obj.metadata?.finalizers, copy.metadata?.finalizers ?? []);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  return true;
}

/** True when a finalizer write failed because the server's list differed from the cached one. */
export function isFinalizerConflict(err: unknown): boolean {
  return apiStatusCode(err) === 422;
}
