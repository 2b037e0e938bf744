/**
 * One change to RabbitMQ, as the planner emits it and the executor, the cache's write-through
 * and the metrics read it. `resource` is the item's identity (identity.ts).
 */
import type { BindingSpec, ExchangeSpec, OperatorPolicySpec, PolicySpec, QueueSpec } from '../api/schema.js';
import type { PolicyKind } from './identity.js';
import type { ObservedBinding } from './observed.js';

export type Operation =
  | { type: 'declareExchange'; resource: string; exchange: ExchangeSpec }
  | { type: 'declareQueue'; resource: string; queue: QueueSpec }
  /** `bindings`: the batch's bindings to this queue; they go with the old queue and are bound again in the same run. */
  | { type: 'recreateQueue'; resource: string; queue: QueueSpec; bindings: BindingSpec[] }
  /** `afterRecreate`: re-binds a binding of a queue this run recreates (it runs even if the recreate is refused: POST is idempotent). */
  | { type: 'bind'; resource: string; binding: BindingSpec; afterRecreate?: true }
  | { type: 'unbind'; resource: string; binding: ObservedBinding }
  | { type: 'deleteQueue'; resource: string; name: string }
  /** `deadLetteredBy`: queues in the vhost naming this exchange as `x-dead-letter-exchange`; it is kept while one of them is. */
  | { type: 'deleteExchange'; resource: string; name: string; deadLetteredBy?: string[] }
  /** PUT /api/policies or /api/operator-policies: creates or changes it in place. */
  | { type: 'putPolicy'; resource: string; kind: PolicyKind; policy: PolicySpec | OperatorPolicySpec; created: boolean }
  | { type: 'deletePolicy'; resource: string; kind: PolicyKind; name: string };

/** Operations that create something (and so go into the write-ahead record first). */
export const isCreate = (op: Operation) => op.type === 'declareExchange' || op.type === 'declareQueue' || op.type === 'bind' || (op.type === 'putPolicy' && op.created);
export const isDelete = (op: Operation) => op.type === 'unbind' || op.type === 'deleteQueue' || op.type === 'deleteExchange' || op.type === 'deletePolicy';
