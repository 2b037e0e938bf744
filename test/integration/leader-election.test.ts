/** Leader election on a real Lease: one leader at a time, fast hand-over on release, takeover after expiry. */
import { CoordinationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../../src/kube/leader-election.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  ns = await createTestNamespace('lease');
});
afterAll(() => ns.cleanup());

function candidate(identity: string, events: string[], registry?: Registry) {
  return new LeaderElector({
    api: loadKubeConfig().makeApiClient(CoordinationV1Api),
    namespace: ns.name,
    name: 'test-leader',
    identity,
    // Short timings keep the test quick; the defaults are controller-runtime's 15/10/2 s.
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 250,
    log: pino({ enabled: false }),
    ...(registry ? { registry } : {}),
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
  });
}

describe('LeaderElector', () => {
  it('elects one leader; a released lease is taken over at the next retry; an abandoned one after expiry', async () => {
    const events: string[] = [];
    const registry = new Registry();
    const a = candidate('a', events, registry);
    const b = candidate('b', events);
    a.run();
    await eventually(() => expect(a.isLeader()).toBe(true));
    b.run();
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.isLeader()).toBe(false);
    expect(await registry.getSingleMetricAsString('leader_election_master_status')).toContain('leader_election_master_status{name="test-leader"} 1');

    const released = Date.now();
    await a.release();
    // Released, not left to expire: the Lease names nobody until b takes it.
    const lease = await loadKubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'test-leader', namespace: ns.name });
    expect(['', 'b']).toContain(lease.spec?.holderIdentity);
    await eventually(() => expect(b.isLeader()).toBe(true), { timeoutMs: 5000 });
    console.log(`hand-over after release: ${Date.now() - released} ms (lease duration 3000 ms)`);

    const c = candidate('c', events);
    c.run();
    const abandoned = Date.now();
    b.abandon();
    const held = await loadKubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'test-leader', namespace: ns.name });
    expect(held.spec?.holderIdentity).toBe('b'); // a crash leaves the Lease to expire
    await eventually(() => expect(c.isLeader()).toBe(true), { timeoutMs: 10_000 });
    console.log(`takeover after a crash: ${Date.now() - abandoned} ms (lease duration 3000 ms)`);
    expect(events).toEqual(['a started', 'b started', 'c started']);
    await c.release();
  });
});
