/**
 * What one run of a batch tells people and dashboards: Kubernetes Events, the audit log line and
 * the batch metrics. Called by the reconciler after the status is written; no decisions here.
 */
import type { RabbitQueueBatch, RabbitQueueBatchSpec } from '../api/schema.js';
import type { ExecutionResult } from '../batch/execute.js';
import type { BatchMetrics } from '../metrics/batch-metrics.js';
import { kindOf } from '../model/identity.js';
import { Reason } from '../model/reason.js';
import { keyOf } from './claims.js';

export type RecordEvent = (batch: RabbitQueueBatch, type: 'Normal' | 'Warning', reason: string, message: string) => void;

export interface RunReport {
  batch: RabbitQueueBatch;
  spec: RabbitQueueBatchSpec;
  result: ExecutionResult;
  seconds: number;
  /** Did the plan hold any operation (an audit entry is written only then)? */
  writes: boolean;
  /** Objects this batch had made that someone deleted, re-created by this run. */
  repaired: string[];
}

export function reportRun(deps: { event: RecordEvent; metrics: BatchMetrics; audit(entry: Record<string, unknown>): void }, r: RunReport): void {
  const { batch, spec, result, event } = { ...r, event: deps.event };
  for (const resource of r.repaired) deps.metrics.onDriftRepaired(kindOf(resource));
  if (r.repaired.length > 0) event(batch, 'Normal', 'DriftRepaired', `repaired ${r.repaired.length} objects deleted or changed outside rabbitbatch (re-created, or policies set back): ${r.repaired.slice(0, 5).join(', ')}`);
  deps.metrics.onBatch(result, r.seconds);
  if (result.created.length > 0) event(batch, 'Normal', 'Created', `created ${result.created.length} objects in vhost "${spec.vhost}"`);
  if (result.adopted.length > 0) event(batch, 'Normal', 'Adopted', `adopted ${result.adopted.length} existing objects identical to the spec in vhost "${spec.vhost}" (adopt: IfIdentical); pruning and deletionPolicy now apply to them`);
  if (result.deleted.length > 0) event(batch, 'Normal', 'Pruned', `deleted ${result.deleted.length} objects no longer in the spec`);
  for (const item of result.items.filter((i) => i.status === 'Conflict')) event(batch, 'Warning', Reason.Conflict, `${item.resource}: ${item.error}`);
  for (const item of result.items.filter((i) => i.status === 'Retained')) event(batch, 'Warning', 'Retained', `${item.resource}: ${item.error}`);
  if (result.outcome === 'RolledBack') event(batch, 'Warning', Reason.RolledBack, `${result.failure?.resource} failed: ${result.failure?.error}; this attempt was rolled back`);
  if (result.outcome === 'VhostNotFound') event(batch, 'Warning', Reason.VhostNotFound, result.failure?.error ?? 'vhost not found');
  if (!r.writes && result.adopted.length === 0) return;
  deps.audit({
    who: `RabbitQueueBatch ${keyOf(batch)}`,
    what: 'apply',
    vhost: spec.vhost,
    mode: spec.mode,
    items: result.items.length,
    operations: result.operations,
    created: result.created.length,
    adopted: result.adopted.length,
    deleted: result.deleted.length,
    result: result.outcome,
    durationMs: Math.round(r.seconds * 1000),
  });
}
