/**
 * Turns the outcome of one reconcile into the RabbitQueueBatch status: conditions a person can
 * act on, a summary, one entry per item, and `applied` (what this resource owns in RabbitMQ).
 * The one place condition reasons and messages are derived: from an execution result
 * (`buildStatus`) or from a classified failure (`failureStatus`).
 * Pure: the reconciler writes the result only when it differs from the current status.
 */
import type { Condition, RabbitQueueBatchStatus } from '../api/schema.js';
import type { ExecutionResult } from '../batch/execute.js';
import { setCondition, type ConditionInput as KubeConditionInput } from '../kube/conditions.js';
import type { Classification } from '../model/errors.js';
import { exchangeId, kindOf, nameOf, operatorPolicyId, policyId, queueId } from '../model/identity.js';
import { Reason, type ReasonName } from '../model/reason.js';

export interface ConditionInput extends KubeConditionInput {
  type: 'Ready' | 'Progressing' | 'Degraded';
}

/** Keeps lastTransitionTime when the status value did not change (Kubernetes convention). */
function setConditions(previous: readonly Condition[] | undefined, next: ConditionInput[], generation: number | undefined, now: string): Condition[] {
  return next.reduce<Condition[]>((list, c) => setCondition(list, c, generation, now), [...(previous ?? [])]);
}

export interface Applied {
  vhost: string;
  exchanges: string[];
  queues: string[];
  bindings: string[];
  /** Only when the batch owns any: an older reader's status keeps its shape. */
  policies?: string[];
  operatorPolicies?: string[];
}

export function ownedSet(applied: Applied | undefined): Set<string> {
  if (!applied) return new Set();
  return new Set([...applied.exchanges.map(exchangeId), ...applied.queues.map(queueId), ...applied.bindings, ...(applied.policies ?? []).map(policyId), ...(applied.operatorPolicies ?? []).map(operatorPolicyId)]);
}

export function toApplied(vhost: string, owned: Iterable<string>): Applied {
  const applied: Applied = { vhost, exchanges: [], queues: [], bindings: [] };
  for (const r of [...owned].sort()) {
    const kind = kindOf(r);
    if (kind === 'exchange') applied.exchanges.push(nameOf(r));
    else if (kind === 'queue') applied.queues.push(nameOf(r));
    else if (kind === 'policy') (applied.policies ??= []).push(nameOf(r));
    else if (kind === 'operator-policy') (applied.operatorPolicies ??= []).push(nameOf(r));
    else applied.bindings.push(r);
  }
  return applied;
}

/**
 * Owned after a run: what was recorded, plus the write-ahead entries (`applying`) that came to
 * exist, plus what it created or adopted, minus what it deleted.
 */
export function ownedAfterRun(recorded: ReadonlySet<string>, applying: ReadonlySet<string>, result: ExecutionResult): Set<string> {
  const next = new Set([...recorded, ...applying, ...result.created, ...result.adopted]);
  for (const r of result.deleted) next.delete(r);
  const exists = new Set(result.items.filter((i) => i.status === 'Ready' || i.status === 'Retained' || i.status === 'Conflict').map((i) => i.resource));
  for (const r of applying) if (!recorded.has(r) && !exists.has(r) && !result.created.includes(r)) next.delete(r);
  return next;
}

/**
 * The write-ahead record after a run: the creations whose outcome is not known (`unsure`). RabbitMQ
 * may have made them; dropping them would leave an object of this resource's that no later run owns (with
 * `adopt: Never` an identical object it did not record is only looked at).
 */
export function applyingAfterRun(owned: ReadonlySet<string>, result: ExecutionResult): string[] {
  return [...new Set(result.unsure)].filter((r) => !owned.has(r)).sort();
}

export function readyConditions(result: ExecutionResult): ConditionInput[] {
  const f = result.failure;
  const conflicts = result.items.filter((i) => i.status === 'Conflict');
  const failed = result.items.filter((i) => i.status === 'Failed');
  const ready = result.items.filter((i) => i.status === 'Ready').length;
  const degraded = (reason: string, message: string): ConditionInput[] => [
    { type: 'Ready', status: 'False', reason, message },
    { type: 'Progressing', status: 'False', reason: Reason.ReconcileComplete, message: 'waiting for a change or a retry' },
    { type: 'Degraded', status: 'True', reason, message },
  ];
  if (result.brokerUnavailable) return degraded(Reason.BrokerUnavailable, `RabbitMQ did not answer: ${f?.error ?? 'unreachable'}; retrying with backoff`);
  switch (result.outcome) {
    case 'VhostNotFound':
      return degraded(Reason.VhostNotFound, f?.error ?? 'vhost not found');
    case 'RolledBack':
      return degraded(Reason.RolledBack, `${f?.resource} failed (${f?.error}); everything this attempt created was undone; retrying with backoff`);
    case 'Blocked': {
      const reason = conflicts.length > 0 ? Reason.Conflict : Reason.ExternalMissing;
      return degraded(reason, `nothing applied (AllOrNothing): ${f?.error}`);
    }
    case 'PartiallySucceeded': {
      const reason = conflicts.length > 0 && failed.length === 0 ? Reason.Conflict : Reason.PartiallyApplied;
      const first = failed[0] ?? conflicts[0];
      return degraded(reason, `${ready}/${result.items.length} items ready, ${failed.length} failed, ${conflicts.length} in conflict; first: ${first?.resource}: ${first?.error}`);
    }
    case 'Succeeded':
      return [
        { type: 'Ready', status: 'True', reason: Reason.Reconciled, message: `${ready} items match RabbitMQ` },
        { type: 'Progressing', status: 'False', reason: Reason.ReconcileComplete, message: 'RabbitMQ matches the spec' },
        { type: 'Degraded', status: 'False', reason: Reason.AsExpected, message: 'no failures' },
      ];
  }
}

export interface StatusInput {
  previous: RabbitQueueBatchStatus | undefined;
  generation: number | undefined;
  vhost: string;
  owned: ReadonlySet<string>;
  /** Still being created, as far as anyone knows (`applyingAfterRun`); none by default. */
  applying?: readonly string[];
  result: ExecutionResult;
  now: string;
}

export function buildStatus({ previous, generation, vhost, owned, applying = [], result, now }: StatusInput): RabbitQueueBatchStatus {
  const items = [...result.items].sort((a, b) => a.resource.localeCompare(b.resource));
  const count = (s: string) => items.filter((i) => i.status === s).length;
  return {
    ...withoutRetired(previous),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    ready: `${count('Ready')}/${items.length}`,
    conditions: setConditions(previous?.conditions, readyConditions(result), generation, now),
    summary: {
      total: items.length,
      ready: count('Ready'),
      failed: count('Failed'),
      conflicts: count('Conflict'),
      retained: count('Retained'),
      pending: count('Pending'),
    },
    items,
    applied: toApplied(vhost, owned),
    applying: [...applying],
    ...(result.adopted.length > 0 || previous?.adopted !== undefined ? { adopted: (previous?.adopted ?? 0) + result.adopted.length } : {}),
  };
}

/** Where a failure happened, for its message. */
export interface FailureContext {
  endpoint?: string;
  vhost?: string;
  /** Where the batch's credentials come from, in words (unauthorized.ts), so the reader knows which Secret to fix. */
  credentials?: string;
}

/** The status for a failure that ended a reconcile before (or instead of) a run; undefined when it has no reason of its own. */
export function failureStatus(previous: RabbitQueueBatchStatus | undefined, generation: number | undefined, failure: Classification, context: FailureContext, now: string): RabbitQueueBatchStatus | undefined {
  if (!failure.reason) return undefined;
  return failedStatus(previous, generation, failure.reason, failureMessage(failure.reason, failure.message, context), now);
}

function failureMessage(reason: ReasonName, message: string, { endpoint = 'RabbitMQ', vhost = '/', credentials = 'the credentials' }: FailureContext): string {
  switch (reason) {
    case Reason.InvalidSpec:
      return `spec is invalid: ${message}`;
    case Reason.Unauthorized:
      return `RabbitMQ at ${endpoint} refused ${credentials} (${message}); the user needs the "management" tag and permissions on vhost "${vhost}"; a change of the Secret is picked up at once`;
    case Reason.BrokerUnavailable:
      return `RabbitMQ at ${endpoint} is unavailable: ${message}; retrying with backoff`;
    default:
      return message;
  }
}

/**
 * The previous status without fields no longer written: `connection` (pool and cache figures,
 * now only on /metrics) that an older version left in the status goes at the next write.
 */
function withoutRetired(previous: RabbitQueueBatchStatus | undefined): RabbitQueueBatchStatus {
  if (!previous) return {};
  const { connection: _retired, ...rest } = previous as RabbitQueueBatchStatus & { connection?: unknown };
  return rest;
}

/** A status for a spec that fails validation or a connection that cannot be resolved. */
export function failedStatus(previous: RabbitQueueBatchStatus | undefined, generation: number | undefined, reason: string, message: string, now: string): RabbitQueueBatchStatus {
  return {
    ...withoutRetired(previous),
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    conditions: setConditions(
      previous?.conditions,
      [
        { type: 'Ready', status: 'False', reason, message },
        { type: 'Progressing', status: 'False', reason: Reason.ReconcileComplete, message: 'waiting for the spec or the Secret to change' },
        { type: 'Degraded', status: 'True', reason, message },
      ],
      generation,
      now,
    ),
  };
}
