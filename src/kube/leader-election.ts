/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's timings and semantics.
 *
 * Expected flow: `run()` retries acquiring the Lease every `retryPeriodMs`; once it holds it,
 * `onStartedLeading` runs and the Lease is renewed every `retryPeriodMs`. `release()` (SIGTERM)
 * empties the holder so a successor takes over at its next retry instead of after expiry.
 *
 * Guarantees
 * - A replica that cannot renew within `renewDeadlineMs` calls `onStoppedLeading` at once and
 *   never leads again in this process (controller-runtime exits; so does the operator).
 * - Writes use the Lease's resourceVersion: two candidates never both believe they acquired it.
 * - Expiry is judged by this process's clock from the moment it last saw the record change
 *   (client-go's "observed time"), so clock skew between nodes does not shorten a lease.
 *
 * Failure modes
 * - API server unreachable: a leader stops leading after `renewDeadlineMs`; a candidate keeps
 *   retrying. Either way nothing reconciles without a valid Lease.
 */
import type { V1Lease } from '@kubernetes/client-node';
import type { LeaseApi } from './core-apis.js';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { MicroTime, micro } from './micro-time.js';
import { apiStatusCode, isNotFound } from './custom-object.js';

export interface LeaderElectionOptions {
  api: LeaseApi;
  namespace: string;
  /** Lease name. Defaults to `rabbitbatch-leader`. */
  name?: string;
  identity: string;
  /** Defaults to 15 s (controller-runtime). */
  leaseDurationMs?: number;
  /** Defaults to 10 s. */
  renewDeadlineMs?: number;
  /** Defaults to 2 s. */
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: Logger;
  registry?: Registry;
}

export class LeaderElector {
  private readonly name: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private inflight: Promise<boolean> | undefined;
  private readonly status: Gauge | undefined;

  constructor(private readonly o: LeaderElectionOptions) {
    this.name = o.name ?? 'rabbitbatch-leader';
    this.leaseDurationMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = o.retryPeriodMs ?? 2_000;
    if (o.registry) {
      this.status =
        (o.registry.getSingleMetric('leader_election_master_status') as Gauge | undefined) ??
        new Gauge({ name: 'leader_election_master_status', help: 'Whether this replica leads (1) or not (0), by lease name.', labelNames: ['name'], registers: [o.registry] });
      this.status.set({ name: this.name }, 0);
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  run(): void {
    const tick = async () => {
      if (this.stopped) return;
      this.inflight = this.tryAcquireOrRenew().catch((err: Error) => {
        this.o.log.debug({ err }, 'lease update failed');
        return false;
      });
      const ok = await this.inflight;
      if (this.stopped) return; // released or abandoned while the request was in flight
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading) {
          this.leading = true;
          this.status?.set({ name: this.name }, 1);
          this.o.log.info({ lease: `${this.o.namespace}/${this.name}`, identity: this.o.identity }, 'became leader');
          this.o.onStartedLeading();
        }
      } else if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) {
        this.lose('could not renew the lease within the renew deadline');
        return;
      }
      if (!this.stopped) this.timer = setTimeout(tick, this.retryPeriodMs);
    };
    void tick();
  }

  /** Stops campaigning and renewing without touching the Lease (it expires), as a crash would. */
  abandon(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.leading = false;
    this.status?.set({ name: this.name }, 0);
  }

  /** Stops campaigning; a leader empties the Lease so a successor takes over at once. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    this.status?.set({ name: this.name }, 0);
    await this.inflight; // a renewal in flight must not land after the release
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.o.api.readNamespacedLease({ name: this.name, namespace: this.o.namespace });
        if (lease.spec?.holderIdentity !== this.o.identity) return;
        lease.spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: micro(new Date()) as never, acquireTime: micro(lease.spec?.acquireTime) as never };
        await this.o.api.replaceNamespacedLease({ name: this.name, namespace: this.o.namespace, body: lease });
        this.o.log.info('released the leader lease');
        return;
      } catch (err) {
        // 409: the Lease changed between our read and write; read it again.
        if (apiStatusCode(err) === 409 && attempt < 3) continue;
        this.o.log.warn({ err }, 'could not release the leader lease; it will expire');
        return;
      }
    }
  }

  private lose(why: string): void {
    this.leading = false;
    this.stopped = true;
    this.status?.set({ name: this.name }, 0);
    this.o.log.error({ why }, 'lost leadership');
    this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, identity } = this.o;
    const now = new MicroTime();
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name: this.name, namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name: this.name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseDurationMs / 1000, acquireTime: now as never, renewTime: now as never, leaseTransitions: 0 },
        },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = String(spec.renewTime ?? '');
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: Date.now() };
    }
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    const heldByOther = holder !== '' && holder !== identity;
    if (heldByOther && this.observed.at + durationMs > Date.now()) return false;
    const acquiring = holder !== identity;
    lease.spec = {
      ...spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDurationMs / 1000,
      renewTime: now as never,
      acquireTime: (acquiring ? now : micro(spec.acquireTime)) as never,
      ...(acquiring ? { leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === '' ? 0 : 1) } : {}),
    };
    await api.replaceNamespacedLease({ name: this.name, namespace, body: lease });
    return true;
  }
}
