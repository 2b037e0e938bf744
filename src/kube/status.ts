/**
 * Writing the `/status` subresource of a custom object, only when it changed, and only what
 * changed. Status goes through a JSON merge patch (RFC 7386): no resourceVersion, so a status
 * write never fails for a concurrent spec change, and one key is never reconciled twice at once,
 * so nobody else writes this status.
 */
import { PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { customObjectsApi, type CustomObjectRef } from './custom-object.js';
import type { KubeObject } from './store.js';

/**
 * Merge-patches `status` into the object's `/status` subresource and returns the object as
 * stored. Fields absent from `status` are left alone (merge semantics); set them to null to
 * remove them, or use `writeStatusIfChanged`, which does so. Throws the API's error.
 */
export async function patchStatus<T extends KubeObject = KubeObject>(kc: KubeConfig, ref: CustomObjectRef, status: unknown): Promise<T> {
  const api = customObjectsApi(kc);
  const options = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const body = { status };
  const { group, version, plural, namespace, name } = ref;
  return (await (namespace
    ? api.patchNamespacedCustomObjectStatus({ group, version, plural, namespace, name, body }, options)
    : api.patchClusterCustomObjectStatus({ group, version, plural, name, body }, options))) as T;
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
export async function writeStatusIfChanged(kc: KubeConfig, ref: CustomObjectRef, previous: unknown, next: unknown): Promise<boolean> {
  if (!statusChanged(previous, next)) return false;
  await patchStatus(kc, ref, withDeletions(previous, next));
  return true;
}

/**
 * The merge patch that turns `previous` into `next` and holds nothing else: keys whose value is
 * unchanged are left out, objects are compared key by key, arrays and scalars that differ are
 * sent whole (merge patch cannot address an array element), keys `next` lacks become `null`.
 * Applied to a server that holds exactly `previous`, it leaves exactly `next`.
 */
export function mergePatchBetween(previous: unknown, next: unknown): unknown {
  if (!isPlainObject(next) || !isPlainObject(previous)) return withDeletions(previous, next);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) {
    if (v === undefined || exact(previous[k]) === exact(v)) continue;
    out[k] = isPlainObject(v) && isPlainObject(previous[k]) ? mergePatchBetween(previous[k], v) : withDeletions(previous[k], v);
  }
  for (const k of Object.keys(previous)) if (next[k] === undefined && previous[k] !== undefined) out[k] = null;
  return out;
}

/**
 * Status writes of one controller process, each a patch of what changed since the status this
 * process last wrote for that object.
 *
 * Guarantees: the base of every diff is what the server holds. While a process is the only
 * writer of a status (one key is never reconciled twice at once; a sharding hand-over calls
 * `forget`), the answer to its last write is the server's status, even when the watch has not
 * yet delivered that write to the store; before its first write (or after `forget`, or for a new
 * object of the same name: another uid) the caller's copy is the base, as `writeStatusIfChanged`
 * uses it. Unchanged statuses are not written at all.
 *
 * Failure modes: a failed write leaves the memory as it was (the server kept its status); the
 * next write diffs against the same base again.
 */
export class StatusWriter {
  readonly #written = new Map<string, { uid: string | undefined; status: unknown }>();

  constructor(private readonly kc: KubeConfig) {}

  /** Writes `next` as the status of `obj` when it differs from the server's; returns whether it wrote. */
  async write(ref: CustomObjectRef, obj: KubeObject & { status?: unknown }, next: unknown): Promise<boolean> {
    const key = `${ref.namespace}/${ref.name}`;
    const mine = this.#written.get(key);
    const base = mine && mine.uid === obj.metadata?.uid ? mine.status : obj.status;
    if (!statusChanged(base, next)) return false;
    const stored = await patchStatus<KubeObject & { status?: unknown }>(this.kc, ref, mergePatchBetween(base, next));
    this.#written.set(key, { uid: obj.metadata?.uid, status: stored.status });
    return true;
  }

  /** Forgets what it wrote for `namespace/name`: another writer may change that status next. */
  forget(key: string): void {
    this.#written.delete(key);
  }
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

/** Stable JSON with sorted keys and `undefined` dropped. */
const exact = (value: unknown): string => canonical(value, false);

/** Stable JSON with sorted keys, `undefined` dropped, and (unless told otherwise) condition times blanked. */
function canonical(value: unknown, blankTimes = true): string {
  const normalize = (v: unknown, key?: string): unknown => {
    if (Array.isArray(v)) {
      const items = key === 'conditions' && blankTimes ? v.map((c: unknown) => (isPlainObject(c) ? { ...c, lastTransitionTime: undefined } : c)) : v;
      return items.map((i) => normalize(i));
    }
    if (!isPlainObject(v)) return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if (v[k] !== undefined) out[k] = normalize(v[k], k);
    return out;
  };
  return JSON.stringify(normalize(value ?? null)) ?? 'null';
}
