/**
 * Batch metrics: operations by kind and result, batch duration, rollbacks, and items by
 * status across every RabbitQueueBatch (computed from the store at scrape time).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ExecutionResult } from '../batch/execute.js';
import type { Operation } from '../model/operation.js';

const ITEM_STATUSES = ['Ready', 'Pending', 'Failed', 'Conflict', 'Retained'] as const;

export interface BatchMetrics {
  onOperation(op: Operation, ok: boolean, seconds: number): void;
  onBatch(result: ExecutionResult, seconds: number): void;
  onDriftRepaired(kind: string): void;
}

export function createBatchMetrics(registry: Registry, itemCounts?: () => Partial<Record<string, number>>): BatchMetrics {
  const operations = new Counter({
    name: 'rabbitbatch_batch_operations_total',
    help: 'Operations run against RabbitMQ by batches, by kind (declareQueue, bind, deleteQueue, ...) and result (success|error).',
    labelNames: ['kind', 'result'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'rabbitbatch_batch_duration_seconds',
    help: 'Time to execute one batch plan, by outcome.',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const rollbacks = new Counter({ name: 'rabbitbatch_batch_rollbacks_total', help: 'AllOrNothing batches rolled back after a failure.', registers: [registry] });
  new Gauge({
    name: 'rabbitbatch_items',
    help: 'Items of all RabbitQueueBatch resources by status.',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = itemCounts?.() ?? {};
      for (const s of ITEM_STATUSES) this.set({ status: s }, counts[s] ?? 0);
    },
  });
  const drift = new Counter({
    name: 'rabbitbatch_drift_repairs_total',
    help: 'Objects a batch had created that were deleted outside rabbitbatch and re-created, by kind.',
    labelNames: ['kind'],
    registers: [registry],
  });
  for (const kind of ['exchange', 'queue', 'binding', 'policy', 'operator-policy']) drift.inc({ kind }, 0);
  for (const result of ['success', 'error']) operations.inc({ kind: 'declareQueue', result }, 0);
  return {
    onOperation(op, ok) {
      operations.inc({ kind: op.type, result: ok ? 'success' : 'error' });
    },
    onBatch(result, seconds) {
      duration.observe({ outcome: result.outcome }, seconds);
      if (result.outcome === 'RolledBack') rollbacks.inc();
    },
    onDriftRepaired(kind) {
      drift.inc({ kind });
    },
  };
}
