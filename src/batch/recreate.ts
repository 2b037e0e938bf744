/**
 * After `onConflict: RecreateIfEmpty`: which queues a run recreated, and a read-back of the
 * bindings bound again to them.
 *
 * Deleting a queue deletes its bindings. The plan binds every binding of the batch to a
 * recreated queue again in the same run; this read-back asks RabbitMQ (not the cache) whether
 * those bindings exist, so the status never says Ready for a binding RabbitMQ does not have.
 */
import type { ManagementApi } from '../model/broker.js';
import type { ExecutionResult } from './execute.js';
import type { Plan } from './plan.js';
import { argumentsEqual } from './plan.js';
import { bindingId } from '../model/identity.js';

/** The queues (`queue/<name>`) this run deleted and declared again with the spec's settings. */
export function recreatedQueues(plan: Plan, result: ExecutionResult): string[] {
  const ready = new Set(result.items.filter((i) => i.status === 'Ready').map((i) => i.resource));
  return plan.phases.flat().filter((op) => op.type === 'recreateQueue' && ready.has(op.resource)).map((op) => op.resource);
}

/**
 * `result` with every re-bound binding that RabbitMQ does not list turned `Failed`. Costs one
 * listing of the vhost's bindings, and only when a queue was recreated.
 */
export async function readBackRebindings(api: ManagementApi, plan: Plan, result: ExecutionResult): Promise<ExecutionResult> {
  const rebinds = plan.phases.flat().flatMap((op) => (op.type === 'bind' && op.afterRecreate ? [op] : []));
  if (rebinds.length === 0) return result;
  const present = await api.listBindings(plan.vhost);
  const missing = new Set(
    rebinds
      .filter((op) => !present.some((b) => bindingId(b) === op.resource && argumentsEqual(b.arguments, op.binding.arguments)))
      .map((op) => op.resource),
  );
  if (missing.size === 0) return result;
  const error = 'not listed by RabbitMQ after its queue was recreated: the binding is missing';
  const items = result.items.map((i) => (missing.has(i.resource) && i.status === 'Ready' ? { resource: i.resource, status: 'Failed' as const, error } : i));
  const first = [...missing][0]!;
  return {
    ...result,
    items,
    outcome: result.outcome === 'Succeeded' ? 'PartiallySucceeded' : result.outcome,
    failure: result.failure ?? { resource: first, error, kind: 'transient' },
  };
}
