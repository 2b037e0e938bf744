/**
 * Stable names for the things a batch manages, as they appear in `status.items[].resource`,
 * in `status.applied`, in Events and in CLI output: `exchange/orders`, `queue/orders.created`,
 * `binding/orders/orders.created/created.#` (an exchange destination reads `exchange:name`).
 */
import type { BindingSpec } from '../api/schema.js';
import type { ObservedBinding } from '../rabbit/types.js';

export type ResourceKind = 'exchange' | 'queue' | 'binding';

export const exchangeId = (name: string) => `exchange/${name}`;
export const queueId = (name: string) => `queue/${name}`;

type BindingKey = Pick<BindingSpec | ObservedBinding, 'source' | 'destination' | 'destinationType' | 'routingKey'>;

export function bindingId(b: BindingKey): string {
  const destination = b.destinationType === 'exchange' ? `exchange:${b.destination}` : b.destination;
  return `binding/${b.source}/${destination}/${b.routingKey}`;
}

export function kindOf(resource: string): ResourceKind {
  const kind = resource.slice(0, resource.indexOf('/'));
  if (kind === 'exchange' || kind === 'queue' || kind === 'binding') return kind;
  throw new Error(`not a rabbitbatch resource id: ${resource}`);
}

/** The name part of `exchange/x` or `queue/x`. */
export const nameOf = (resource: string) => resource.slice(resource.indexOf('/') + 1);

/**
 * The exchange and queue names a plan of `spec` with `owned` looks at in the observed state: its
 * items, the ends of its bindings, and what it owns. Undefined (every name) when it owns a binding
 * its spec no longer lists: that binding's ends cannot be read back from its id unambiguously.
 */
export function namesLookedAt(spec: { exchanges: { name: string }[]; queues: { name: string }[]; bindings: BindingKey[] }, owned: ReadonlySet<string>): Set<string> | undefined {
  const names = new Set<string>([...spec.exchanges.map((e) => e.name), ...spec.queues.map((q) => q.name)]);
  for (const b of spec.bindings) names.add(b.source).add(b.destination);
  const listed = new Set(spec.bindings.map(bindingId));
  for (const resource of owned) {
    if (kindOf(resource) !== 'binding') names.add(nameOf(resource));
    else if (!listed.has(resource)) return undefined;
  }
  return names;
}
