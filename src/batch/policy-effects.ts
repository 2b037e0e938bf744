/**
 * What policies do to a batch's queues, for the status (pure): which policy and operator policy
 * RabbitMQ applies to each queue, and warnings a person should act on: a declared policy that
 * matches nothing of the batch (a pattern typo), and two policies of the same priority matching
 * one queue (RabbitMQ applies only one of them, and which one is not specified).
 *
 * Patterns are matched with JavaScript's RegExp, RabbitMQ uses Erlang's `re` (PCRE): for the
 * patterns people write (anchors, alternation, classes) the two agree. The queue's `policy`
 * comes from RabbitMQ itself whenever it is known; the operator policy is worked out here
 * (RabbitMQ reports it only in its statistics, seconds late).
 */
import type { RabbitQueueBatchSpec } from '../api/schema.js';
import { operatorPolicyId, policyId, queueId } from '../model/identity.js';
import type { ObservedPolicy, ObservedVhost } from '../model/observed.js';
import type { ItemResult } from './execute.js';

interface Candidate {
  name: string;
  pattern: string;
  applyTo: string;
  priority: number;
}

export interface PolicyWarning {
  resource: string;
  /** Event reason. */
  reason: 'PolicyUnmatched' | 'PolicyTie';
  message: string;
}

export interface PolicyEffects {
  /** Per queue name: the policy and operator policy that apply (undefined: none). */
  queues: Map<string, { policy?: string; operatorPolicy?: string }>;
  warnings: PolicyWarning[];
}

function matcher(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern);
  } catch {
    return undefined; // refused by validation before it gets here; RabbitMQ has the last word
  }
}

const appliesTo = (c: Candidate, kind: 'queue' | 'exchange', name: string) =>
  (c.applyTo === 'all' || c.applyTo === `${kind}s`) && (matcher(c.pattern)?.test(name) ?? false);

/** What the vhost will hold once the batch is applied: the batch's own policies over the others. */
function candidates(declared: readonly Candidate[], observed: ReadonlyMap<string, ObservedPolicy> | undefined): Candidate[] {
  const byName = new Map<string, Candidate>([...(observed ?? new Map<string, ObservedPolicy>()).values()].map((p) => [p.name, p]));
  for (const p of declared) byName.set(p.name, p);
  return [...byName.values()];
}

/** The highest-priority matches of `name`: one normally, several on a tie. */
function winners(list: readonly Candidate[], name: string): Candidate[] {
  const matching = list.filter((c) => appliesTo(c, 'queue', name));
  const top = Math.max(...matching.map((c) => c.priority));
  return matching.filter((c) => c.priority === top).sort((a, b) => a.name.localeCompare(b.name));
}

export function policyEffects(spec: RabbitQueueBatchSpec, observed: ObservedVhost): PolicyEffects {
  const policies = candidates(spec.policies, observed.policies);
  const operatorPolicies = candidates(spec.operatorPolicies, observed.operatorPolicies);
  const queues = new Map<string, { policy?: string; operatorPolicy?: string }>();
  const warnings: PolicyWarning[] = [];
  for (const q of spec.queues) {
    const p = winners(policies, q.name);
    const op = winners(operatorPolicies, q.name);
    const policy = observed.queues.get(q.name)?.policy ?? p[0]?.name;
    queues.set(q.name, { ...(policy ? { policy } : {}), ...(op[0] ? { operatorPolicy: op[0].name } : {}) });
    for (const [tied, what] of [[p, 'policies'], [op, 'operator policies']] as const) {
      if (tied.length < 2) continue;
      warnings.push({
        resource: queueId(q.name),
        reason: 'PolicyTie',
        message: `${what} ${tied.map((t) => `"${t.name}"`).join(' and ')} match this queue with the same priority ${tied[0]?.priority}; RabbitMQ applies only one of them, which one is not defined: give one a higher priority`,
      });
    }
  }
  const unmatched = (list: readonly Candidate[], idOf: (n: string) => string) => {
    for (const p of list) {
      const hit = spec.queues.some((q) => appliesTo(p, 'queue', q.name)) || spec.exchanges.some((e) => appliesTo(p, 'exchange', e.name));
      if (!hit) warnings.push({ resource: idOf(p.name), reason: 'PolicyUnmatched', message: `pattern ${JSON.stringify(p.pattern)} (applyTo: ${p.applyTo}) matches no queue or exchange of this batch` });
    }
  };
  unmatched(spec.policies, policyId);
  unmatched(spec.operatorPolicies, operatorPolicyId);
  return { queues, warnings };
}

/** The run's items with each queue's effective policies and the warnings as item messages. */
export function withPolicyEffects(items: readonly ItemResult[], effects: PolicyEffects): ItemResult[] {
  const messages = new Map<string, string[]>();
  for (const w of effects.warnings) messages.set(w.resource, [...(messages.get(w.resource) ?? []), w.message]);
  return items.map((item) => {
    const name = item.resource.startsWith('queue/') ? item.resource.slice('queue/'.length) : undefined;
    const applied = name === undefined ? undefined : effects.queues.get(name);
    const message = messages.get(item.resource)?.join('; ');
    return { ...item, ...applied, ...(message ? { message } : {}) };
  });
}
