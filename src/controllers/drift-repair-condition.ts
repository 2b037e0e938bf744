/**
 * The `DriftRepair` condition: present (status False) only while a batch's broker sends no change
 * events, so a change by hand (a queue deleted in the management UI) is repaired only by the
 * periodic resync; the message says why and when that runs next. Absent while the broker's event
 * stream is subscribed (drift is repaired within about a second) or only briefly lost.
 */
import type { Condition } from '../api/schema.js';
import { setCondition } from '../kube/conditions.js';
import { Reason } from '../model/reason.js';

/** How drift on a broker reaches this operator (broker-registry.ts keeps it per broker). */
export type EventState = 'subscribed' | 'connecting' | 'no-event-exchange' | 'disabled';

export const DRIFT_REPAIR = 'DriftRepair';

export interface DriftRepairInput {
  reason: string;
  message: string;
}

/**
 * What the condition says for a broker in `state` (`problem`: why the batch's own connection
 * cannot carry an event stream); undefined when there is nothing to say.
 */
export function driftRepairOf(state: EventState | undefined, broker: string | undefined, nextResync: Date, problem?: string): DriftRepairInput | undefined {
  const next = nextResync.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (problem && state !== 'subscribed' && state !== 'disabled') {
    return { reason: Reason.EventsUnavailable, message: `no event stream for RabbitMQ ${broker ?? ''}: ${problem}; a change made by hand is repaired only by the periodic resync, next by ${next}` };
  }
  switch (state) {
    case 'no-event-exchange':
      return {
        reason: Reason.EventsUnavailable,
        message: `RabbitMQ ${broker ?? ''} has no exchange amq.rabbitmq.event (enable the rabbitmq_event_exchange plugin): a change made by hand is repaired only by the periodic resync, next by ${next}`,
      };
    case 'disabled':
      return { reason: Reason.EventsDisabled, message: `RABBITMQ_EVENTS=false: a change made by hand is repaired only by the periodic resync, next by ${next}` };
    default:
      return undefined;
  }
}

/** The conditions with `DriftRepair` set (False) or removed. */
export function withDriftRepair(conditions: Condition[] | undefined, input: DriftRepairInput | undefined, generation: number | undefined, now: string): Condition[] | undefined {
  if (!input) return conditions?.some((c) => c.type === DRIFT_REPAIR) ? conditions.filter((c) => c.type !== DRIFT_REPAIR) : conditions;
  return setCondition(conditions, { type: DRIFT_REPAIR, status: 'False', ...input }, generation, now);
}
