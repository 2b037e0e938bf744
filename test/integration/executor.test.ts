/**
 * The planner and executor against the real broker: the outcomes are read back from RabbitMQ,
 * not from the executor's own report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { executePlan } from '../../src/batch/execute.js';
import { planBatch } from '../../src/batch/plan.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { observeVhost } from '../../src/rabbit/observe.js';
import { createTestVhost, getQueue, messageCount, publish, rabbitUrl } from '../support/rabbit.js';

let vhost: string;
let cleanup: () => Promise<void>;
const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest' });

beforeAll(async () => {
  ({ name: vhost, cleanup } = await createTestVhost('executor'));
});
afterAll(async () => {
  await cleanup();
  await api.close();
});

const apply = async (input: RabbitQueueBatchSpecInput, owned = new Set<string>()) => {
  const spec = specSchema.parse({ ...input, vhost });
  const plan = planBatch({ spec, observed: await observeVhost(api, vhost), owned });
  return executePlan(plan, api, { mode: spec.mode, concurrency: 10 });
};

describe('executePlan against RabbitMQ', () => {
  it('creates exchanges, queues and bindings, and a second run changes nothing', async () => {
    const batch: RabbitQueueBatchSpecInput = {
      exchanges: [{ name: 'orders', type: 'topic' }],
      queues: [{ name: 'orders.created', arguments: { 'x-message-ttl': 60000 } }, { name: 'orders.quorum', type: 'quorum' }],
      bindings: [{ source: 'orders', destination: 'orders.created', routingKey: 'created.#' }],
    };
    const first = await apply(batch);
    expect(first.outcome).toBe('Succeeded');
    expect(first.created).toHaveLength(4);
    const q = await getQueue(vhost, 'orders.created');
    expect(q).toMatchObject({ durable: true, arguments: { 'x-message-ttl': 60000 } });
    expect((await getQueue(vhost, 'orders.quorum'))?.type).toBe('quorum');
    const observed = await observeVhost(api, vhost);
    expect(observed.bindings.map((b) => `${b.source}->${b.destination}:${b.routingKey}`)).toContain('orders->orders.created:created.#');

    const second = await apply(batch);
    expect(second.outcome).toBe('Succeeded');
    expect(second.operations).toBe(0);
  });

  it('AllOrNothing: a failure in the middle rolls back everything the attempt created', async () => {
    // RabbitMQ refuses a quorum queue with x-max-priority only when it executes: the planner cannot see it coming.
    const result = await apply({
      exchanges: [{ name: 'rb.x' }],
      queues: [{ name: 'rb.ok.1' }, { name: 'rb.ok.2' }, { name: 'rb.bad', type: 'quorum', arguments: { 'x-max-age': 'not-a-duration' } }],
      bindings: [{ source: 'rb.x', destination: 'rb.ok.1' }],
    });
    expect(result.outcome).toBe('RolledBack');
    expect(result.failure?.resource).toBe('queue/rb.bad');
    const observed = await observeVhost(api, vhost);
    expect([...observed.queues.keys()].filter((n) => n.startsWith('rb.'))).toEqual([]);
    expect(observed.exchanges.has('rb.x')).toBe(false);
    expect(result.items.find((i) => i.resource === 'queue/rb.ok.1')?.status).toBe('Pending');
  });

  it('BestEffort: applies what it can and reports each failure', async () => {
    const result = await apply({
      mode: 'BestEffort',
      queues: [{ name: 'be.ok' }, { name: 'be.bad', type: 'quorum', arguments: { 'x-max-age': 'not-a-duration' } }],
    });
    expect(result.outcome).toBe('PartiallySucceeded');
    expect(await getQueue(vhost, 'be.ok')).toBeDefined();
    expect(result.items.find((i) => i.resource === 'queue/be.bad')).toMatchObject({ status: 'Failed' });
  });

  it('prunes an owned queue only when empty: one with messages is Retained and keeps them', async () => {
    await apply({ queues: [{ name: 'prune.empty' }, { name: 'prune.full' }] });
    await publish(vhost, 'prune.full', ['m1', 'm2']);
    const result = await apply({ queues: [] }, new Set(['queue/prune.empty', 'queue/prune.full']));
    expect(result.deleted).toEqual(['queue/prune.empty']);
    expect(result.items.find((i) => i.resource === 'queue/prune.full')?.status).toBe('Retained');
    expect(await getQueue(vhost, 'prune.empty')).toBeUndefined();
    expect(await messageCount(vhost, 'prune.full')).toBe(2);
  });
});

describe('quorum queues (RabbitMQ 3.10 refuses if-empty/if-unused on them)', () => {
  it('prunes an empty quorum queue and keeps one that holds messages', async () => {
    await apply({ queues: [{ name: 'qq.empty', type: 'quorum' }, { name: 'qq.full', type: 'quorum' }] });
    await publish(vhost, 'qq.full', ['m1']);
    // The management API's message count is a statistic; wait until it shows the message.
    for (let i = 0; i < 100 && ((await getQueue(vhost, 'qq.full'))?.messages ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 200));
    const result = await apply({ queues: [] }, new Set(['queue/qq.empty', 'queue/qq.full']));
    expect(result.deleted).toEqual(['queue/qq.empty']);
    expect(result.items.find((i) => i.resource === 'queue/qq.full')?.status).toBe('Retained');
    expect(await messageCount(vhost, 'qq.full')).toBe(1);
  });
});
