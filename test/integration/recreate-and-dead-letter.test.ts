/**
 * Two ways a batch could break routing without saying so, against the real broker: a queue
 * recreated by `onConflict: RecreateIfEmpty` must come back with the batch's bindings, and
 * deleting a batch must keep the dead-letter exchange of a queue that stays.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { specSchema, type RabbitQueueBatchSpecInput } from '../../src/api/schema.js';
import { executePlan } from '../../src/batch/execute.js';
import { planBatch, planDeletion } from '../../src/batch/plan.js';
import { readBackRebindings, recreatedQueues } from '../../src/batch/recreate.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { observeVhost } from '../../src/rabbit/observe.js';
import { createTestVhost, getExchange, getQueue, listBindings, publish, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let vhost: string;
let cleanup: () => Promise<void>;
const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest' });

beforeAll(async () => {
  ({ name: vhost, cleanup } = await createTestVhost('recreate'));
});
afterAll(async () => {
  await cleanup();
  await api.close();
});

const parse = (input: RabbitQueueBatchSpecInput) => specSchema.parse({ ...input, vhost });
const routes = async () => (await listBindings(vhost)).filter((b) => b.source !== '').map((b) => `${b.source}->${b.destination}:${b.routing_key}`).sort();

describe('onConflict: RecreateIfEmpty', () => {
  it('binds the recreated queue again in the same run, and the status it reports is what RabbitMQ has', async () => {
    const batch = (ttl: number): RabbitQueueBatchSpecInput => ({
      onConflict: 'RecreateIfEmpty',
      exchanges: [{ name: 'shop.events', type: 'topic' }],
      queues: [{ name: 'shop.orders', arguments: { 'x-message-ttl': ttl } }],
      bindings: [
        { source: 'shop.events', destination: 'shop.orders', routingKey: 'order.#' },
        { source: 'shop.events', destination: 'shop.orders', routingKey: 'refund.#' },
      ],
    });
    const first = parse(batch(60_000));
    expect((await executePlan(planBatch({ spec: first, observed: await observeVhost(api, vhost) }), api, { mode: 'AllOrNothing' })).outcome).toBe('Succeeded');

    const second = parse(batch(30_000));
    const plan = planBatch({ spec: second, observed: await observeVhost(api, vhost) });
    const result = await readBackRebindings(api, plan, await executePlan(plan, api, { mode: 'AllOrNothing' }));
    expect(result.outcome).toBe('Succeeded');
    expect(recreatedQueues(plan, result)).toEqual(['queue/shop.orders']);
    expect((await getQueue(vhost, 'shop.orders'))?.arguments).toEqual({ 'x-message-ttl': 30_000 });
    expect(await routes()).toEqual(['shop.events->shop.orders:order.#', 'shop.events->shop.orders:refund.#']);
    expect(result.items.filter((i) => i.resource.startsWith('binding/')).map((i) => i.status)).toEqual(['Ready', 'Ready']);
  });

  it('a queue that holds messages is not recreated, and its bindings stay', async () => {
    const batch = (ttl: number): RabbitQueueBatchSpecInput => ({
      mode: 'BestEffort',
      onConflict: 'RecreateIfEmpty',
      exchanges: [{ name: 'busy.x' }],
      queues: [{ name: 'busy.q', arguments: { 'x-message-ttl': ttl } }],
      bindings: [{ source: 'busy.x', destination: 'busy.q', routingKey: 'k' }],
    });
    await executePlan(planBatch({ spec: parse(batch(60_000)), observed: await observeVhost(api, vhost) }), api, { mode: 'BestEffort' });
    await publish(vhost, 'busy.q', ['keep me']);
    await eventually(async () => expect((await getQueue(vhost, 'busy.q'))?.messages).toBe(1));
    const plan = planBatch({ spec: parse(batch(30_000)), observed: await observeVhost(api, vhost) });
    const result = await executePlan(plan, api, { mode: 'BestEffort' });
    expect(result.items.find((i) => i.resource === 'queue/busy.q')).toMatchObject({ status: 'Failed', error: expect.stringContaining('holds 1 messages') });
    expect(result.items.find((i) => i.resource === 'binding/busy.x/busy.q/k')?.status).toBe('Ready');
    expect(await routes()).toContain('busy.x->busy.q:k');
  });
});

describe('deleting a batch', () => {
  it('keeps the dead-letter exchange of a queue it keeps, and says why', async () => {
    const spec = parse({
      mode: 'BestEffort',
      deletionPolicy: 'Delete',
      exchanges: [{ name: 'dlx.x', type: 'fanout' }, { name: 'plain.x' }],
      queues: [{ name: 'dlx.work', type: 'quorum', arguments: { 'x-dead-letter-exchange': 'dlx.x' } }, { name: 'dlx.dead' }],
      bindings: [{ source: 'dlx.x', destination: 'dlx.dead', routingKey: '' }],
    });
    const created = await executePlan(planBatch({ spec, observed: await observeVhost(api, vhost) }), api, { mode: 'BestEffort' });
    expect(created.outcome).toBe('Succeeded');
    await publish(vhost, 'dlx.work', ['busy']);
    // Quorum queues refuse if-empty in 3.10: the executor checks the statistics, which lag a little.
    await eventually(async () => expect((await getQueue(vhost, 'dlx.work'))?.messages).toBe(1), { timeoutMs: 20_000 });

    const owned = new Set(created.created);
    const result = await executePlan(planDeletion(spec, await observeVhost(api, vhost), owned), api, { mode: 'BestEffort' });
    expect(result.items.find((i) => i.resource === 'queue/dlx.work')?.status).toBe('Retained');
    expect(result.items.find((i) => i.resource === 'exchange/dlx.x')).toMatchObject({ status: 'Retained', error: expect.stringContaining('queue/dlx.work stays in RabbitMQ and names this exchange as its x-dead-letter-exchange') });
    expect(await getExchange(vhost, 'dlx.x')).toBeDefined();
    expect(await getQueue(vhost, 'dlx.work')).toBeDefined();
    // What nothing kept needs is deleted as before.
    expect(await getExchange(vhost, 'plain.x')).toBeUndefined();
    expect(await getQueue(vhost, 'dlx.dead')).toBeUndefined();
  });
});
