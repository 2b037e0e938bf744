/**
 * One change to RabbitMQ, as the planner emits it and the executor, the cache's write-through
 * and the metrics read it. `resource` is the item's identity (identity.ts).
 */
import type { BindingSpec, ExchangeSpec, QueueSpec } from '../api/schema.js';
import type { ObservedBinding } from './observed.js';

export type Operation =
  | { type: 'declareExchange'; resource: string; exchange: ExchangeSpec }
  | { type: 'declareQueue'; resource: string; queue: QueueSpec }
  | { type: 'recreateQueue'; resource: string; queue: QueueSpec }
  | { type: 'bind'; resource: string; binding: BindingSpec }
  | { type: 'unbind'; resource: string; binding: ObservedBinding }
  | { type: 'deleteQueue'; resource: string; name: string }
  | { type: 'deleteExchange'; resource: string; name: string };

/** Operations that create something (and so go into the write-ahead record first). */
export const isCreate = (op: Operation) => op.type === 'declareExchange' || op.type === 'declareQueue' || op.type === 'bind';
export const isDelete = (op: Operation) => op.type === 'unbind' || op.type === 'deleteQueue' || op.type === 'deleteExchange';
