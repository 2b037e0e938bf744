/**
 * The executor: runs a plan through the management API with bounded concurrency, and says what
 * happened to every item. The controller and the CLI share it.
 *
 * Guarantees
 * - Order: a binding starts only after its source exchange and its destination are declared.
 * - AllOrNothing: nothing runs while any item is in conflict or an external is missing; when an
 *   operation fails, operations in flight finish, no new one starts, and everything this run
 *   created is undone in reverse order (queues only when still empty and unused: messages are
 *   never dropped to make a rollback tidy).
 * - BestEffort: every operation is tried; an item whose dependency failed is reported as such.
 * - Pruning (deletes) runs last; a queue that holds messages or has consumers is kept and
 *   reported `Retained`, never force-deleted.
 *
 * - Shutdown (`signal` aborted): no new operation starts; operations in flight finish. An
 *   AllOrNothing run is rolled back; a BestEffort run reports what it did and leaves the rest
 *   `Pending`. What was created before the abort is in `created`, and the caller's write-ahead
 *   record covers the rest, so nothing is half-applied and forgotten.
 * - A creation whose outcome is not known (`unsure`: no answer, a transient failure, or a
 *   rollback that found nothing to delete) is never reported as absent: the caller keeps it in
 *   its write-ahead record.
 *
 * Failure modes
 * - Every failure is classified once (`classify`, model/errors.ts). No answer from the broker
 *   (unreachable, TLS refused): the run stops like an AllOrNothing failure and the result says
 *   `brokerUnavailable`, so the caller retries with backoff. A request RabbitMQ refused (`refused`)
 *   is reported with that kind, so the caller does not retry it hot.
 */
import { BulkheadPolicy } from 'cockatiel';
import type { ItemStatus, Mode } from '../api/schema.js';
import type { ManagementApi } from '../model/broker.js';
import { classify, ManagementError, type FailureKind } from '../model/errors.js';
import { destinationId, exchangeId } from '../model/identity.js';
import { isCreate, isDelete, type Operation } from '../model/operation.js';
import type { Plan } from './plan.js';

export interface ItemResult {
  resource: string;
  status: ItemStatus;
  error?: string;
  /** A warning about a Ready item (policy-effects.ts). */
  message?: string;
  /** Queues: the policy and operator policy that apply to it (policy-effects.ts). */
  policy?: string;
  operatorPolicy?: string;
}

export interface Failure {
  resource: string;
  error: string;
  /** Its classification: `refused` (a 4xx such as an invalid argument) fails the same way on the
   * same spec, so retrying hot only churns objects; `transient` is worth a retry with backoff;
   * `config` (credentials refused) waits for the Secret to change. */
  kind: FailureKind;
  /** RabbitMQ's HTTP status, when it answered (for the message: 401/403 name the credentials). */
  status?: number;
}

export type Outcome = 'Succeeded' | 'PartiallySucceeded' | 'Blocked' | 'RolledBack' | 'VhostNotFound';

export interface ExecutionResult {
  outcome: Outcome;
  items: ItemResult[];
  /** Resources this run created and kept (add to `status.applied`). */
  created: string[];
  /** Resources this run removed (drop from `status.applied`). */
  deleted: string[];
  /** Existing identical resources planned `adopt` (add to `status.applied`); only when the run
   * went through: a blocked or rolled-back AllOrNothing batch takes nothing over. */
  adopted: string[];
  /** Creations whose outcome is not known (no answer, a transient failure, or a rollback that
   * found nothing to delete): RabbitMQ may have made them. The caller keeps them in its
   * write-ahead record, so the next run, which observes them, knows they are its own. */
  unsure: string[];
  /** The first failure, for conditions, events and the CLI's exit code. */
  failure?: Failure;
  brokerUnavailable: boolean;
  operations: number;
}

export interface ExecuteOptions {
  mode: Mode;
  /** Operations in flight at once. Defaults to 10. */
  concurrency?: number;
  /** Called before every operation: RabbitMQ's event for it may arrive before its HTTP answer,
   * and must be recognised as this run's own change, not as drift. */
  beforeOperation?: (op: Operation) => void;
  /** Called after every operation, for metrics, audit and the cache's write-through. */
  onOperation?: (op: Operation, ok: boolean, seconds: number, propertiesKey?: string) => void;
  /** Aborted on shutdown: no new operation starts (see the guarantees above). Defaults to never. */
  signal?: AbortSignal;
}

type OpOutcome = { ok: true; propertiesKey?: string } | { ok: false; error: string; retained?: boolean; kind: FailureKind; noAnswer: boolean; status?: number };

export async function executePlan(plan: Plan, api: ManagementApi, options: ExecuteOptions): Promise<ExecutionResult> {
  const run = new Run(plan, api, options);
  return run.execute();
}

class Run {
  private readonly results = new Map<string, ItemResult>();
  private readonly created: { op: Operation; propertiesKey?: string }[] = [];
  private readonly deleted: string[] = [];
  private readonly failed = new Set<string>();
  private readonly unsure: string[] = [];
  private failure: Failure | undefined;
  private brokerUnavailable = false;
  private operations = 0;
  private readonly bulkhead: BulkheadPolicy;

  constructor(
    private readonly plan: Plan,
    private readonly api: ManagementApi,
    private readonly options: ExecuteOptions,
  ) {
    this.bulkhead = new BulkheadPolicy(options.concurrency ?? 10, Number.MAX_SAFE_INTEGER);
  }

  async execute(): Promise<ExecutionResult> {
    const { plan } = this;
    if (!plan.vhostExists) {
      const error = `vhost "${plan.vhost}" does not exist (or the user has no permissions on it); create it in RabbitMQ (rabbitmqctl add_vhost) or fix spec.vhost`;
      for (const item of plan.items) this.results.set(item.resource, { resource: item.resource, status: 'Pending', error });
      return this.finish('VhostNotFound', { resource: `vhost/${plan.vhost}`, error, kind: 'config' });
    }
    for (const item of plan.items) {
      if (item.decision === 'unchanged' || item.decision === 'adopt') this.set(item.resource, 'Ready');
      else if (item.decision === 'conflict') this.set(item.resource, 'Conflict', item.message);
      else if (item.decision === 'missing') {
        this.set(item.resource, 'Failed', item.message);
        this.failed.add(item.resource);
      }
      else this.set(item.resource, 'Pending');
    }
    const blocker = plan.items.find((i) => i.decision === 'conflict' || i.decision === 'missing');
    if (this.options.mode === 'AllOrNothing' && blocker) {
      const why = `not applied: the batch is AllOrNothing and ${blocker.resource} is ${blocker.decision === 'conflict' ? 'in conflict' : 'missing'}`;
      for (const r of this.results.values()) if (r.status === 'Pending') r.error = why;
      return this.finish('Blocked', { resource: blocker.resource, error: blocker.message ?? why, kind: 'refused' });
    }

    // Declarations run as one pool: a binding waits only for the exchange and queue it needs,
    // not for a whole phase, so the bounded concurrency stays busy (exchanges → queues →
    // bindings still holds for every binding). Deletions keep strict phases.
    const declarations = plan.phases.flat().filter((op) => !isDelete(op));
    const policyPuts = declarations.filter((op) => op.type === 'putPolicy').map((op) => op.resource);
    const started = new Map<string, Promise<void>>();
    for (const op of declarations) {
      const deps = dependenciesOf(op, policyPuts).map((r) => started.get(r)).filter((p) => p !== undefined);
      started.set(op.resource, Promise.all(deps).then(() => this.bulkhead.execute(() => this.applyUnlessStopped(op))));
    }
    await Promise.all(started.values());
    if (this.stopped() && (this.options.mode === 'AllOrNothing' || this.brokerUnavailable)) {
      await this.rollback();
      return this.finish('RolledBack', this.failure);
    }
    for (const phase of plan.phases.filter((p) => p.every(isDelete))) {
      await Promise.all(phase.map((op) => this.bulkhead.execute(() => this.applyUnlessStopped(op))));
    }
    const anyFailed = [...this.results.values()].some((r) => r.status === 'Failed' || r.status === 'Conflict');
    return this.finish(anyFailed ? 'PartiallySucceeded' : 'Succeeded', this.failure);
  }

  /** AllOrNothing stops at the first failure; an unreachable broker and a shutdown stop every mode. */
  private stopped(): boolean {
    if (this.interrupted() && !this.failure) this.failure = { resource: 'operator', error: 'interrupted: the operator is shutting down', kind: 'transient' };
    return this.failure !== undefined && (this.options.mode === 'AllOrNothing' || this.brokerUnavailable || this.interrupted());
  }

  private interrupted(): boolean {
    return this.options.signal?.aborted === true;
  }

  private async applyUnlessStopped(op: Operation): Promise<void> {
    if (!this.stopped()) return this.apply(op);
    const pending = this.results.get(op.resource);
    if (pending?.status === 'Pending') pending.error ??= `not applied: ${this.failure?.error}`;
  }

  private async apply(op: Operation): Promise<void> {
    const blockedBy = this.failedDependency(op);
    if (blockedBy) {
      this.markFailed(op.resource, `not applied: depends on ${blockedBy}, which failed`, false);
      return;
    }
    const keptFor = op.type === 'deleteExchange' ? this.keptDeadLetterQueue(op.deadLetteredBy) : undefined;
    if (keptFor) {
      this.set(op.resource, 'Retained', `kept: queue/${keptFor} stays in RabbitMQ and names this exchange as its x-dead-letter-exchange; its dead letters would be lost`);
      return;
    }
    const started = performance.now();
    this.options.beforeOperation?.(op);
    const outcome = await this.perform(op);
    this.operations++;
    this.options.onOperation?.(op, outcome.ok, (performance.now() - started) / 1000, outcome.ok ? outcome.propertiesKey : undefined);
    if (outcome.ok) {
      if (isDelete(op)) {
        this.deleted.push(op.resource);
        this.results.delete(op.resource);
      } else {
        // A changed policy or a recreated queue existed before this run: not this run's to undo.
        if (op.type !== 'recreateQueue' && !(op.type === 'putPolicy' && !op.created)) this.created.push({ op, propertiesKey: outcome.propertiesKey });
        this.set(op.resource, 'Ready');
      }
      return;
    }
    if (outcome.noAnswer) this.brokerUnavailable = true;
    // A transient failure (no answer, a 5xx, a 404 or 409 while the broker changes) says nothing
    // sure about what RabbitMQ did: the object may exist. A refusal (4xx) made nothing.
    if (isCreate(op) && outcome.kind === 'transient') this.unsure.push(op.resource);
    if (outcome.retained) this.set(op.resource, 'Retained', outcome.error);
    else this.markFailed(op.resource, outcome.error, true, outcome.kind, outcome.status);
  }

  private async perform(op: Operation): Promise<OpOutcome> {
    const { api } = this;
    const vhost = this.plan.vhost;
    try {
      switch (op.type) {
        case 'declareExchange':
          await api.putExchange(vhost, op.exchange);
          return { ok: true };
        case 'declareQueue':
          await api.putQueue(vhost, op.queue);
          return { ok: true };
        case 'recreateQueue':
          return await this.recreate(op.queue.name, () => api.putQueue(vhost, op.queue));
        case 'bind':
          return { ok: true, propertiesKey: await api.postBinding(vhost, op.binding) };
        case 'unbind':
          await api.deleteBinding(vhost, op.binding);
          return { ok: true };
        case 'deleteQueue':
          await api.deleteQueue(vhost, op.name, { ifEmpty: true, ifUnused: true });
          return { ok: true };
        case 'deleteExchange':
          await api.deleteExchange(vhost, op.name);
          return { ok: true };
        case 'putPolicy':
          await api.putPolicy(vhost, op.kind, op.policy);
          return { ok: true };
        case 'deletePolicy':
          await api.deletePolicy(vhost, op.kind, op.name);
          return { ok: true };
      }
    } catch (err) {
      return describeFailure(op, err);
    }
  }

  /** RecreateIfEmpty: delete only with if-empty/if-unused, so a busy queue is never lost. */
  private async recreate(name: string, declare: () => Promise<void>): Promise<OpOutcome> {
    const current = await this.api.getQueue(this.plan.vhost, name);
    if (current && ((current.messages ?? 0) > 0 || (current.consumers ?? 0) > 0)) {
      return { ok: false, error: `not recreated: queue/${name} holds ${current.messages ?? 0} messages and has ${current.consumers ?? 0} consumers`, kind: 'refused', noAnswer: false };
    }
    await this.api.deleteQueue(this.plan.vhost, name, { ifEmpty: true, ifUnused: true });
    await declare();
    return { ok: true };
  }

  private async rollback(): Promise<void> {
    const { api } = this;
    const vhost = this.plan.vhost;
    for (const { op, propertiesKey } of [...this.created].reverse()) {
      try {
        const undo = undoOf(op, propertiesKey);
        if (undo) {
          this.options.beforeOperation?.(undo);
          let removed = true;
          if (undo.type === 'unbind') removed = await api.deleteBinding(vhost, undo.binding);
          else if (undo.type === 'deleteQueue') removed = await api.deleteQueue(vhost, undo.name, { ifEmpty: true, ifUnused: true });
          else if (undo.type === 'deleteExchange') removed = await api.deleteExchange(vhost, undo.name);
          else if (undo.type === 'deletePolicy') removed = await api.deletePolicy(vhost, undo.kind, undo.name);
          this.options.onOperation?.(undo, true, 0);
          // "Not found" for what this run made moments ago: a broker going down answers so for a
          // durable queue that is back when it starts again. Whether it exists is not known.
          if (!removed) this.unsure.push(op.resource);
        }
        this.set(op.resource, 'Pending', `rolled back after ${this.failure?.resource ?? 'a failure'} failed`);
      } catch (err) {
        const undo = undoOf(op, propertiesKey);
        if (undo) this.options.onOperation?.(undo, false, 0);
        // Kept (e.g. a queue that already received messages): it stays owned and is reported.
        this.set(op.resource, 'Retained', `rollback kept it: ${errorText(err)}`);
        continue;
      }
      this.created.splice(this.created.findIndex((c) => c.op === op), 1);
    }
    for (const r of this.results.values()) {
      if (r.status === 'Pending' && !r.error) r.error = `not applied: rolled back after ${this.failure?.resource ?? 'a failure'} failed`;
    }
  }

  /** A queue that dead-letters to an exchange about to be deleted and is not deleted itself (kept, or never this run's to delete). */
  private keptDeadLetterQueue(queues: string[] | undefined): string | undefined {
    return queues?.find((q) => !this.deleted.includes(`queue/${q}`));
  }

  private failedDependency(op: Operation): string | undefined {
    if (op.type !== 'bind' || op.afterRecreate) return undefined;
    return dependenciesOf(op).find((r) => this.failed.has(r));
  }

  private markFailed(resource: string, error: string, first: boolean, kind: FailureKind = 'transient', status?: number): void {
    this.failed.add(resource);
    this.set(resource, 'Failed', error);
    if (first && !this.failure) this.failure = { resource, error, kind, ...(status !== undefined ? { status } : {}) };
  }

  private set(resource: string, status: ItemStatus, error?: string): void {
    this.results.set(resource, error === undefined ? { resource, status } : { resource, status, error });
  }

  private finish(outcome: Outcome, failure: Failure | undefined): ExecutionResult {
    return {
      outcome,
      items: [...this.results.values()],
      created: this.created.map((c) => c.op.resource),
      deleted: this.deleted,
      adopted: outcome === 'Succeeded' || outcome === 'PartiallySucceeded' ? this.plan.items.filter((i) => i.decision === 'adopt').map((i) => i.resource) : [],
      unsure: this.unsure,
      ...(failure ? { failure } : {}),
      brokerUnavailable: this.brokerUnavailable,
      operations: this.operations,
    };
  }
}

/** The operation that undoes a declaration (rollback). */
function undoOf(op: Operation, propertiesKey: string | undefined): Operation | undefined {
  if (op.type === 'bind' && propertiesKey !== undefined) return { type: 'unbind', resource: op.resource, binding: { ...op.binding, propertiesKey } };
  if (op.type === 'declareQueue') return { type: 'deleteQueue', resource: op.resource, name: op.queue.name };
  if (op.type === 'declareExchange') return { type: 'deleteExchange', resource: op.resource, name: op.exchange.name };
  if (op.type === 'putPolicy' && op.created) return { type: 'deletePolicy', resource: op.resource, kind: op.kind, name: op.policy.name };
  return undefined;
}

/**
 * What must exist before `op` runs: a binding's source exchange and its destination; for queues
 * and exchanges, the policies this run writes, so an object is declared with its policy in place
 * (a queue never starts life without the TTL or length limit its policy gives it).
 */
function dependenciesOf(op: Operation, policyPuts: readonly string[] = []): string[] {
  if (op.type === 'declareQueue' || op.type === 'declareExchange' || op.type === 'recreateQueue') return [...policyPuts];
  if (op.type !== 'bind') return [];
  return [exchangeId(op.binding.source), destinationId(op.binding)];
}

function describeFailure(op: Operation, err: unknown): OpOutcome {
  const { kind, noAnswer } = classify(err);
  if (err instanceof ManagementError) {
    if (op.type === 'deleteQueue' && err.status === 400) {
      return { ok: false, retained: true, error: `kept: the queue still holds messages or has consumers (${err.reason}); drain it or delete it by hand`, kind: 'refused', noAnswer };
    }
    if (err.status === 404 && isDelete(op)) return { ok: true };
    // The broker validates a policy again (PCRE for the pattern): say which spec field it was.
    const field = op.type === 'putPolicy' ? `RabbitMQ refused spec.${op.kind === 'policy' ? 'policies' : 'operatorPolicies'}[name=${op.policy.name}]: ` : '';
    return { ok: false, error: `${field}${err.status} ${err.reason}`, kind, noAnswer, status: err.status };
  }
  return { ok: false, error: noAnswer && kind === 'transient' ? `RabbitMQ unreachable: ${errorText(err)}` : errorText(err), kind, noAnswer };
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));
