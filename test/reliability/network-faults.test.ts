/**
 * Network faults between the operator and the management API, through toxiproxy on loopback:
 * added latency, connection resets, a black hole. Reconciles still converge, the circuit breaker
 * opens and closes, and the pool ends with nothing active or pending (no leaked sockets).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Toxiproxy } from '../../bench/lib/toxiproxy.js';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let tox: Toxiproxy;
let operator: TestOperator;

beforeAll(async () => {
  ns = await createTestNamespace('netfault');
  vh = await createTestVhost('netfault');
  tox = await Toxiproxy.start();
  const listen = await tox.proxy('mgmt', '127.0.0.1:15672', 0);
  operator = await startTestOperator(ns.name, { RABBITMQ_URL: `http://${listen}` });
});
afterAll(async () => {
  await operator?.stop();
  tox?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
});

const metric = async (pattern: RegExp) => {
  const text = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
  return text.split('\n').filter((l) => pattern.test(l)).map((l) => Number(l.split(' ').pop()));
};
const breakerState = async () => (await metric(/^rabbitbatch_circuit_breaker_state\{/))[0];
const toxic = (name: string, type: string, attributes: Record<string, number>) => tox.call('POST', '/proxies/mgmt/toxics', { name, type, attributes });
const clear = (name: string) => tox.call('DELETE', `/proxies/mgmt/toxics/${name}`);
const ready = (b: Parameters<typeof condition>[0]) => condition(b, 'Ready')?.status === 'True';

describe('network faults', () => {
  it('converges through latency, connection resets and a black hole', async () => {
    const batches = batchClient(ns.name);
    const queues = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${prefix}.${i}` }));

    await toxic('slow', 'latency', { latency: 50, jitter: 20 });
    await batches.create('slow', { vhost: vh.name, queues: queues('slow', 20) });
    await batches.waitFor('slow', ready, 60_000);
    await clear('slow');

    await toxic('reset', 'reset_peer', { timeout: 0 });
    await batches.create('reset', { vhost: vh.name, queues: queues('reset', 5) });
    await batches.waitFor('reset', (b) => condition(b, 'Ready')?.reason === 'BrokerUnavailable', 60_000);
    await eventually(async () => expect(await breakerState()).toBe(1), { timeoutMs: 30_000 });
    await clear('reset');
    await batches.waitFor('reset', ready, 90_000);
    await eventually(async () => expect(await breakerState()).toBe(0), { timeoutMs: 30_000 });

    await toxic('hole', 'timeout', { timeout: 0 });
    await batches.create('hole', { vhost: vh.name, queues: queues('hole', 5) });
    await batches.waitFor('hole', (b) => condition(b, 'Ready')?.reason === 'BrokerUnavailable', 90_000);
    await clear('hole');
    await batches.waitFor('hole', ready, 120_000);

    for (const q of ['slow.19', 'reset.4', 'hole.4']) expect(await getQueue(vh.name, q)).toBeDefined();
    // Nothing left hanging in the pool once the faults are gone.
    await eventually(async () => {
      expect(await metric(/^rabbitbatch_http_pool_connections\{.*state="active"/)).toEqual([0]);
      expect(await metric(/^rabbitbatch_http_pool_connections\{.*state="pending"/)).toEqual([0]);
    }, { timeoutMs: 30_000 });
  });

  it('owns a queue RabbitMQ made while its answer was lost, and deletes it with the batch', async () => {
    const batches = batchClient(ns.name);
    // The vhost is observed first, so the next batch's only request is its PUT.
    await batches.create('observed', { vhost: vh.name, queues: [{ name: 'observed.0' }] });
    await batches.waitFor('observed', ready, 60_000);
    // Requests still reach RabbitMQ, but every answer is cut before its first byte.
    await toxic('cut', 'limit_data', { bytes: 0 });
    await batches.create('lost', { vhost: vh.name, deletionPolicy: 'Delete', queues: [{ name: 'lost.0' }] });
    await eventually(async () => expect(await getQueue(vh.name, 'lost.0')).toBeDefined(), { timeoutMs: 30_000 });
    await batches.waitFor('lost', (b) => condition(b, 'Ready')?.reason === 'BrokerUnavailable', 60_000);
    await clear('cut');
    const b = await batches.waitFor('lost', ready, 120_000);
    // adopt defaults to Never: without its write-ahead record the batch would only look at the queue.
    expect(b.status?.applied?.queues).toEqual(['lost.0']);
    await batches.delete('lost');
    await batches.gone('lost', 60_000);
    expect(await getQueue(vh.name, 'lost.0')).toBeUndefined();
    await batches.delete('observed');
  });
});
