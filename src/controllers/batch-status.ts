/**
 * Turns the outcome of one reconcile into the RabbitQueueBatch status: conditions a person can
 * act on, a summary, one entry per item, and `applied` (what this resource owns in RabbitMQ).
 * Pure: the reconciler writes the result only when it differs from the current status.
 */
import type { Condition, RabbitQueueBatchStatus } from '../api/schema.js';
import type { ExecutionResult } from '../batch/execute.js';

/** Condition reasons, documented in the README's status table. */
export const Reason = {
  Reconciled: 'Reconciled',
  Conflict: 'Conflict',
  ExternalMissing: 'ExternalMissing',
  RolledBack: 'RolledBack',
  PartiallyApplied: 'PartiallyApplied',
  VhostNotFound: 'VhostNotFound',
  BrokerUnavailable: 'BrokerUnavailable',
  InvalidSpec: 'InvalidSpec',
  SecretNotFound: 'SecretNotFound',
  InvalidConnection: 'InvalidConnection',
  Unauthorized: 'Unauthorized',
  TLSError: 'TLSError',
  Applying: 'Applying',
  ReconcileComplete: 'ReconcileComplete',
  AsExpected: 'AsExpected',
} as const;

export interface ConditionInput {
  type: 'Ready' | 'Progressing' | 'Degraded';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** Keeps lastTransitionTime when the status value did not change (Kubernetes convention). */
export function setConditions(previous: readonly Condition[] | undefined, next: ConditionInput[], generation: number | undefined, now: string): Condition[] {
  const byType = new Map((previous ?? []).map((c) => [c.type, c]));
  for (const c of next) {
    const old = byType.get(c.type);
    const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : now;
    byType.set(c.type, { ...c, lastTransitionTime, ...(generation !== undefined ? { observedGeneration: generation } : {}) });
  }
  return [...byType.values()];
}

export interface Applied {
  vhost: string;
  exchanges: string[];
  queues: string[];
  bindings: string[];
}

export function ownedSet(applied: Applied | undefined): Set<string> {
  if (!applied) return new Set();
  return new Set([...applied.exchanges.map((n) => `exchange/${n}`), ...applied.queues.map((n) => `queue/${n}`), ...applied.bindings]);
}

export function toApplied(vhost: string, owned: Iterable<string>): Applied {
  const applied: Applied = { vhost, exchanges: [], queues: [], bindings: [] };
  for (const r of [...owned].sort()) {
    if (r.startsWith('exchange/')) applied.exchanges.push(r.slice(9));
    else if (r.startsWith('queue/')) applied.queues.push(r.slice(6));
    else applied.bindings.push(r);
  }
  return applied;
}

/** Owned after a run: what was owned, plus what it created or adopted, minus what it deleted. */
export function nextOwned(owned: ReadonlySet<string>, result: ExecutionResult): Set<string> {
  const next = new Set([...owned, ...result.created, ...result.adopted]);
  for (const r of result.deleted) next.delete(r);
  return next;
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
  result: ExecutionResult;
  now: string;
}

export function buildStatus({ previous, generation, vhost, owned, result, now }: StatusInput): RabbitQueueBatchStatus {
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
    applying: [],
    ...(result.adopted.length > 0 || previous?.adopted !== undefined ? { adopted: (previous?.adopted ?? 0) + result.adopted.length } : {}),
  };
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
