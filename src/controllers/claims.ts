/**
 * Claims: which batch declares which broker object, so two batches never fight over one queue.
 * The reconciler asks who else claims an item before planning it; the event handler asks which
 * batches declare the object an event names (drift repair). Both go through this module.
 *
 * A claim is (broker endpoint, vhost, resource identity). The store indexes every batch by
 * `vhost|identity` (`claimsIndex`, honouring `MAX_ITEMS`); the endpoint is compared at lookup,
 * since a batch's endpoint is known only once its connection Secret has been read.
 *
 * Guarantees
 * - Of two batches claiming one object on one broker, the older one (creation time, then key)
 *   owns it; the other reports `Conflict`. Batches on different brokers never conflict.
 * - Externals are shared, not claimed.
 *
 * Failure modes
 * - A batch whose connection has not been resolved in this process yet has no known endpoint: it
 *   is taken to be on the same broker as another batch with the same connection reference (the
 *   same Secret, or both the default). Its first reconcile makes the endpoint known.
 */
import type { RabbitQueueBatch } from '../api/schema.js';
import { validateBatchSpec } from '../api/validated-spec.js';
import { bindingId, exchangeId, operatorPolicyId, policyId, queueId } from '../model/identity.js';
import type { RabbitEvent } from '../model/observed.js';

export const CLAIMS_INDEX = 'claims';

export const keyOf = (b: { metadata: { namespace?: string; name: string } }) => `${b.metadata.namespace}/${b.metadata.name}`;

/** The index value of one claimed object. */
export const claimKey = (vhost: string, resource: string) => `${vhost}|${resource}`;

/** The store's claims index: every object a valid batch (at most `maxItems` items) declares. */
export function claimsIndex(maxItems: number): (batch: RabbitQueueBatch) => string[] {
  return (batch) => {
    const v = validateBatchSpec(batch, maxItems);
    if (!v.ok) return [];
    const { spec } = v;
    const ids = [
      ...spec.exchanges.filter((e) => !e.external).map((e) => exchangeId(e.name)),
      ...spec.queues.filter((q) => !q.external).map((q) => queueId(q.name)),
      ...spec.bindings.map(bindingId),
      ...spec.policies.map((p) => policyId(p.name)),
      ...spec.operatorPolicies.map((p) => operatorPolicyId(p.name)),
    ];
    return ids.map((id) => claimKey(spec.vhost, id));
  };
}

/** How a batch names its connection: its Secret (`namespace/name`) or `default`. */
export function connectionRef(batch: RabbitQueueBatch): string {
  const secret = batch.spec.rabbitmq?.connectionSecret?.name;
  return secret ? `${batch.metadata.namespace}/${secret}` : 'default';
}

export interface ClaimsView {
  byIndex(index: string, value: string): RabbitQueueBatch[];
  list(): RabbitQueueBatch[];
}

/** The broker endpoint of a batch, once known (see the failure modes above). */
export type EndpointOf = (batch: RabbitQueueBatch) => string | undefined;

export class Claims {
  constructor(
    private readonly store: ClaimsView,
    private readonly endpointOf: EndpointOf,
  ) {}

  /** The other batch on `endpoint` that owns `resource` in `vhost` (older first), if any. */
  ownerOtherThan(self: RabbitQueueBatch, endpoint: string, vhost: string, resource: string): string | undefined {
    const selfKey = keyOf(self);
    const rivals = this.claimants(endpoint, vhost, resource, connectionRef(self)).filter((b) => keyOf(b) !== selfKey);
    const first = [self, ...rivals].sort(olderFirst)[0];
    return first && keyOf(first) !== selfKey ? keyOf(first) : undefined;
  }

  /** The batches that declare the object an event from `endpoint` is about (drift repair targets). */
  concernedBy(endpoint: string, e: RabbitEvent): string[] {
    const lookup = (resource: string) => this.claimants(endpoint, e.vhost, resource).map(keyOf);
    switch (e.kind) {
      case 'queue':
        return lookup(queueId(e.name));
      case 'exchange':
        return lookup(exchangeId(e.name));
      case 'binding':
        return lookup(bindingId(e));
      case 'policy':
        // The event does not say which of the two kinds it is about.
        return [...new Set([...lookup(policyId(e.name)), ...lookup(operatorPolicyId(e.name))])];
      case 'vhost':
        return this.store.list().filter((b) => (b.spec.vhost ?? '/') === e.vhost && this.onEndpoint(b, endpoint)).map(keyOf);
      default:
        return [];
    }
  }

  private claimants(endpoint: string, vhost: string, resource: string, ref?: string): RabbitQueueBatch[] {
    return this.store.byIndex(CLAIMS_INDEX, claimKey(vhost, resource)).filter((b) => this.onEndpoint(b, endpoint, ref));
  }

  private onEndpoint(b: RabbitQueueBatch, endpoint: string, ref?: string): boolean {
    const known = this.endpointOf(b);
    return known !== undefined ? known === endpoint : ref !== undefined && connectionRef(b) === ref;
  }
}

function olderFirst(a: RabbitQueueBatch, b: RabbitQueueBatch): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : keyOf(a).localeCompare(keyOf(b));
}
