/**
 * Drift repair without events (RABBITMQ_EVENTS=false, as with a broker lacking the event-exchange
 * plugin, or bindings lost): a queue deleted by hand is still re-created, by the periodic full
 * re-list (RESYNC_INTERVAL, 3 s here).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, deleteQueueByHand, getQueue } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;

beforeAll(async () => {
  ns = await createTestNamespace('safetynet');
  vh = await createTestVhost('safetynet');
  operator = await startTestOperator(ns.name, { RESYNC_INTERVAL: '3', RABBITMQ_EVENTS: 'false' });
});
afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('the periodic full re-list', () => {
  it('repairs a hand-deleted queue when no event arrives', async () => {
    const batches = batchClient(ns.name);
    await batches.create('net', { vhost: vh.name, queues: [{ name: 'net.q' }] });
    await batches.waitFor('net', (b) => condition(b, 'Ready')?.status === 'True');
    await deleteQueueByHand(vh.name, 'net.q');
    await eventually(async () => expect(await getQueue(vh.name, 'net.q')).toBeDefined(), { timeoutMs: 30_000, intervalMs: 250 });
    await eventually(async () => {
      const metrics = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
      expect(metrics).toMatch(/rabbitbatch_cache_invalidations_total\{source="resync"\} [1-9]/);
    });
  });
});
