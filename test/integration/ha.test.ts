/**
 * High availability with real operator processes: leader election (SIGKILL and SIGTERM of the
 * leader) and sharding over three replicas (spread, no overlapping reconciles, a lost replica's
 * resources moving to the others). Times are printed, not asserted.
 */
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARD_LABEL } from '../../src/sharding/sharder.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition } from '../support/operator.js';
import { spawnOperator, type OperatorProcess } from '../support/operator-process.js';
import { createTestVhost, getQueue } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let vh: { name: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  vh = await createTestVhost('ha');
});
afterAll(() => vh.cleanup());

const ready = (b: Parameters<typeof condition>[0]) => condition(b, 'Ready')?.status === 'True';

async function holder(namespace: string, lease: string): Promise<string | undefined> {
  const l = await loadKubeConfig().makeApiClient(CoordinationV1Api).readNamespacedLease({ name: lease, namespace }).catch(() => undefined);
  return l?.spec?.holderIdentity || undefined;
}

describe('leader election', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  const procs: OperatorProcess[] = [];
  beforeAll(async () => {
    ns = await createTestNamespace('leader');
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await ns.cleanup();
  });

  it('a new leader reconciles after SIGKILL of the leader; SIGTERM hands over at once', async () => {
    procs.push(await spawnOperator('leader-a', ns.name, ['--leader-elect']), await spawnOperator('leader-b', ns.name, ['--leader-elect']));
    const batches = batchClient(ns.name);
    const leaderName = await eventually(async () => {
      const h = await holder(ns.name, 'rabbitbatch-leader');
      if (!h) throw new Error('no leader yet');
      return h;
    });
    await batches.create('first', { vhost: vh.name, queues: [{ name: 'le.first' }] });
    await batches.waitFor('first', ready);

    const leader = procs.find((p) => p.identity === leaderName)!;
    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    await batches.create('second', { vhost: vh.name, queues: [{ name: 'le.second' }] });
    await batches.waitFor('second', ready, 60_000);
    console.log(`SIGKILL of the leader → new batch Ready after ${Date.now() - killedAt} ms (lease 15 s)`);
    expect(await getQueue(vh.name, 'le.second')).toBeDefined();
    const successor = procs.find((p) => p !== leader)!;
    expect(await holder(ns.name, 'rabbitbatch-leader')).toBe(successor.identity);

    // SIGTERM: the leader releases its Lease; a fresh candidate takes over without waiting for expiry.
    procs.push(await spawnOperator('leader-c', ns.name, ['--leader-elect']));
    const leases = loadKubeConfig().makeApiClient(CoordinationV1Api);
    const lease = () => leases.readNamespacedLease({ name: 'rabbitbatch-leader', namespace: ns.name });
    const time = (t: unknown) => new Date(t as string).getTime();
    // When the leader's Lease would expire were it left alone: its last renewal plus its duration.
    const held = await lease();
    expect(held.spec?.holderIdentity).toBe(successor.identity);
    const termAt = Date.now();
    expect(await successor.kill('SIGTERM')).toBe(0);
    // Released on the way out: by the time the process has exited, it no longer holds the Lease.
    const released = await lease();
    expect(released.spec?.holderIdentity ?? '', 'the Lease after the leader exited').not.toBe(successor.identity);
    await eventually(async () => expect(await holder(ns.name, 'rabbitbatch-leader')).toBe('leader-c'), { timeoutMs: 30_000 });
    const taken = await lease();
    const wouldExpireAt = time(held.spec?.renewTime) + (held.spec?.leaseDurationSeconds ?? 0) * 1000;
    // Only a hand-over gets the new holder in before the old Lease could have expired.
    expect(time(taken.spec?.acquireTime), 'new holder acquired before the old Lease would have expired').toBeLessThan(wouldExpireAt);
    console.log(`SIGTERM of the leader → hand-over after ${Date.now() - termAt} ms`);
    await batches.create('third', { vhost: vh.name, queues: [{ name: 'le.third' }] });
    await batches.waitFor('third', ready, 30_000);
  }, 150_000); // a lease expiry (15 s), three process starts and a hand-over on a loaded machine
});

describe('sharding', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  const procs: OperatorProcess[] = [];
  beforeAll(async () => {
    ns = await createTestNamespace('shard');
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await ns.cleanup();
  });

  it('spreads 50 resources over 3 replicas, never reconciles one twice at once, and moves a lost replica\'s resources', async () => {
    for (const id of ['shard-a', 'shard-b', 'shard-c']) procs.push(await spawnOperator(id, ns.name, ['--sharding']));
    const batches = batchClient(ns.name);
    const names = Array.from({ length: 50 }, (_, i) => `b${i}`);
    for (const n of names) await batches.create(n, { vhost: vh.name, queues: [{ name: `sh.${n}` }] });
    for (const n of names) await batches.waitFor(n, ready, 60_000);

    const owners = async () => Promise.all(names.map(async (n) => (await batches.get(n)).metadata.labels?.[SHARD_LABEL]));
    const before = await owners();
    const spread = new Map<string, number>();
    for (const o of before) spread.set(o!, (spread.get(o!) ?? 0) + 1);
    console.log('resources per replica:', Object.fromEntries(spread));
    expect(spread.size).toBe(3);

    const lost = procs[0]!;
    const killedAt = Date.now();
    await lost.kill('SIGKILL');
    await eventually(async () => expect((await owners()).filter((o) => o === lost.identity)).toEqual([]), { timeoutMs: 60_000, intervalMs: 500 });
    console.log(`replica lost → its resources moved after ${Date.now() - killedAt} ms (membership lease 15 s)`);
    // Every moved resource is served: a spec change of each is applied by its new owner.
    const moved = names.filter((_, i) => before[i] === lost.identity);
    for (const n of moved) await batches.setSpec(n, { vhost: vh.name, queues: [{ name: `sh.${n}` }, { name: `sh.${n}.moved` }] });
    for (const n of moved) await batches.waitFor(n, ready, 60_000);
    for (const n of moved) expect(await getQueue(vh.name, `sh.${n}.moved`)).toBeDefined();

    // Overlap detector: per key, reconcile intervals of different replicas never intersect.
    // A reconcile of a key whose batch was not in that replica's store (`held: false`) only forgot it.
    const runs = procs.flatMap((p) => p.lines().filter((l) => l.msg === 'reconcile finished' && l.controller === 'rabbitqueuebatch' && l.held !== false));
    const byKey = new Map<string, { id: string; start: number; end: number }[]>();
    for (const r of runs) byKey.set(String(r.key), [...(byKey.get(String(r.key)) ?? []), { id: String(r.identity), start: Number(r.reconcileStart), end: Number(r.reconcileEnd) }]);
    let overlaps = 0;
    for (const list of byKey.values()) {
      for (const a of list) for (const b of list) if (a.id !== b.id && a.start < b.end && b.start < a.end) overlaps++;
    }
    expect(runs.length).toBeGreaterThanOrEqual(names.length);
    expect(overlaps).toBe(0);
  });
});
