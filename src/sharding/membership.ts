/**
 * Shard membership: every replica holds a Lease of its own (`rabbitbatch-member-<identity>`,
 * labelled `rabbitbatch.io/member`), renewed every `renewMs`. A member is live while its Lease
 * was renewed within `leaseDurationMs`.
 *
 * Guarantees
 * - `stop()` deletes the Lease: a graceful leave moves the member's resources at once.
 * - A crashed member drops out after `leaseDurationMs` (15 s by default).
 *
 * Failure modes
 * - Liveness compares the Lease's renewTime with this process's clock: keep node clocks in sync
 *   (skew longer than the lease duration would make members flap).
 */
import type { V1Lease } from '@kubernetes/client-node';
import type { LeaseApi } from '../kube/core-apis.js';
import type { Logger } from 'pino';
import { MicroTime } from '../kube/micro-time.js';
import { isNotFound } from '../kube/custom-object.js';

export const MEMBER_LABEL = 'rabbitbatch.io/member';

export interface MembershipOptions {
  api: LeaseApi;
  namespace: string;
  identity: string;
  /** Defaults to 15000 ms. */
  leaseDurationMs?: number;
  /** Defaults to 5000 ms. */
  renewMs?: number;
  log: Logger;
}


export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private readonly name: string;
  private readonly durationMs: number;

  constructor(private readonly o: MembershipOptions) {
    this.name = `rabbitbatch-member-${o.identity}`.toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 253);
    this.durationMs = o.leaseDurationMs ?? 15_000;
  }

  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => void this.renew().catch((err: Error) => this.o.log.warn({ err: err.message }, 'membership lease renewal failed')), this.o.renewMs ?? 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.o.api.deleteNamespacedLease({ name: this.name, namespace: this.o.namespace }).catch(() => undefined);
  }

  /** Identities of the live members, this one included once started. */
  async liveMembers(now = Date.now()): Promise<string[]> {
    const list = await this.o.api.listNamespacedLease({ namespace: this.o.namespace, labelSelector: MEMBER_LABEL });
    return list.items
      .filter((l) => {
        const renewed = l.spec?.renewTime ? new Date(l.spec.renewTime as unknown as string).getTime() : 0;
        return l.spec?.holderIdentity && renewed + (l.spec.leaseDurationSeconds ?? 15) * 1000 > now;
      })
      .map((l) => l.spec!.holderIdentity!)
      .sort();
  }

  private async renew(): Promise<void> {
    const body = (): V1Lease => ({
      metadata: { name: this.name, namespace: this.o.namespace, labels: { [MEMBER_LABEL]: 'true' } },
      spec: { holderIdentity: this.o.identity, leaseDurationSeconds: Math.round(this.durationMs / 1000), renewTime: new MicroTime() as never },
    });
    try {
      const existing = await this.o.api.readNamespacedLease({ name: this.name, namespace: this.o.namespace });
      await this.o.api.replaceNamespacedLease({ name: this.name, namespace: this.o.namespace, body: { ...body(), metadata: { ...body().metadata, resourceVersion: existing.metadata?.resourceVersion } } as V1Lease });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.o.api.createNamespacedLease({ namespace: this.o.namespace, body: body() });
    }
  }
}
