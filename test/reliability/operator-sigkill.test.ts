/**
 * The operator SIGKILLed in the middle of a batch, then started again: it resumes from the
 * status and RabbitMQ's real state. Every queue exists once, and every queue is owned (the
 * write-ahead record), so deleting the batch later removes them all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition } from '../support/operator.js';
import { spawnOperator, type OperatorProcess } from '../support/operator-process.js';
import { createTestVhost, listQueueNames } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
const procs: OperatorProcess[] = [];

beforeAll(async () => {
  ns = await createTestNamespace('sigkill');
  vh = await createTestVhost('sigkill');
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('operator SIGKILL mid-batch', () => {
  it('resumes: nothing missing, nothing orphaned, deletion removes everything it made', async () => {
    const names = Array.from({ length: 500 }, (_, i) => `kill.${String(i).padStart(3, '0')}`);
    procs.push(await spawnOperator('first', ns.name, [], { BATCH_CONCURRENCY: '2' }));
    const batches = batchClient(ns.name);
    await batches.create('big', { vhost: vh.name, deletionPolicy: 'Delete', queues: names.map((name) => ({ name })) });
    await eventually(async () => expect((await listQueueNames(vh.name)).length).toBeGreaterThan(20), { intervalMs: 20 });
    await procs[0]!.kill('SIGKILL');
    const createdBeforeKill = (await listQueueNames(vh.name)).length;
    console.log(`killed with ${createdBeforeKill}/500 queues created`);
    expect(createdBeforeKill).toBeLessThan(500);

    procs.push(await spawnOperator('second', ns.name));
    const b = await batches.waitFor('big', (b) => condition(b, 'Ready')?.status === 'True', 120_000);
    expect(await listQueueNames(vh.name)).toEqual(names);
    expect(b.status?.applied?.queues).toEqual(names); // those created before the kill are owned too

    await batches.delete('big');
    await batches.gone('big');
    expect(await listQueueNames(vh.name)).toEqual([]);
  });
});
