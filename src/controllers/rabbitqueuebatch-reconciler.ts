/**
 * Reconcile one RabbitQueueBatch, under the generic controller's contract (controller.ts): read
 * it from the store (never from the event), read RabbitMQ back, plan, execute, and write the
 * status only when it changed. Idempotent: a second run observes what the first did and plans
 * nothing.
 *
 * Expected flow: spec validated → finalizer ensured (deletionPolicy Delete only) → connection
 * resolved → vhost observed → plan (with the claims of other batches) → write-ahead record →
 * execute → status, report.
 * Deletion: with `deletionPolicy: Delete` everything this resource created is removed (queues
 * only when empty and unused; busy ones stay and are reported), then the finalizer goes.
 *
 * Guarantees
 * - Every failure is classified once (`classify`); its condition reason and message come from
 *   batch-status.ts. `terminal` (an invalid spec) throws `TerminalError`: not retried until the
 *   spec changes. `config` (Secret, credentials, TLS) looks again every minute; `refused` waits
 *   for the periodic resync; `transient` retries with the work queue's backoff.
 * - The context's abort signal reaches the executor: on shutdown no new operation starts, an
 *   AllOrNothing run is rolled back, and whatever was being created is in `status.applying`
 *   (written before the run), which the next reconcile, here or on another replica, adopts.
 * - Per-key memory (what this process last wrote to `status.applied` and `status.applying`) is
 *   dropped by `forget`: when the object leaves this process's store, and on a sharding hand-over.
 */
import type { RabbitQueueBatch, RabbitQueueBatchSpec, RabbitQueueBatchStatus } from '../api/schema.js';
import { formatErrors } from '../api/validate.js';
import { validateBatchSpec } from '../api/validated-spec.js';
import { executePlan, type ExecutionResult } from '../batch/execute.js';
import { namesLookedAt } from '../batch/names-looked-at.js';
import { planBatch, planDeletion, type Plan } from '../batch/plan.js';
import { readBackRebindings, recreatedQueues } from '../batch/recreate.js';
import { policyRun, vhostFor } from './batch-policies.js';
import type { BatchMetrics } from '../metrics/batch-metrics.js';
import type { ManagementApi, ObservedStateSource } from '../model/broker.js';
import { BrokerUnavailableError, classify, InvalidSpecError } from '../model/errors.js';
import { Reason } from '../model/reason.js';
import { isCreate } from '../model/operation.js';
import { reportRun, type RecordEvent } from './batch-report.js';
import { applyingAfterRun, buildStatus, failedStatus, failureStatus, ownedAfterRun, ownedSet, toApplied, type FailureContext } from './batch-status.js';
import { Claims, keyOf, type EndpointOf } from './claims.js';
import { withDriftRepair, type DriftRepairInput } from './drift-repair-condition.js';
import type { ResolvedConnection } from './connections.js';
import { TerminalError, type ReconcileContext, type ReconcileRequest, type ReconcileResult } from './controller.js';
import { credentialsOf, refusalOf, unauthorizedMessage } from './unauthorized.js';

export const FINALIZER = 'rabbitbatch.io/finalizer';

export interface ReconcilerDeps {
  connect(batch: RabbitQueueBatch): Promise<ResolvedConnection>;
  /** The broker of any batch, once known: claims compare brokers. */
  endpointOf: EndpointOf;
  /** The `DriftRepair` condition for a batch: set while its broker sends no change events. */
  driftRepair?(batch: RabbitQueueBatch): DriftRepairInput | undefined;
  observed: ObservedStateSource;
  writeStatus(batch: RabbitQueueBatch, status: RabbitQueueBatchStatus): Promise<void>;
  /** Called when the reconciler drops what it remembers of a key, for memories kept beside it (the status writer's). */
  forgotten?(key: string): void;
  ensureFinalizer(batch: RabbitQueueBatch): Promise<void>;
  removeFinalizer(batch: RabbitQueueBatch): Promise<void>;
  event: RecordEvent;
  metrics: BatchMetrics;
  audit(entry: Record<string, unknown>): void;
  settings: { maxItems: number; batchConcurrency: number; resyncIntervalMs: number; conflictRequeueMs: number };
  now?: () => Date;
}

type Context = ReconcileContext<RabbitQueueBatch>;

/** A batch's ownership record: `status.applied` as ids, and the write-ahead `status.applying`. */
interface Ownership {
  owned: Set<string>;
  applying: readonly string[];
}

export class RabbitQueueBatchReconciler {
  private readonly now: () => Date;
  /**
   * What each batch owns and was creating, as this process last wrote it to `status.applied` and
   * `status.applying`. The store can lag behind our own status write (its watch event has not
   * arrived yet); while this process holds the key it is the only writer of that status, so its
   * last write is the truth.
   */
  private readonly lastWritten = new Map<string, { uid: string | undefined } & Ownership>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** The controller's reconcile function. */
  readonly reconcile = async (req: ReconcileRequest, ctx: Context): Promise<ReconcileResult> => {
    const key = `${req.namespace}/${req.name}`;
    const batch = ctx.store.get(key);
    if (!batch) {
      this.forget(key); // deleted, or moved to another replica's shard
      return {};
    }
    const where: FailureContext = { credentials: credentialsOf(batch) };
    let result: ExecutionResult | undefined;
    try {
      result = batch.metadata.deletionTimestamp ? await this.finalize(batch, ctx) : await this.apply(batch, ctx, where);
    } catch (err) {
      return this.failed(batch, err, where);
    }
    return result ? this.nextRun(result) : {};
  };

  /** Drops what this process remembers of `key`: another writer may change its status next. */
  forget(key: string): void {
    this.lastWritten.delete(key);
    this.deps.forgotten?.(key);
  }

  /** One run; what it returns decides the next one (`nextRun`). */
  private async apply(batch: RabbitQueueBatch, ctx: Context, where: FailureContext): Promise<ExecutionResult> {
    const validation = validateBatchSpec(batch, this.deps.settings.maxItems);
    if (!validation.ok) throw new InvalidSpecError(formatErrors(validation.errors));
    const spec = validation.spec;
    // Only deletionPolicy Delete has work to do when the batch is deleted; deleting a Retain batch
    // leaves RabbitMQ as it is and needs nothing from the operator, so it carries no finalizer
    // (one write of the whole object less per new batch). The finalizer is written while
    // observation and planning go on: it only has to be in place before the first object is
    // created (awaited below, before execution).
    const finalizer = spec.deletionPolicy === 'Delete' && !batch.metadata.finalizers?.includes(FINALIZER) ? this.deps.ensureFinalizer(batch) : undefined;
    finalizer?.catch(() => undefined); // awaited below; a run that fails earlier must not leave it unhandled
    const { api, broker = api.endpoint } = await this.deps.connect(batch);
    Object.assign(where, { endpoint: api.endpoint, vhost: spec.vhost });

    const started = performance.now();
    // Owned: what the status says this resource made, plus what a crashed reconcile was creating.
    const record = this.recordOf(batch);
    const applying = new Set(record.applying);
    const recorded = record.owned;
    const owned = new Set([...recorded, ...applying]);
    const wanted = namesLookedAt(spec, owned);
    const observed = await vhostFor(this.deps, batch, spec, api, await this.deps.observed.observe(api, spec.vhost, wanted), wanted);
    const claims = new Claims(ctx.store, this.deps.endpointOf);
    const plan = planBatch({ spec, observed, owned, claimedBy: (r) => claims.ownerOtherThan(batch, broker, spec.vhost, r) });
    const writes = plan.phases.length > 0;
    if (writes) ctx.log.info({ operations: plan.phases.flat().length, vhost: spec.vhost }, 'applying plan');
    const creating = plan.phases.flat().filter(isCreate).map((op) => op.resource);
    // Both the finalizer and the write-ahead record are on the server before anything is created.
    // Only what is not recorded yet needs the write-ahead record: re-creating an object this
    // resource already owns (drift repair) skips a status write of the whole batch on the way.
    const writeAhead = creating.some((r) => !recorded.has(r) && !applying.has(r))
      ? // The write-ahead record carries `applied` as this process knows it (the store may lag).
        this.deps.writeStatus(batch, { ...batch.status, applied: toApplied(spec.vhost, recorded), applying: [...new Set([...applying, ...creating])].sort() })
      : undefined;
    await Promise.all([finalizer, writeAhead]);
    let result = await this.execute(plan, api, spec, ctx.signal);
    const recreated = recreatedQueues(plan, result);
    if (recreated.length > 0) {
      result = await readBackRebindings(api, plan, result);
      this.deps.event(batch, 'Normal', 'Recreated', `recreated ${recreated.join(', ')} with the spec's settings (onConflict: RecreateIfEmpty; it was empty and unused) and bound its bindings again`);
    }
    // Re-created objects this batch had made before: someone deleted them (drift, repaired).
    const repaired = plan.items.filter((i) => i.decision === 'create' && owned.has(i.resource) && result.created.includes(i.resource)).map((i) => i.resource);
    const policies = await policyRun(this.deps, { batch, spec, api, plan, observed, wanted, result });
    result = policies.result;
    repaired.push(...policies.repaired);
    const seconds = (performance.now() - started) / 1000;

    const owns = ownedAfterRun(recorded, applying, result);
    let status = buildStatus({ previous: batch.status, generation: batch.metadata.generation, vhost: spec.vhost, owned: owns, applying: applyingAfterRun(owns, result), result, now: this.timestamp() });
    const conditions = withDriftRepair(status.conditions, this.deps.driftRepair?.(batch), batch.metadata.generation, this.timestamp());
    if (conditions !== status.conditions) status = { ...status, ...(conditions ? { conditions } : {}) };
    // Observed from the cache, refused at the first write: the credentials, not the batch, are wrong.
    const refusal = refusalOf(result);
    if (refusal) {
      const message = unauthorizedMessage(batch, api.endpoint, spec.vhost, refusal.status, refusal.reason);
      status = failedStatus(status, batch.metadata.generation, Reason.Unauthorized, message, this.timestamp());
      this.deps.event(batch, 'Warning', Reason.Unauthorized, message);
    }
    await this.deps.writeStatus(batch, status);
    this.lastWritten.set(keyOf(batch), { uid: batch.metadata.uid, owned: ownedSet(status.applied), applying: status.applying ?? [] });
    reportRun(this.deps, { batch, spec, result, seconds, writes, repaired });
    return result;
  }

  private async finalize(batch: RabbitQueueBatch, ctx: Context): Promise<undefined> {
    if (!batch.metadata.finalizers?.includes(FINALIZER)) return;
    const validation = validateBatchSpec(batch, Number.MAX_SAFE_INTEGER);
    // What a run was creating when it crashed, or whose answer it lost, may exist: deleted too.
    const record = this.recordOf(batch);
    const owned = new Set([...record.owned, ...record.applying]);
    if (validation.ok && validation.spec.deletionPolicy === 'Delete' && owned.size > 0) {
      const spec = { ...validation.spec, vhost: batch.status?.applied?.vhost ?? validation.spec.vhost };
      const { api } = await this.deps.connect(batch);
      const observed = await this.deps.observed.observe(api, spec.vhost, namesLookedAt(spec, owned));
      const result = await this.execute(planDeletion(spec, observed, owned), api, { ...spec, mode: 'BestEffort' }, ctx.signal);
      if (result.brokerUnavailable || ctx.signal.aborted) throw new BrokerUnavailableError(`cannot delete RabbitMQ objects: ${result.failure?.error}`);
      const kept = result.items.filter((i) => i.status !== 'Ready');
      for (const item of kept) this.deps.event(batch, 'Warning', 'Retained', `${item.resource} left in RabbitMQ: ${item.error}`);
      this.deps.event(batch, 'Normal', 'Deleted', `deleted ${result.deleted.length} objects from RabbitMQ (deletionPolicy: Delete)`);
      ctx.log.info({ deleted: result.deleted.length, kept: kept.length }, 'finalized with deletionPolicy Delete');
    }
    await this.deps.removeFinalizer(batch);
    this.forget(keyOf(batch));
  }

  private execute(plan: Plan, api: ManagementApi, spec: Pick<RabbitQueueBatchSpec, 'mode' | 'vhost'>, signal: AbortSignal): Promise<ExecutionResult> {
    return executePlan(plan, api, {
      mode: spec.mode,
      concurrency: this.deps.settings.batchConcurrency,
      signal,
      beforeOperation: (op) => this.deps.observed.expectWrite?.(api, spec.vhost, op),
      onOperation: (op, ok, s, propertiesKey) => {
        this.deps.metrics.onOperation(op, ok, s);
        this.deps.observed.recordWrite(api, spec.vhost, op, ok, propertiesKey);
      },
    });
  }

  /**
   * A failure that ended a reconcile before its run finished: classified, said in the status
   * (when it has a reason of its own), and turned into the controller's answer.
   */
  private async failed(batch: RabbitQueueBatch, err: unknown, where: FailureContext): Promise<ReconcileResult> {
    const failure = classify(err);
    const status = failureStatus(batch.status, batch.metadata.generation, failure, where, this.timestamp());
    if (status) await this.deps.writeStatus(batch, status);
    switch (failure.kind) {
      case 'terminal':
        this.deps.event(batch, 'Warning', failure.reason ?? 'Terminal', status?.conditions?.[0]?.message ?? failure.message);
        throw new TerminalError(failure.message, { cause: err });
      case 'config':
        // Something to fix outside the spec (a Secret, the credentials): said as an Event too; a change of the Secret requeues at once.
        if (failure.reason !== Reason.TLSError) this.deps.event(batch, 'Warning', failure.reason ?? 'Config', status?.conditions?.[0]?.message ?? failure.message);
        return { requeueAfterMs: this.deps.settings.conflictRequeueMs };
      case 'refused':
        return { requeueAfterMs: this.deps.settings.resyncIntervalMs };
      case 'transient':
        throw err;
    }
  }

  /**
   * Transient failures (broker unreachable, 5xx, a queue deleted meanwhile, a shutdown) retry
   * with the work queue's backoff. A request RabbitMQ refused (400: an invalid argument) fails
   * the same way every time, so it waits for a spec change or the periodic resync instead of
   * re-creating and rolling back objects in a loop. Conflicts look again every minute.
   */
  private nextRun(result: ExecutionResult): ReconcileResult {
    const { resyncIntervalMs, conflictRequeueMs } = this.deps.settings;
    const f = result.failure;
    if (result.brokerUnavailable) throw new BrokerUnavailableError(`RabbitMQ unavailable: ${f?.error}`);
    if (result.outcome === 'Succeeded') return { requeueAfterMs: resyncIntervalMs };
    // Credentials refused at a write: looked at again after a minute, or at once when the Secret changes.
    if (f?.kind === 'config') return { requeueAfterMs: conflictRequeueMs };
    if ((result.outcome === 'RolledBack' || result.outcome === 'PartiallySucceeded') && f) {
      if (f.kind === 'refused') return { requeueAfterMs: resyncIntervalMs };
      throw new Error(`${f.resource} failed: ${f.error}`);
    }
    return { requeueAfterMs: conflictRequeueMs };
  }

  /** What `batch` owns and was creating: this process's own last write while it holds the key, else its status. */
  private recordOf(batch: RabbitQueueBatch): Ownership {
    const written = this.lastWritten.get(keyOf(batch));
    if (written && written.uid === batch.metadata.uid) return { owned: new Set(written.owned), applying: written.applying };
    return { owned: ownedSet(batch.status?.applied), applying: batch.status?.applying ?? [] };
  }

  private timestamp(): string {
    return this.now().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
}

