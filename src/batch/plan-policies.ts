/**
 * The policy part of the planner (pure, called by plan.ts): a policy is the one setting RabbitMQ
 * changes in place, so a changed definition, pattern, applyTo or priority is an `update` (a PUT),
 * never a conflict and never a recreation. Ownership is the batch's, as for queues: a policy this
 * batch did not make and that differs is a conflict (taking it over would silently change
 * someone else's settings); one that is identical is left as is, or adopted with `adopt: IfIdentical`.
 */
import type { OperatorPolicySpec, PolicySpec, RabbitQueueBatchSpec } from '../api/schema.js';
import { operatorPolicyId, policyId, type PolicyKind } from '../model/identity.js';
import type { ObservedPolicy, ObservedVhost } from '../model/observed.js';
import type { Operation } from '../model/operation.js';
import { describeDifferences, type Difference } from './compare.js';
import type { Owned, PlannedItem } from './plan-items.js';

export interface PolicyPlan {
  items: PlannedItem[];
  puts: Operation[];
  deletes: Operation[];
}

export interface PolicyPlanInput {
  spec: RabbitQueueBatchSpec;
  observed: ObservedVhost;
  owned: Owned;
  /** Pushes a conflict item and returns true when another batch declares `resource` first. */
  claimed: (resource: string) => boolean;
}

/** The definition as sent to RabbitMQ: keys zod left undefined dropped. */
export function definitionOf(p: PolicySpec | OperatorPolicySpec): Record<string, unknown> {
  return Object.fromEntries(Object.entries(p.definition).filter(([, v]) => v !== undefined));
}

export function policyDifferences(want: PolicySpec | OperatorPolicySpec, have: ObservedPolicy): Difference[] {
  const diff: Difference[] = [];
  if (want.pattern !== have.pattern) diff.push({ field: 'pattern', desired: want.pattern, actual: have.pattern });
  if (want.applyTo !== have.applyTo) diff.push({ field: 'applyTo', desired: want.applyTo, actual: have.applyTo });
  if (want.priority !== have.priority) diff.push({ field: 'priority', desired: want.priority, actual: have.priority });
  const desired = definitionOf(want);
  for (const key of [...new Set([...Object.keys(desired), ...Object.keys(have.definition)])].sort()) {
    if (JSON.stringify(desired[key]) !== JSON.stringify(have.definition[key])) diff.push({ field: `definition.${key}`, desired: desired[key], actual: have.definition[key] });
  }
  return diff;
}

export function planPolicies({ spec, observed, owned, claimed }: PolicyPlanInput): PolicyPlan & { desired: Set<string> } {
  const items: PlannedItem[] = [];
  const puts: Operation[] = [];
  const deletes: Operation[] = [];
  const desired = new Set<string>();
  const lists: [PolicyKind, (PolicySpec | OperatorPolicySpec)[], ReadonlyMap<string, ObservedPolicy>, (n: string) => string][] = [
    ['policy', spec.policies, observed.policies ?? new Map(), policyId],
    ['operator-policy', spec.operatorPolicies, observed.operatorPolicies ?? new Map(), operatorPolicyId],
  ];
  for (const [kind, declared, actual, idOf] of lists) {
    for (const policy of declared) {
      const resource = idOf(policy.name);
      desired.add(resource);
      if (claimed(resource)) continue;
      const have = actual.get(policy.name);
      if (!have) {
        items.push({ resource, decision: 'create' });
        puts.push({ type: 'putPolicy', resource, kind, policy, created: true });
        continue;
      }
      const diff = policyDifferences(policy, have);
      if (diff.length === 0) items.push({ resource, decision: spec.adopt === 'IfIdentical' && !owned.has(resource) ? 'adopt' : 'unchanged' });
      else if (owned.has(resource)) {
        items.push({ resource, decision: 'update', message: `changed in place: ${describeDifferences(diff)}` });
        puts.push({ type: 'putPolicy', resource, kind, policy, created: false });
      } else {
        items.push({
          resource,
          decision: 'conflict',
          message: `${resource} exists with different settings (${describeDifferences(diff)}) and was not made by this batch; delete it by hand, rename it here, or make it identical and set spec.adopt: IfIdentical to take it over`,
        });
      }
    }
    // Prune: only what this batch made and no longer declares.
    for (const resource of [...owned].filter((r) => r.startsWith(`${kind}/`)).sort()) {
      if (desired.has(resource)) continue;
      const name = resource.slice(kind.length + 1);
      if (!actual.has(name)) continue;
      items.push({ resource, decision: 'delete' });
      deletes.push({ type: 'deletePolicy', resource, kind, name });
    }
  }
  return { items, puts, deletes, desired };
}
