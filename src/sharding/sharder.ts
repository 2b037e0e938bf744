/**
 * Sharding across replicas, after timebertt/kubernetes-controller-sharding: the elected sharder
 * assigns every RabbitQueueBatch to a live member by consistent hashing, recorded as the label
 * `rabbitbatch.io/shard=<member>`; each replica watches only its own label.
 *
 * Expected flow of a move (a member joins, or the ring changes): the sharder adds
 * `rabbitbatch.io/drain=true` → the current owner, in a reconcile of its own (so never while
 * another reconcile of that key runs there; hand-over.ts), removes both labels and forgets the
 * key → the sharder assigns the new owner. A member whose Lease expired is not asked: its resources are reassigned directly.
 *
 * Guarantees
 * - Two live replicas never reconcile one resource at the same time: the new owner sees the
 *   resource only after the old one let go of it.
 * - Label writes carry the resourceVersion they were computed from (optimistic locking).
 * - Replicas started together are placed together: before its first assignment the sharder waits
 *   until the member list is the same on two reads `settleMs` apart (a few rounds at most), so a
 *   resource is not assigned to the first member up and then moved to each one that follows.
 *
 * Failure modes
 * - No sharder (no leader): assignments freeze, but every replica keeps reconciling what it has.
 * - A crashed member: its resources move once its Lease expires (15 s).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../api/schema.js';
import { Controller } from '../controllers/controller.js';
import { keyOf } from '../controllers/claims.js';
import { customObjectPath, kubeCall, MERGE_PATCH, type KubeAccess } from '../kube/api-request.js';
import type { Membership } from './membership.js';
import { RendezvousHash } from './ring.js';

export const SHARD_LABEL = 'rabbitbatch.io/shard';
export const DRAIN_LABEL = 'rabbitbatch.io/drain';

export interface SharderOptions {
  kubeConfig: KubeAccess;
  membership: Membership;
  /** List/watch path of all RabbitQueueBatch objects. */
  path: string;
  registry: Registry;
  log: Logger;
  /** How often membership is re-read. Defaults to 2000 ms. */
  tickMs?: number;
  /** How long the member list must stay unchanged before the first assignment. Defaults to `tickMs`. */
  settleMs?: number;
}

const SETTLE_ROUNDS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function patchLabels(kc: KubeAccess, b: RabbitQueueBatch, labels: Record<string, string | null>): Promise<void> {
  const path = customObjectPath({ group: GROUP, version: VERSION, plural: PLURAL, namespace: b.metadata.namespace, name: b.metadata.name });
  await kubeCall(kc, 'PATCH', path, { body: { metadata: { labels, resourceVersion: b.metadata.resourceVersion } }, contentType: MERGE_PATCH });
}

export class Sharder {
  private members: string[] = [];
  private ring = new RendezvousHash([]);
  private timer: NodeJS.Timeout | undefined;
  readonly controller: Controller<RabbitQueueBatch>;

  constructor(private readonly o: SharderOptions) {
    this.controller = new Controller<RabbitQueueBatch>({
      name: 'sharder',
      kubeConfig: o.kubeConfig,
      path: o.path,
      registry: o.registry,
      logger: o.log,
      maxConcurrentReconciles: 4,
      // Only placement matters here: labels and deletion, not spec or status.
      predicate: (old, obj) => !old || JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(obj.metadata.labels ?? {}),
      reconcile: (req) => this.place(`${req.namespace}/${req.name}`),
    });
  }

  async start(): Promise<void> {
    await this.settleMembers();
    await this.controller.start();
    this.timer = setInterval(() => void this.refreshMembers().catch((err: Error) => this.o.log.warn({ err: err.message }, 'sharder: cannot read members')), this.o.tickMs ?? 2_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.controller.stop();
  }

  /** Waits for the member list to stop changing (bounded), then takes it as the first ring. */
  private async settleMembers(): Promise<void> {
    let members = await this.o.membership.liveMembers();
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      await sleep(this.o.settleMs ?? this.o.tickMs ?? 2_000);
      const next = await this.o.membership.liveMembers();
      if (next.join(',') === members.join(',')) break;
      members = next;
    }
    await this.refreshMembers();
  }

  private async refreshMembers(): Promise<void> {
    const members = await this.o.membership.liveMembers();
    if (members.join(',') === this.members.join(',')) return;
    this.o.log.info({ members }, 'sharder: members changed, rebalancing');
    this.members = members;
    this.ring = new RendezvousHash(members);
    for (const b of this.controller.store.list()) this.controller.enqueue(keyOf(b));
  }

  private async place(key: string): Promise<{ requeueAfterMs?: number }> {
    const b = this.controller.store.get(key);
    if (!b) return {};
    const labels = b.metadata.labels ?? {};
    const current = labels[SHARD_LABEL];
    const draining = labels[DRAIN_LABEL] !== undefined;
    const desired = this.ring.owner(key);
    if (!desired) return { requeueAfterMs: 2_000 };
    const live = current !== undefined && this.members.includes(current);
    if (current === desired) {
      if (draining) await patchLabels(this.o.kubeConfig, b, { [DRAIN_LABEL]: null }); // the ring moved back
      return {};
    }
    if (!live) {
      await patchLabels(this.o.kubeConfig, b, { [SHARD_LABEL]: desired, [DRAIN_LABEL]: null });
      return {};
    }
    if (!draining) await patchLabels(this.o.kubeConfig, b, { [DRAIN_LABEL]: 'true' });
    return { requeueAfterMs: 1_000 }; // wait for the owner to let go
  }
}
