/**
 * Validation of a stored RabbitQueueBatch's spec, once per spec version. The API server bumps
 * `metadata.generation` on every spec change (the CRD has a status subresource), so `uid` and
 * `generation` name one spec: the claims index (run on every watch event, status-only ones
 * included) and the reconcile validate a 1,000-item spec once instead of on every event.
 *
 * Guarantees: the answer is `validateSpec`'s for that spec and `maxItems`; an object without a
 * uid or generation (not from the API server) is validated every time. Callers get a shared
 * result and must not change it (the reconciler and planner copy what they change).
 */
import { LRUCache } from 'lru-cache';
import type { RabbitQueueBatch } from './schema.js';
import { validateSpec, type Validation } from './validate.js';

const cache = new LRUCache<string, Validation>({ max: 10_000 });

export function validateBatchSpec(batch: Pick<RabbitQueueBatch, 'metadata' | 'spec'>, maxItems: number): Validation {
  const { uid, generation } = batch.metadata;
  if (uid === undefined || generation === undefined) return validateSpec(batch.spec, { maxItems });
  const key = `${uid}@${generation}#${maxItems}`;
  let v = cache.get(key);
  if (!v) cache.set(key, (v = validateSpec(batch.spec, { maxItems })));
  return v;
}
