/**
 * Reconcile one RabbitQueueBatch: read it from the store (never from the event), read RabbitMQ
 * back, plan, execute, and write the status only when it changed. Idempotent and safe to run
 * twice: a second run observes what the first one did and plans nothing.
 *
 * Expected flow: finalizer ensured → spec validated → connection resolved → vhost observed →
 * plan (with claims of other batches) → execute → status, events, audit entry, metrics.
 * Deletion: with `deletionPolicy: Delete` everything this resource created is removed (queues
 * only when empty and unused; busy ones are left in RabbitMQ and reported by a Warning event),
 * then the finalizer is removed. With `Retain` RabbitMQ is not touched.
 */
import type { Logger } from 'pino';
import type { RabbitQueueBatch, RabbitQueueBatchSpec, RabbitQueueBatchStatus } from '../api/schema.js';
import { formatErrors, validateSpec } from '../api/validate.js';
import { executePlan, type ExecutionResult } from '../batch/execute.js';
import { planBatch, planDeletion } from '../batch/plan.js';
import { readBackRebindings, recreatedQueues } from '../batch/recreate.js';
import { bindingId, exchangeId, kindOf, namesLookedAt, queueId } from '../batch/resources.js';
import type { BatchMetrics } from '../metrics/batch-metrics.js';
import { BrokerUnavailableError, ManagementError, type ManagementApi } from '../rabbit/management-api.js';
import { TlsError } from '../rabbit/tls-errors.js';
import type { ObservedStateSource } from '../rabbit/observe.js';
import { isRefusal, refusalOf, unauthorizedMessage } from './unauthorized.js';
import { Reason, buildStatus, failedStatus, nextOwned, ownedSet, toApplied } from './batch-status.js';

export const FINALIZER = 'rabbitbatch.io/finalizer';
export const CLAIMS_INDEX = 'claims';

export interface Request {
  namespace: string;
  name: string;
}

export interface Result {
  requeueAfterMs?: number;
}

/** The store as the reconciler sees it: read-only, with the claims index. */
export interface BatchStore {
  get(key: string): RabbitQueueBatch | undefined;
  byIndex(index: string, value: string): RabbitQueueBatch[];
}

export interface ResolvedConnection {
  api: ManagementApi;
  /** Identifies the broker for claims: two batches only fight when they share one. */
  endpointKey: string;
}

/** Thrown for failures that need a human (e.g. a missing Secret): reported, not retried hot. */
export class ConnectionError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ReconcilerDeps {
  store: BatchStore;
  connect(batch: RabbitQueueBatch): Promise<ResolvedConnection>;
  observed: ObservedStateSource;
  writeStatus(batch: RabbitQueueBatch, status: RabbitQueueBatchStatus): Promise<void>;
  ensureFinalizer(batch: RabbitQueueBatch): Promise<void>;
  removeFinalizer(batch: RabbitQueueBatch): Promise<void>;
  event(batch: RabbitQueueBatch, type: 'Normal' | 'Warning', reason: string, message: string): void;
  metrics: BatchMetrics;
  audit(entry: Record<string, unknown>): void;
  settings: { maxItems: number; batchConcurrency: number; resyncIntervalMs: number; conflictRequeueMs: number };
  now?: () => Date;
}

export const keyOf = (b: { metadata: { namespace?: string; name: string } }) => `${b.metadata.namespace}/${b.metadata.name}`;

/** Index values: which broker objects a batch declares (externals are shared, not claimed). */
export function claimKeys(batch: RabbitQueueBatch, endpointKey = connectionKey(batch)): string[] {
  const v = validateSpec(batch.spec);
  if (!v.ok) return [];
  const { spec } = v;
  const ids = [
    ...spec.exchanges.filter((e) => !e.external).map((e) => exchangeId(e.name)),
    ...spec.queues.filter((q) => !q.external).map((q) => queueId(q.name)),
    ...spec.bindings.map(bindingId),
  ];
  return ids.map((id) => `${endpointKey}|${spec.vhost}|${id}`);
}

/** Batches sharing a connection Secret (or the default connection) share a broker. */
export function connectionKey(batch: RabbitQueueBatch): string {
  const secret = batch.spec.rabbitmq?.connectionSecret?.name;
  return secret ? `${batch.metadata.namespace}/${secret}` : 'default';
}

export class RabbitQueueBatchReconciler {
  private readonly now: () => Date;
  /**
   * What each batch owns, as this process last wrote it to `status.applied`. The store can lag
   * behind our own status write (the watch event has not arrived yet); this process is the only
   * writer of the status, so its last successful write is the truth. Cleared on deletion.
   */
  private readonly ownedWritten = new Map<string, { uid: string | undefined; owned: Set<string> }>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(req: Request, log: Logger): Promise<Result> {
    const batch = this.deps.store.get(`${req.namespace}/${req.name}`);
    if (!batch) return {};
    if (batch.metadata.deletionTimestamp) return this.finalize(batch, log);
    if (!batch.metadata.finalizers?.includes(FINALIZER)) await this.deps.ensureFinalizer(batch);

    const validation = validateSpec(batch.spec, { maxItems: this.deps.settings.maxItems });
    if (!validation.ok) {
      const message = `spec is invalid: ${formatErrors(validation.errors)}`;
      await this.writeStatus(batch, failedStatus(batch.status, batch.metadata.generation, Reason.InvalidSpec, message, this.timestamp()));
      this.deps.event(batch, 'Warning', Reason.InvalidSpec, message);
      return {}; // Waits for the spec to change: retrying cannot help.
    }
    const spec = validation.spec;

    let connection: ResolvedConnection;
    try {
      connection = await this.deps.connect(batch);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      await this.writeStatus(batch, failedStatus(batch.status, batch.metadata.generation, err.reason, err.message, this.timestamp()));
      this.deps.event(batch, 'Warning', err.reason, err.message);
      return { requeueAfterMs: this.deps.settings.conflictRequeueMs };
    }

    const started = performance.now();
    // Owned: what the status says this resource made, plus what a crashed reconcile was creating.
    const applying = new Set(batch.status?.applying ?? []);
    const recorded = this.ownedOf(batch);
    const owned = new Set([...recorded, ...applying]);
    let observed;
    try {
      observed = await this.deps.observed.observe(connection.api, spec.vhost, namesLookedAt(spec, owned));
    } catch (err) {
      if (err instanceof ManagementError && isRefusal(err.status)) {
        const message = unauthorizedMessage(batch, connection.api.endpoint, spec.vhost, err.status, err.reason);
        await this.writeStatus(batch, failedStatus(batch.status, batch.metadata.generation, Reason.Unauthorized, message, this.timestamp()));
        this.deps.event(batch, 'Warning', Reason.Unauthorized, message);
        return { requeueAfterMs: this.deps.settings.conflictRequeueMs };
      }
      if (err instanceof TlsError) {
        // A CA or certificate to fix, not an outage: say which, and look again later (the Secret may change).
        await this.writeStatus(batch, failedStatus(batch.status, batch.metadata.generation, Reason.TLSError, err.message, this.timestamp()));
        return { requeueAfterMs: this.deps.settings.conflictRequeueMs };
      }
      if (!(err instanceof BrokerUnavailableError)) throw err;
      // Said once in the status (it is only written when it changes); the queue retries with backoff.
      await this.writeStatus(batch, failedStatus(batch.status, batch.metadata.generation, Reason.BrokerUnavailable, `RabbitMQ at ${connection.api.endpoint} is unavailable: ${err.message}; retrying with backoff`, this.timestamp()));
      throw err;
    }
    const plan = planBatch({ spec, observed, owned, claimedBy: (r) => this.claimedBy(batch, connection.endpointKey, spec, r) });
    const writes = plan.phases.length > 0;
    if (writes) log.info({ operations: plan.phases.flat().length, vhost: spec.vhost }, 'applying plan');
    const creating = plan.phases.flat().filter((op) => op.type === 'declareExchange' || op.type === 'declareQueue' || op.type === 'bind').map((op) => op.resource);
    if (creating.length > 0) {
      // The write-ahead record carries `applied` as this process knows it (the store may lag).
      await this.deps.writeStatus(batch, { ...batch.status, applied: toApplied(spec.vhost, recorded), applying: [...new Set([...applying, ...creating])].sort() });
    }
    let result = await executePlan(plan, connection.api, {
      mode: spec.mode,
      concurrency: this.deps.settings.batchConcurrency,
      beforeOperation: (op) => this.deps.observed.expectWrite?.(connection.api, spec.vhost, op),
      onOperation: (op, ok, s, propertiesKey) => {
        this.deps.metrics.onOperation(op, ok, s);
        this.deps.observed.recordWrite(connection.api, spec.vhost, op, ok, propertiesKey);
      },
    });
    const recreated = recreatedQueues(plan, result);
    if (recreated.length > 0) {
      result = await readBackRebindings(connection.api, plan, result);
      this.deps.event(batch, 'Normal', 'Recreated', `recreated ${recreated.join(', ')} with the spec's settings (onConflict: RecreateIfEmpty; it was empty and unused) and bound its bindings again`);
    }
    // Re-created objects this batch had made before: someone deleted them (drift, repaired).
    const repaired = plan.items.filter((i) => i.decision === 'create' && owned.has(i.resource) && result.created.includes(i.resource));
    for (const r of repaired) this.deps.metrics.onDriftRepaired(kindOf(r.resource));
    if (repaired.length > 0) this.deps.event(batch, 'Normal', 'DriftRepaired', `re-created ${repaired.length} objects deleted outside rabbitbatch: ${repaired.slice(0, 5).map((r) => r.resource).join(', ')}`);
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.onBatch(result, seconds);

    let status = buildStatus({
      previous: batch.status,
      generation: batch.metadata.generation,
      vhost: spec.vhost,
      owned: adopted(nextOwned(owned, result), recorded, applying, result),
      result,
      now: this.timestamp(),
    });
    // Observed from the cache, refused at the first write: the credentials, not the batch, are wrong.
    const refusal = refusalOf(result);
    if (refusal) {
      const message = unauthorizedMessage(batch, connection.api.endpoint, spec.vhost, refusal.status, refusal.reason);
      status = { ...failedStatus(status, batch.metadata.generation, Reason.Unauthorized, message, this.timestamp()) };
      this.deps.event(batch, 'Warning', Reason.Unauthorized, message);
    }
    await this.writeStatus(batch, status);
    this.ownedWritten.set(keyOf(batch), { uid: batch.metadata.uid, owned: ownedSet(status.applied) });
    this.report(batch, spec, result, seconds, writes);
    if (refusal) return { requeueAfterMs: this.deps.settings.conflictRequeueMs }; // or at once when the Secret changes
    return this.requeue(result);
  }

  private async finalize(batch: RabbitQueueBatch, log: Logger): Promise<Result> {
    if (!batch.metadata.finalizers?.includes(FINALIZER)) return {};
    const validation = validateSpec(batch.spec, { maxItems: Number.MAX_SAFE_INTEGER });
    const owned = this.ownedOf(batch);
    if (validation.ok && validation.spec.deletionPolicy === 'Delete' && owned.size > 0) {
      const spec = { ...validation.spec, vhost: batch.status?.applied?.vhost ?? validation.spec.vhost };
      const connection = await this.deps.connect(batch);
      const observed = await this.deps.observed.observe(connection.api, spec.vhost, namesLookedAt(spec, owned));
      const plan = planDeletion(spec, observed, owned);
      const result = await executePlan(plan, connection.api, {
        mode: 'BestEffort',
        concurrency: this.deps.settings.batchConcurrency,
        beforeOperation: (op) => this.deps.observed.expectWrite?.(connection.api, spec.vhost, op),
        onOperation: (op, ok, _s, propertiesKey) => this.deps.observed.recordWrite(connection.api, spec.vhost, op, ok, propertiesKey),
      });
      if (result.brokerUnavailable) throw new Error(`cannot delete RabbitMQ objects: ${result.failure?.error}`);
      const kept = result.items.filter((i) => i.status !== 'Ready');
      for (const item of kept) this.deps.event(batch, 'Warning', 'Retained', `${item.resource} left in RabbitMQ: ${item.error}`);
      this.deps.event(batch, 'Normal', 'Deleted', `deleted ${result.deleted.length} objects from RabbitMQ (deletionPolicy: Delete)`);
      log.info({ deleted: result.deleted.length, kept: kept.length }, 'finalized with deletionPolicy Delete');
    }
    await this.deps.removeFinalizer(batch);
    this.ownedWritten.delete(keyOf(batch));
    return {};
  }

  private ownedOf(batch: RabbitQueueBatch): Set<string> {
    const written = this.ownedWritten.get(keyOf(batch));
    return written && written.uid === batch.metadata.uid ? new Set(written.owned) : ownedSet(batch.status?.applied);
  }

  /** The other batch that claims `resource` first (older, then by key), if any. */
  private claimedBy(self: RabbitQueueBatch, endpointKey: string, spec: RabbitQueueBatchSpec, resource: string): string | undefined {
    const selfKey = keyOf(self);
    const rivals = this.deps.store.byIndex(CLAIMS_INDEX, `${endpointKey}|${spec.vhost}|${resource}`).filter((b) => keyOf(b) !== selfKey);
    const first = [self, ...rivals].sort(olderFirst)[0];
    return first && keyOf(first) !== selfKey ? keyOf(first) : undefined;
  }

  private async writeStatus(batch: RabbitQueueBatch, status: RabbitQueueBatchStatus): Promise<void> {
    await this.deps.writeStatus(batch, status);
  }

  private report(batch: RabbitQueueBatch, spec: RabbitQueueBatchSpec, result: ExecutionResult, seconds: number, writes: boolean): void {
    if (result.created.length > 0) this.deps.event(batch, 'Normal', 'Created', `created ${result.created.length} objects in vhost "${spec.vhost}"`);
    if (result.adopted.length > 0) this.deps.event(batch, 'Normal', 'Adopted', `adopted ${result.adopted.length} existing objects identical to the spec in vhost "${spec.vhost}" (adopt: IfIdentical); pruning and deletionPolicy now apply to them`);
    if (result.deleted.length > 0) this.deps.event(batch, 'Normal', 'Pruned', `deleted ${result.deleted.length} objects no longer in the spec`);
    for (const item of result.items.filter((i) => i.status === 'Conflict')) this.deps.event(batch, 'Warning', Reason.Conflict, `${item.resource}: ${item.error}`);
    for (const item of result.items.filter((i) => i.status === 'Retained')) this.deps.event(batch, 'Warning', 'Retained', `${item.resource}: ${item.error}`);
    if (result.outcome === 'RolledBack') this.deps.event(batch, 'Warning', Reason.RolledBack, `${result.failure?.resource} failed: ${result.failure?.error}; this attempt was rolled back`);
    if (result.outcome === 'VhostNotFound') this.deps.event(batch, 'Warning', Reason.VhostNotFound, result.failure?.error ?? 'vhost not found');
    if (writes || result.adopted.length > 0) {
      this.deps.audit({
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
        durationMs: Math.round(seconds * 1000),
      });
    }
  }

  /**
   * Transient failures (broker unreachable, 5xx, a queue deleted meanwhile) retry with the work
   * queue's backoff. A request RabbitMQ itself refused (400: an invalid argument) fails the same
   * way every time, so it waits for a spec change or the periodic resync instead of re-creating
   * and rolling back objects in a loop.
   */
  private requeue(result: ExecutionResult): Result {
    const { resyncIntervalMs, conflictRequeueMs } = this.deps.settings;
    if (result.brokerUnavailable) throw new Error(`RabbitMQ unavailable: ${result.failure?.error}`);
    if (result.outcome === 'Succeeded') return { requeueAfterMs: resyncIntervalMs };
    if (result.outcome === 'RolledBack' || result.outcome === 'PartiallySucceeded') {
      if (result.failure?.retryable === false) return { requeueAfterMs: resyncIntervalMs };
      if (result.failure) throw new Error(`${result.failure.resource} failed: ${result.failure.error}`);
    }
    return { requeueAfterMs: conflictRequeueMs };
  }

  private timestamp(): string {
    return this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
}

/** Keeps a write-ahead entry only if it came to exist; what was owned before stays owned. */
function adopted(next: Set<string>, recorded: ReadonlySet<string>, applying: ReadonlySet<string>, result: ExecutionResult): Set<string> {
  const exists = new Set(result.items.filter((i) => i.status === 'Ready' || i.status === 'Retained' || i.status === 'Conflict').map((i) => i.resource));
  for (const r of applying) if (!recorded.has(r) && !exists.has(r) && !result.created.includes(r)) next.delete(r);
  return next;
}

function olderFirst(a: RabbitQueueBatch, b: RabbitQueueBatch): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : keyOf(a).localeCompare(keyOf(b));
}
