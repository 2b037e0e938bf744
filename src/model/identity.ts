/**
 * Resource identities: the one way to name a thing a batch manages, as it appears in
 * `status.items[].resource`, in `status.applied`, in claims, in Events, in the cache and in CLI
 * output. Nothing else builds or takes apart these strings.
 *
 * - exchange: `exchange/orders`
 * - queue: `queue/orders.created`
 * - binding: `binding/<source>/<destination>/<routingKey>`, where an exchange destination reads
 *   `exchange:<name>`: a binding to queue `x` and one to exchange `x` never share an identity.
 * - policy: `policy/<name>`; operator policy: `operator-policy/<name>` (RabbitMQ keeps the two in
 *   separate namespaces: one of each may share a name).
 */

export type ResourceKind = 'exchange' | 'queue' | 'binding' | PolicyKind;
export type PolicyKind = 'policy' | 'operator-policy';
export type DestinationType = 'queue' | 'exchange';

/** What identifies a binding (its arguments are settings, compared by the planner). */
export interface BindingKey {
  source: string;
  destination: string;
  destinationType: DestinationType;
  routingKey: string;
}

export type ParsedResource = { kind: 'exchange' | 'queue' | PolicyKind; name: string } | ({ kind: 'binding' } & BindingKey);

export const exchangeId = (name: string) => `exchange/${name}`;
export const queueId = (name: string) => `queue/${name}`;
export const policyId = (name: string) => `policy/${name}`;
export const operatorPolicyId = (name: string) => `operator-policy/${name}`;
export const isPolicyKind = (kind: ResourceKind): kind is PolicyKind => kind === 'policy' || kind === 'operator-policy';
/** The identity of a binding's destination object: `queue/x` or `exchange/x`. */
export const destinationId = (b: Pick<BindingKey, 'destination' | 'destinationType'>) => (b.destinationType === 'exchange' ? exchangeId(b.destination) : queueId(b.destination));

export function bindingId(b: BindingKey): string {
  const destination = b.destinationType === 'exchange' ? `exchange:${b.destination}` : b.destination;
  return `binding/${b.source}/${destination}/${b.routingKey}`;
}

/**
 * One binding as RabbitMQ holds it: several can share an identity (different arguments), told
 * apart by RabbitMQ's properties key. The cache's key of an observed binding.
 */
export const bindingInstanceId = (b: BindingKey & { propertiesKey: string }) => `${bindingId(b)}\u0000${b.propertiesKey}`;

export function kindOf(resource: string): ResourceKind {
  const kind = resource.slice(0, resource.indexOf('/'));
  if (kind === 'exchange' || kind === 'queue' || kind === 'binding' || kind === 'policy' || kind === 'operator-policy') return kind;
  throw new Error(`not a rabbitbatch resource id: ${resource}`);
}

/** The name part of `exchange/x`, `queue/x`, `policy/x` or `operator-policy/x`. */
export const nameOf = (resource: string) => resource.slice(resource.indexOf('/') + 1);

/**
 * Takes an identity apart. A binding's parts are separated by `/`, which names may contain too:
 * an id that does not split into exactly source, destination and routing key is ambiguous and
 * gives undefined (callers then look at every name instead of guessing).
 */
export function parseResource(resource: string): ParsedResource | undefined {
  const kind = kindOf(resource);
  if (kind !== 'binding') return { kind, name: nameOf(resource) };
  const parts = nameOf(resource).split('/');
  if (parts.length !== 3) return undefined;
  const [source = '', rawDestination = '', routingKey = ''] = parts;
  const toExchange = rawDestination.startsWith('exchange:');
  return { kind, source, destination: toExchange ? rawDestination.slice('exchange:'.length) : rawDestination, destinationType: toExchange ? 'exchange' : 'queue', routingKey };
}
