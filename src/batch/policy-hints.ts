/**
 * Queue arguments a policy can set: a Conflict on one of them names the policy key, since a
 * policy changes the setting on the existing queue without recreating it (and keeps its messages).
 */
import type { Difference } from './compare.js';

/** Queue argument → the policy definition key with the same effect (RabbitMQ 3.10). */
export const POLICY_KEY_OF_ARGUMENT: Readonly<Record<string, string>> = {
  'x-message-ttl': 'message-ttl',
  'x-expires': 'expires',
  'x-max-length': 'max-length',
  'x-max-length-bytes': 'max-length-bytes',
  'x-overflow': 'overflow',
  'x-dead-letter-exchange': 'dead-letter-exchange',
  'x-dead-letter-routing-key': 'dead-letter-routing-key',
  'x-dead-letter-strategy': 'dead-letter-strategy',
  'x-delivery-limit': 'delivery-limit',
  'x-max-in-memory-length': 'max-in-memory-length',
  'x-max-in-memory-bytes': 'max-in-memory-bytes',
  'x-queue-mode': 'queue-mode',
  'x-queue-version': 'queue-version',
  'x-queue-master-locator': 'queue-master-locator',
  'x-queue-leader-locator': 'queue-leader-locator',
  'x-max-age': 'max-age',
  'x-stream-max-segment-size-bytes': 'stream-max-segment-size-bytes',
};

/** `; x-message-ttl cannot change on an existing queue; a policy with message-ttl can, without recreating it`, or nothing. */
export function policyHint(diff: readonly Difference[]): string {
  const hints = diff
    .map((d) => d.field.replace(/^arguments\./, ''))
    .filter((arg) => POLICY_KEY_OF_ARGUMENT[arg] !== undefined)
    .map((arg) => `${arg} cannot change on an existing queue; a policy with ${POLICY_KEY_OF_ARGUMENT[arg]} can, without recreating it (spec.policies)`);
  return hints.length > 0 ? `. ${hints.join('. ')}` : '';
}
