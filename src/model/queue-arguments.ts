import type { QueueSpec } from '../api/schema.js';
import type { Arguments } from './observed.js';

/** A queue's arguments as RabbitMQ stores them: the type travels as `x-queue-type`. */
export function queueArguments(q: Pick<QueueSpec, 'type' | 'arguments'>): Arguments {
  return q.type === 'classic' ? { ...q.arguments } : { ...q.arguments, 'x-queue-type': q.type };
}
