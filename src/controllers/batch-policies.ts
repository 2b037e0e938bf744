/**
 * The reconcile steps policies add (called by the reconciler, kept here so it stays one flow):
 * creating a missing vhost (`vhostPolicy: Create`), and after the run, each queue's effective
 * policies and the policy warnings in the status and as Events.
 */
import type { RabbitQueueBatch, RabbitQueueBatchSpec } from '../api/schema.js';
import { createVhost } from '../batch/ensure-vhost.js';
import type { ExecutionResult } from '../batch/execute.js';
import type { Plan } from '../batch/plan.js';
import { policyEffects, withPolicyEffects } from '../batch/policy-effects.js';
import type { ManagementApi, ObservedStateSource } from '../model/broker.js';
import { isPolicyKind, kindOf } from '../model/identity.js';
import type { ObservedVhost } from '../model/observed.js';
import type { RecordEvent } from './batch-report.js';

interface Deps {
  observed: ObservedStateSource;
  event: RecordEvent;
}

/** The observed vhost, created first when it is missing and the spec says `vhostPolicy: Create`. */
export async function vhostFor(deps: Deps, batch: RabbitQueueBatch, spec: RabbitQueueBatchSpec, api: ManagementApi, observed: ObservedVhost, wanted: ReadonlySet<string> | undefined): Promise<ObservedVhost> {
  if (observed.exists || spec.vhostPolicy !== 'Create') return observed;
  await createVhost(api, spec.vhost);
  deps.observed.invalidate(api, spec.vhost);
  deps.event(batch, 'Normal', 'VhostCreated', `created vhost "${spec.vhost}" (vhostPolicy: Create); rabbitbatch never deletes a vhost, whatever deletionPolicy says`);
  return deps.observed.observe(api, spec.vhost, wanted);
}

export interface PolicyRunInput {
  batch: RabbitQueueBatch;
  spec: RabbitQueueBatchSpec;
  api: ManagementApi;
  plan: Plan;
  observed: ObservedVhost;
  wanted: ReadonlySet<string> | undefined;
  result: ExecutionResult;
}

/**
 * After the run: the items with their effective policies and warnings (read again from RabbitMQ
 * when the run wrote policies: RabbitMQ re-applies them to the queues at once), a Warning Event
 * for each warning that is new, and the policies set back to the spec after someone changed them
 * (drift repaired: the spec is the one the last run already applied).
 */
export async function policyRun(deps: Deps, { batch, spec, api, plan, observed, wanted, result }: PolicyRunInput): Promise<{ result: ExecutionResult; repaired: string[] }> {
  if (!plan.vhostExists) return { result, repaired: [] };
  const wrote = plan.phases.flat().some((op) => op.type === 'putPolicy' || op.type === 'deletePolicy');
  const after = wrote ? await deps.observed.observe(api, spec.vhost, wanted).catch(() => observed) : observed;
  const effects = policyEffects(spec, after);
  const previous = new Map((batch.status?.items ?? []).map((i) => [i.resource, i.message]));
  for (const w of effects.warnings) if (!(previous.get(w.resource) ?? '').includes(w.message)) deps.event(batch, 'Warning', w.reason, `${w.resource}: ${w.message}`);
  const specUnchanged = batch.status?.observedGeneration !== undefined && batch.status.observedGeneration === batch.metadata.generation;
  const ready = new Set(result.items.filter((i) => i.status === 'Ready').map((i) => i.resource));
  const repaired = specUnchanged ? plan.items.filter((i) => i.decision === 'update' && isPolicyKind(kindOf(i.resource)) && ready.has(i.resource)).map((i) => i.resource) : [];
  return { result: { ...result, items: withPolicyEffects(result.items, effects) }, repaired };
}
