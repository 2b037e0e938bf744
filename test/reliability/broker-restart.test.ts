/**
 * The broker restarted in the middle of a 1,000-queue batch: the batch ends Ready with exactly its
 * 1,000 queues (none missing, none extra), the pools recover, and the event subscription comes back
 * and is followed by a full re-list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, stopBroker } from '../support/broker-control.js';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, listQueueNames } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;

beforeAll(async () => {
  ns = await createTestNamespace('restart');
  vh = await createTestVhost('restart');
  // One declaration at a time (~4 s for 1,000 on this broker), so that `rabbitmqctl stop_app`,
  // which takes a few seconds to start and act, lands in the middle of the batch even on an idle
  // machine; with more in flight the batch could finish first and the test would prove less.
  operator = await startTestOperator(ns.name, { BATCH_CONCURRENCY: '1' });
});
afterAll(async () => {
  await startBroker().catch(() => undefined);
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('broker restart mid-batch', () => {
  it('ends Ready with exactly the declared queues, and re-subscribes to events', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `restart.${String(i).padStart(4, '0')}`);
    const batches = batchClient(ns.name);
    await batches.create('big', { vhost: vh.name, queues: names.map((name) => ({ name })) });
    await eventually(async () => expect((await listQueueNames(vh.name)).length).toBeGreaterThan(0), { intervalMs: 20 });
    const createdBeforeStop = (await listQueueNames(vh.name)).length;
    await stopBroker();
    // The stop really came mid-batch: queues were still missing, and the batch was not Ready.
    console.log(`broker stopped with ${createdBeforeStop}/${names.length} queues created`);
    expect(createdBeforeStop).toBeLessThan(names.length);
    expect(condition(await batches.get('big'), 'Ready')?.status).not.toBe('True');
    await new Promise((r) => setTimeout(r, 3000));
    await startBroker();
    const b = await batches.waitFor('big', (b) => condition(b, 'Ready')?.status === 'True', 150_000);
    expect(await listQueueNames(vh.name)).toEqual(names);
    expect(b.status?.summary).toMatchObject({ total: names.length, ready: names.length, failed: 0 });
    // Owned, every one: also the queue whose PUT RabbitMQ answered no more (stop_app cut it).
    expect(b.status?.applied?.queues).toEqual(names);
    expect(b.status?.applying ?? []).toEqual([]);
    // Subscribed once at start, and again after the restart (each followed by a full re-list).
    await eventually(() => expect(operator.logs.filter((l) => l.includes('subscribed to RabbitMQ events')).length).toBeGreaterThanOrEqual(2), { timeoutMs: 20_000 }).catch((e) => { console.log(operator.logs.filter((l) => /event stream|subscribed|"level":(40|50|60)/.test(l)).slice(-12).join('\n')); throw e; });
    // The pooled client works again: a new batch on the same broker is applied.
    await batches.create('after', { vhost: vh.name, queues: [{ name: 'after.restart' }] });
    await batches.waitFor('after', (b) => condition(b, 'Ready')?.status === 'True', 60_000);
  });
});
