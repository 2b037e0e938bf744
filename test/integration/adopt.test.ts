/**
 * `spec.adopt: IfIdentical` end to end: existing objects identical to the spec become owned
 * without a single write to RabbitMQ, and from then on pruning and `deletionPolicy: Delete`
 * apply to them (still keeping a queue that holds messages). Different or claimed objects are
 * not adopted. Outcomes are read from RabbitMQ, the status, the Events and the operator's
 * request counter.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, item, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue, listQueueNames, messageCount, mgmt, publish } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;
let vhost: string;
const created = new Set<string>();

beforeAll(async () => {
  ns = await createTestNamespace('adopt');
  vh = await createTestVhost('adopt');
  vhost = vh.name;
  operator = await startTestOperator(ns.name);
  batches = batchClient(ns.name);
});

afterAll(async () => {
  // Every batch goes (deletionPolicy Retain: RabbitMQ untouched) while the operator still runs
  // to remove its finalizer: namespaces never finish terminating on this plane.
  for (const name of created) await batches.delete(name).then(() => batches.gone(name), () => undefined);
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

const v = encodeURIComponent;

async function declareByHand(names: string[], args: Record<string, unknown> = {}): Promise<void> {
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(names.slice(i, i + 25).map(async (name) => {
      const res = await mgmt(`/api/queues/${v(vhost)}/${v(name)}`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: args } });
      if (res.status >= 300) throw new Error(`PUT ${name}: ${res.status}`);
    }));
  }
}

/** The operator's management API requests so far, by method. */
async function requestsByMethod(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const value of await operator.metric('rabbitbatch_http_requests_total')) {
    const method = String(value.labels.method);
    counts[method] = (counts[method] ?? 0) + value.value;
  }
  return counts;
}

const spec = (s: RabbitQueueBatchSpecInput): RabbitQueueBatchSpecInput => ({ vhost, ...s });

/** Creates the batch and checks the API server kept `spec.adopt` (an older CRD would prune it). */
async function create(name: string, s: RabbitQueueBatchSpecInput): Promise<void> {
  await batches.create(name, s);
  created.add(name);
  const stored = await batches.get(name);
  if (s.adopt !== undefined && stored.spec.adopt !== s.adopt) throw new Error(`the API server dropped spec.adopt of ${name}: the installed CRD is older than crds/ (another test run installed its own)`);
}

describe('adopt: IfIdentical', () => {
  it('adopts 1,000 existing queues with reads only; pruning and deletionPolicy Delete then apply to them, keeping a queue with messages', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `adopt.${String(i).padStart(4, '0')}`);
    await declareByHand(names);
    const before = await requestsByMethod();
    const started = Date.now();
    await create('adopter', spec({ adopt: 'IfIdentical', deletionPolicy: 'Delete', queues: names.map((name) => ({ name })) }));
    const b = await batches.waitFor('adopter', (b) => condition(b, 'Ready')?.status === 'True', 60_000);
    expect(b.status?.applied?.queues).toHaveLength(1000);
    expect(b.status?.adopted).toBe(1000);
    expect(b.status?.summary).toMatchObject({ total: 1000, ready: 1000 });

    const after = await requestsByMethod();
    const writes = Object.entries(after).filter(([m]) => m !== 'GET').map(([m, n]) => [m, n - (before[m] ?? 0)]).filter(([, n]) => n !== 0);
    expect(writes, 'adopting must not write to RabbitMQ').toEqual([]);
    expect((after.GET ?? 0) - (before.GET ?? 0)).toBeGreaterThan(0);
    console.log(`adopted 1,000 queues: Ready ${Date.now() - started} ms after create, ${(after.GET ?? 0) - (before.GET ?? 0)} GETs, 0 writes`);

    const core = loadKubeConfig().makeApiClient(CoreV1Api);
    const events = await eventually(async () => {
      const list = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: 'involvedObject.name=adopter,reason=Adopted' });
      expect(list.items).toHaveLength(1);
      return list.items;
    });
    expect(events[0]?.message).toContain('adopted 1000 existing objects');
    const audit = operator.logs.map((l) => JSON.parse(l) as { audit?: { who: string; adopted?: number; operations: number } }).find((l) => l.audit?.who === `RabbitQueueBatch ${ns.name}/adopter`);
    expect(audit?.audit).toMatchObject({ adopted: 1000, operations: 0 });

    // Owned now: a queue dropped from the spec is pruned.
    await batches.setSpec('adopter', spec({ adopt: 'IfIdentical', deletionPolicy: 'Delete', queues: names.slice(0, 999).map((name) => ({ name })) }));
    await batches.waitFor('adopter', (b) => b.status?.applied?.queues.length === 999, 60_000);
    expect(await getQueue(vhost, 'adopt.0999')).toBeUndefined();

    // Deleting the resource deletes what it adopted, except a queue that holds messages.
    await publish(vhost, 'adopt.0000', ['keep me']);
    await batches.delete('adopter');
    await batches.gone('adopter', 90_000); // 998 deletions
    expect(await listQueueNames(vhost)).toEqual(['adopt.0000']);
    expect(await messageCount(vhost, 'adopt.0000')).toBe(1);
  }, 180_000); // 1,000 objects on a shared 2-core machine

  it('does not adopt an object that differs (Conflict), nor one claimed by another batch, nor anything with the default Never', async () => {
    await declareByHand(['diff.q'], { 'x-max-length': 1 });
    await declareByHand(['diff.ok', 'shared.q', 'never.q']);

    await create('differ', spec({ adopt: 'IfIdentical', mode: 'BestEffort', queues: [{ name: 'diff.q', arguments: { 'x-max-length': 2 } }, { name: 'diff.ok' }] }));
    const differ = await batches.waitFor('differ', (b) => item(b, 'queue/diff.q')?.status === 'Conflict');
    expect(item(differ, 'queue/diff.q')?.error).toContain('x-max-length: desired 2, actual 1');
    expect(differ.status?.applied?.queues).toEqual(['diff.ok']);
    expect(differ.status?.adopted).toBe(1);
    expect(await getQueue(vhost, 'diff.q')).toMatchObject({ arguments: { 'x-max-length': 1 } });

    await create('first', spec({ queues: [{ name: 'shared.q' }] }));
    await batches.waitFor('first', (b) => condition(b, 'Ready')?.status === 'True');
    await create('second', spec({ adopt: 'IfIdentical', mode: 'BestEffort', queues: [{ name: 'shared.q' }] }));
    const second = await batches.waitFor('second', (b) => item(b, 'queue/shared.q')?.status === 'Conflict');
    expect(item(second, 'queue/shared.q')?.error).toContain(`${ns.name}/first`);
    expect(second.status?.applied?.queues ?? []).toEqual([]);

    await create('never', spec({ queues: [{ name: 'never.q' }] }));
    const never = await batches.waitFor('never', (b) => condition(b, 'Ready')?.status === 'True');
    expect(never.status?.applied?.queues).toEqual([]);
    expect(never.status?.adopted).toBeUndefined();
  });
});
