/** `status.connection` (pool, reuse and cache figures) refreshed at most every 30 s per batch: never a status-write storm. */
import type { RabbitQueueBatch, RabbitQueueBatchStatus } from '../api/schema.js';
import { keyOf } from './claims.js';

const EVERY_MS = 30_000;

export class ConnectionSummaries {
  private readonly writtenAt = new Map<string, number>();

  constructor(private readonly now: () => Date) {}

  /** Sets `status.connection` from `summary()` when the batch has none or the last one is 30 s old. */
  refresh(batch: RabbitQueueBatch, status: RabbitQueueBatchStatus, summary: () => RabbitQueueBatchStatus['connection']): void {
    const key = keyOf(batch);
    const at = this.now().getTime();
    if (batch.status?.connection && at - (this.writtenAt.get(key) ?? 0) < EVERY_MS) return;
    const next = summary();
    if (!next) return;
    status.connection = next;
    this.writtenAt.set(key, at);
  }

  forget(key: string): void {
    this.writtenAt.delete(key);
  }
}
