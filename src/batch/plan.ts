/**
 * The planner: a pure function from (desired spec, observed RabbitMQ state, what this batch owns)
 * to an ordered list of operations. No I/O: the controller and the CLI both call it, and
 * `execute.ts` runs what it returns.
 *
 * Ordering: policies → exchanges → queues → bindings for creation (a queue is declared with its
 * policy already in place), then bindings → queues → exchanges → policies for pruning. A policy
 * changes in place (plan-policies.ts). A change RabbitMQ cannot make in place (a queue's type or arguments, an exchange's
 * type) is never done by deleting: the item becomes `conflict` with the exact difference, unless
 * the spec opts into `onConflict: RecreateIfEmpty` for queues.
 *
 * Adoption (`adopt: IfIdentical`): an object that exists with exactly the declared settings and
 * is not yet owned is planned `adopt`, which costs no operation; the caller records it as owned.
 * One that differs stays `conflict`, one claimed by another batch is that batch's.
 */
import type { ExchangeSpec, QueueSpec, RabbitQueueBatchSpec } from '../api/schema.js';
import type { Operation } from '../model/operation.js';
import type { Arguments, ObservedExchange, ObservedQueue, ObservedVhost } from '../model/observed.js';
import { bindingId, exchangeId, kindOf, nameOf, queueId } from '../model/identity.js';
import { describeDifferences, type Difference } from './compare.js';
import { planPolicies } from './plan-policies.js';
import type { Owned, PlannedItem } from './plan-items.js';
export type { Decision, Owned, PlannedItem } from './plan-items.js';
import { policyHint } from './policy-hints.js';

export interface Plan {
  vhost: string;
  vhostExists: boolean;
  items: PlannedItem[];
  /** Run in order; operations within one phase are independent of each other. */
  phases: Operation[][];
}


export interface PlanInput {
  spec: RabbitQueueBatchSpec;
  observed: ObservedVhost;
  owned?: Owned;
  /** Another resource that claimed this item first, e.g. `team-a/orders`; undefined when free. */
  claimedBy?: (resource: string) => string | undefined;
  /** How the reader opts into recreating a queue, in conflict messages. Defaults to the spec field (`set spec.onConflict: RecreateIfEmpty`). */
  howToRecreate?: string;
}

export function planBatch({ spec, observed, owned = new Set(), claimedBy = () => undefined, howToRecreate = 'set spec.onConflict: RecreateIfEmpty' }: PlanInput): Plan {
  const items: PlannedItem[] = [];
  const exchanges: Operation[] = [];
  const queues: Operation[] = [];
  const binds: Operation[] = [];
  const unbinds: Operation[] = [];
  const queueDeletes: Operation[] = [];
  const exchangeDeletes: Operation[] = [];
  const desired = new Set<string>();
  const identical = (resource: string): PlannedItem => ({ resource, decision: spec.adopt === 'IfIdentical' && !owned.has(resource) ? 'adopt' : 'unchanged' });
  /** Queues this plan recreates: every binding of the batch to one of them is bound again. */
  const recreated = new Set<string>();

  const claimed = (resource: string): boolean => {
    const other = claimedBy(resource);
    if (other === undefined) return false;
    items.push({
      resource,
      decision: 'conflict',
      message: `${resource} is also declared by RabbitQueueBatch ${other}, which declared it first; remove it from one of the two batches`,
    });
    return true;
  };

  const policies = planPolicies({ spec, observed, owned, claimed });
  items.push(...policies.items);
  for (const resource of policies.desired) desired.add(resource);

  for (const exchange of spec.exchanges) {
    const resource = exchangeId(exchange.name);
    desired.add(resource);
    if (claimed(resource)) continue;
    const actual = observed.exchanges.get(exchange.name);
    if (exchange.external) {
      items.push(actual ? { resource, decision: 'unchanged' } : missingExternal(resource, spec.vhost));
    } else if (!actual) {
      items.push({ resource, decision: 'create' });
      exchanges.push({ type: 'declareExchange', resource, exchange });
    } else {
      const diff = exchangeDifferences(exchange, actual);
      items.push(diff.length === 0 ? identical(resource) : { resource, decision: 'conflict', message: conflictMessage(resource, diff) });
    }
  }

  for (const queue of spec.queues) {
    const resource = queueId(queue.name);
    desired.add(resource);
    if (claimed(resource)) continue;
    const actual = observed.queues.get(queue.name);
    if (queue.external) {
      items.push(actual ? { resource, decision: 'unchanged' } : missingExternal(resource, spec.vhost));
    } else if (!actual) {
      items.push({ resource, decision: 'create' });
      queues.push({ type: 'declareQueue', resource, queue });
    } else {
      const diff = queueDifferences(queue, actual);
      if (diff.length === 0) items.push(identical(resource));
      else if (spec.onConflict === 'RecreateIfEmpty') {
        items.push({ resource, decision: 'update', message: `recreating (only if empty and unused): ${describeDifferences(diff)}` });
        const bindings = spec.bindings.filter((b) => b.destinationType === 'queue' && b.destination === queue.name);
        queues.push({ type: 'recreateQueue', resource, queue, bindings });
        recreated.add(queue.name);
      } else items.push({ resource, decision: 'conflict', message: conflictMessage(resource, diff, howToRecreate) + policyHint(diff) });
    }
  }

  for (const binding of spec.bindings) {
    const resource = bindingId(binding);
    desired.add(resource);
    if (claimed(resource)) continue;
    if (binding.destinationType === 'queue' && recreated.has(binding.destination)) {
      // Deleting the queue deletes its bindings: without this the queue would come back with its
      // default-exchange binding only, and the status would still call the binding Ready.
      items.push({ resource, decision: 'update', message: `bound again after queue/${binding.destination} is recreated` });
      binds.push({ type: 'bind', resource, binding, afterRecreate: true });
      continue;
    }
    const same = observed.bindings.filter((b) => bindingId(b) === resource);
    const exact = same.find((b) => argumentsEqual(b.arguments, binding.arguments));
    if (exact) {
      items.push(identical(resource));
      continue;
    }
    // A binding's arguments are part of its identity in RabbitMQ: bind the new one first, then
    // remove the old one (only if this batch made it), so routing never has a gap.
    items.push({ resource, decision: same.length > 0 ? 'update' : 'create' });
    binds.push({ type: 'bind', resource, binding });
    if (owned.has(resource)) for (const old of same) unbinds.push({ type: 'unbind', resource, binding: old });
  }

  // Prune: only what this batch created and no longer declares.
  for (const resource of [...owned].sort()) {
    if (desired.has(resource)) continue;
    const kind = kindOf(resource);
    if (kind === 'policy' || kind === 'operator-policy') continue; // pruned by planPolicies
    if (kind === 'binding') {
      const present = observed.bindings.filter((b) => bindingId(b) === resource);
      for (const binding of present) unbinds.push({ type: 'unbind', resource, binding });
      if (present.length > 0) items.push({ resource, decision: 'delete' });
    } else if (kind === 'queue' && observed.queues.has(nameOf(resource))) {
      items.push({ resource, decision: 'delete' });
      queueDeletes.push({ type: 'deleteQueue', resource, name: nameOf(resource) });
    } else if (kind === 'exchange' && observed.exchanges.has(nameOf(resource))) {
      items.push({ resource, decision: 'delete' });
      const name = nameOf(resource);
      // A queue that dead-letters to this exchange would lose its dead letters if it went while the queue stays.
      const deadLetteredBy = [...observed.queues.values()].filter((q) => q.arguments['x-dead-letter-exchange'] === name).map((q) => q.name).sort();
      exchangeDeletes.push({ type: 'deleteExchange', resource, name, ...(deadLetteredBy.length > 0 ? { deadLetteredBy } : {}) });
    }
  }

  const phases = [policies.puts, exchanges, queues, binds, unbinds, queueDeletes, exchangeDeletes, policies.deletes].filter((p) => p.length > 0);
  return { vhost: spec.vhost, vhostExists: observed.exists, items, phases };
}

/** Deletion of a whole batch (finalizer, `deletionPolicy: Delete`): prune everything it owns. */
export function planDeletion(spec: RabbitQueueBatchSpec, observed: ObservedVhost, owned: Owned): Plan {
  return planBatch({ spec: { ...spec, exchanges: [], queues: [], bindings: [], policies: [], operatorPolicies: [] }, observed, owned });
}

function missingExternal(resource: string, vhost: string): PlannedItem {
  return { resource, decision: 'missing', message: `${resource} is marked external but does not exist in vhost "${vhost}"; create it first or remove "external"` };
}

/** `howToRecreate` for a queue (only queues can be recreated); none for an exchange. */
function conflictMessage(resource: string, diff: Difference[], howToRecreate?: string): string {
  const how = howToRecreate !== undefined
    ? `use a new queue name, delete the queue by hand, or ${howToRecreate}`
    : 'use a new exchange name or delete the exchange by hand';
  return `${resource} exists with different settings (${describeDifferences(diff)}); RabbitMQ cannot change this in place: ${how}`;
}

function exchangeDifferences(want: ExchangeSpec, have: ObservedExchange): Difference[] {
  const diff: Difference[] = [];
  if (want.type !== have.type) diff.push({ field: 'type', desired: want.type, actual: have.type });
  if (want.durable !== have.durable) diff.push({ field: 'durable', desired: want.durable, actual: have.durable });
  if (want.autoDelete !== have.autoDelete) diff.push({ field: 'autoDelete', desired: want.autoDelete, actual: have.autoDelete });
  if (want.internal !== have.internal) diff.push({ field: 'internal', desired: want.internal, actual: have.internal });
  return [...diff, ...argumentDifferences(want.arguments, have.arguments)];
}

function queueDifferences(want: QueueSpec, have: ObservedQueue): Difference[] {
  const diff: Difference[] = [];
  if (want.type !== have.type) diff.push({ field: 'type', desired: want.type, actual: have.type });
  if (want.durable !== have.durable) diff.push({ field: 'durable', desired: want.durable, actual: have.durable });
  if (want.autoDelete !== have.autoDelete) diff.push({ field: 'autoDelete', desired: want.autoDelete, actual: have.autoDelete });
  // The type is compared above; `x-queue-type` is how RabbitMQ stores it.
  const { 'x-queue-type': _w, ...wantArgs } = want.arguments;
  const { 'x-queue-type': _h, ...haveArgs } = have.arguments;
  return [...diff, ...argumentDifferences(wantArgs, haveArgs)];
}

function argumentDifferences(want: Arguments, have: Arguments): Difference[] {
  const keys = [...new Set([...Object.keys(want), ...Object.keys(have)])].sort();
  return keys
    .filter((k) => want[k] !== have[k])
    .map((k) => ({ field: `arguments.${k}`, desired: want[k], actual: have[k] }));
}

export function argumentsEqual(a: Arguments, b: Arguments): boolean {
  return argumentDifferences(a, b).length === 0;
}
