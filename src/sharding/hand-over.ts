/**
 * The replica side of a sharding move: a wrapper around the batch reconciler. A resource the
 * sharder asked to drain (`rabbitbatch.io/drain`) is let go of inside a reconcile of that key,
 * so never while another reconcile of it runs here, and the reconciler forgets what it
 * remembered of it.
 *
 * Guarantees
 * - The release is the last thing this replica does with the resource: its log line carries
 *   `releaseSentAt`, the moment the patch left, which is where this replica's hold ends (the
 *   reconcile that carried it ends a round trip later, when the next owner may already run).
 * - After a release this replica holds no per-key memory of the resource: when the resource comes
 *   back (A → B → A), A reads `status.applied` as B left it, not what A wrote before the move.
 * - A resource that leaves this replica's store without a drain (its Lease expired and the
 *   sharder reassigned it) is forgotten by the reconciler itself, which finds no object.
 *
 * Failure modes
 * - The label patch fails (conflict, API server away): the error is returned, the work queue
 *   retries, and the memory is kept until the release succeeds (this replica still owns the key).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { RabbitQueueBatch } from '../api/schema.js';
import type { Reconciler } from '../controllers/controller.js';
import { DRAIN_LABEL, SHARD_LABEL, patchLabels } from './sharder.js';

export interface HandOverOptions {
  kubeConfig: KubeConfig;
  /** Drops the reconciler's memory of a key. */
  forget(key: string): void;
}

export function withHandOver(reconcile: Reconciler<RabbitQueueBatch>, o: HandOverOptions): Reconciler<RabbitQueueBatch> {
  return async (req, ctx) => {
    const key = `${req.namespace}/${req.name}`;
    const batch = ctx.store.get(key);
    if (batch?.metadata.labels?.[DRAIN_LABEL] === undefined) return reconcile(req, ctx);
    // Everything this replica did with the resource is done once the patch is on its way: the
    // next owner can start as soon as the API server applies it, before the response is back here.
    const releaseSentAt = Date.now();
    await patchLabels(o.kubeConfig, batch, { [SHARD_LABEL]: null, [DRAIN_LABEL]: null });
    o.forget(key);
    ctx.log.info({ releaseSentAt }, 'released to another replica');
    return {};
  };
}
