/** Every manifest in examples/ is applied and ends as its comments say (in a vhost of its own). */
import { readdirSync, readFileSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RabbitQueueBatch } from '../../src/api/schema.js';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition, item, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue, listBindings, messageCount, publish } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const DIR = new URL('../../examples/', import.meta.url);
let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;

beforeAll(async () => {
  ns = await createTestNamespace('examples');
  vh = await createTestVhost('examples');
  operator = await startTestOperator(ns.name);
});
afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('examples/', () => {
  it('applies all four and each ends as documented', async () => {
    const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
    expect(files).toEqual(['01-small-batch.yaml', '02-bindings-and-quorum.yaml', '03-best-effort-with-conflict.yaml', '04-dead-lettering-with-policies.yaml']);
    const batches = batchClient(ns.name);
    for (const f of files) {
      const manifest = parse(readFileSync(new URL(f, DIR), 'utf8')) as RabbitQueueBatch;
      await batches.create(manifest.metadata.name, { ...manifest.spec, vhost: vh.name });
      if (f.startsWith('01')) await batches.waitFor('orders', (b) => condition(b, 'Ready')?.status === 'True');
    }
    await batches.waitFor('billing', (b) => condition(b, 'Ready')?.status === 'True');
    const reporting = await batches.waitFor('reporting', (b) => item(b, 'queue/orders.created')?.status === 'Conflict');
    expect(item(reporting, 'queue/reporting.daily')?.status).toBe('Ready');
    expect((await getQueue(vh.name, 'billing.invoices'))?.type).toBe('quorum');
    expect((await listBindings(vh.name)).some((b) => b.source === 'billing' && b.destination === 'billing.audit' && b.destination_type === 'exchange')).toBe(true);
    expect((await getQueue(vh.name, 'orders.created'))?.arguments).toEqual({ 'x-message-ttl': 60000 });

    const payments = await batches.waitFor('payments', (b) => condition(b, 'Ready')?.status === 'True');
    expect(payments.status?.ready).toBe('5/5');
    expect(item(payments, 'queue/payments.incoming')?.policy).toBe('payments-dead-letter');
    // A payment rejected by its consumer is dead-lettered by the policy to payments.dead.
    await publish(vh.name, 'payments.incoming', ['p1']);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vh.name)}`);
    try {
      const ch = await conn.createChannel();
      const msg = await ch.get('payments.incoming');
      if (!msg) throw new Error('payments.incoming is empty');
      ch.nack(msg, false, false);
      await eventually(async () => expect(await messageCount(vh.name, 'payments.dead')).toBe(1));
    } finally {
      await conn.close();
    }
  });
});
