/**
 * Batches on connection Secrets get what the default connection has: drift repaired from the
 * broker's event stream (the periodic re-list is off for the whole file), one stream and one
 * claim space per broker however many Secrets name it, clients that go away with the last batch
 * using them, and a Secret whose `amqpUri` is wrong refused before anything is applied.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { batchClient, condition, item, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, deleteQueueByHand, getQueue, mgmt } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const IDENTITY = `conn-secrets-${randomBytes(3).toString('hex')}`;
const USER = `rabbitbatch-second-${randomBytes(2).toString('hex')}`;
let ns: { name: string; cleanup: () => Promise<void> };
let vh: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator;
let batches: ReturnType<typeof batchClient>;

async function secret(name: string, data: Record<string, string>): Promise<void> {
  await loadKubeConfig().makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns.name, body: { metadata: { name }, stringData: data } });
}

/** The operator's AMQP connections on the broker, by the name it gives them. */
async function eventConnections(): Promise<number> {
  const res = await mgmt('/api/connections?columns=client_properties.connection_name');
  return (res.json as { client_properties?: { connection_name?: string } }[]).filter((c) => c.client_properties?.connection_name === `rabbitbatch-events-${IDENTITY}`).length;
}

async function poolSeries(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${operator.metricsAddress}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith('rabbitbatch_http_pool_connections{') && l.includes(`endpoint="${endpoint}"`)).length;
}

beforeAll(async () => {
  ns = await createTestNamespace('connsecrets');
  vh = await createTestVhost('connsecrets');
  await mgmt(`/api/users/${USER}`, { method: 'PUT', body: { password: 'second-pass', tags: 'management' } });
  await mgmt(`/api/permissions/${encodeURIComponent(vh.name)}/${USER}`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
  // The event stream subscribes in vhost "/" (where amq.rabbitmq.event lives): its own queues only.
  await mgmt(`/api/permissions/%2F/${USER}`, { method: 'PUT', body: { configure: '^amq\\.gen', write: '^amq\\.gen', read: '^(amq\\.gen|amq\\.rabbitmq\\.event)' } });
  // Two Secrets, one broker: another host name for the same address, and another user.
  await secret('by-name', { uri: 'http://localhost:15672', username: 'guest', password: 'guest' });
  await secret('second-user', { uri: 'http://127.0.0.1:15672', username: USER, password: 'second-pass', amqpUri: 'amqp://127.0.0.1:5672' });
  await secret('amqp-dead', { uri: 'http://127.0.0.1:15672', username: 'guest', password: 'guest', amqpUri: 'amqp://127.0.0.1:1' });
  await secret('amqp-empty', { uri: 'http://127.0.0.1:15672', username: 'guest', password: 'guest', amqpUri: ' , ' });
  await secret('amqp-http', { uri: 'http://127.0.0.1:15672', username: 'guest', password: 'guest', amqpUri: 'http://127.0.0.1:5672' });
  // Drift can only be repaired from events here: the periodic re-list does not run during the file.
  operator = await startTestOperator(
    ns.name,
    { RESYNC_INTERVAL: '3600', POD_NAME: IDENTITY },
    { inProcess: 'its Secrets reach one broker by two loopback names (localhost, 127.0.0.1); a Pod has only the node\'s one forwarded address for it' },
  );
  batches = batchClient(ns.name);
});

afterAll(async () => {
  await operator?.stop();
  await ns?.cleanup();
  await vh?.cleanup();
  await mgmt(`/api/users/${USER}`, { method: 'DELETE' });
});

const ready = (b: Parameters<typeof condition>[0]) => condition(b, 'Ready')?.status === 'True';

describe('a batch on a connection Secret', () => {
  it('has its hand-deleted queue repaired from the event stream, on every Secret for the broker', async () => {
    await batches.create('a', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'by-name' } }, queues: [{ name: 'a.q1' }, { name: 'a.q2' }] });
    await batches.create('c', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'second-user' } }, queues: [{ name: 'c.q' }] });
    await batches.waitFor('a', ready);
    await batches.waitFor('c', ready);
    for (const [vhost, queue] of [[vh.name, 'a.q1'], [vh.name, 'c.q']] as const) {
      await deleteQueueByHand(vhost, queue);
      await eventually(async () => expect(await getQueue(vhost, queue)).toBeDefined(), { timeoutMs: 20_000, intervalMs: 100 });
    }
    expect(condition(await batches.get('a'), 'DriftRepair')).toBeUndefined();
  });

  it('repairs a hand deletion with one reconcile of that batch, also on a broker that delivers every event twice', async () => {
    // RabbitMQ 3.10 can hold the event exchange's handler twice and publish each event twice (event-dedupe.ts); a broker that does not still costs one reconcile.
    const reconciles = async () => (await operator.metric('controller_runtime_reconcile_total')).filter((s) => s.labels.controller === 'rabbitqueuebatch').reduce((n, s) => n + s.value, 0);
    await batches.waitFor('a', ready);
    const settled = async () => {
      let last = -1;
      for (;;) {
        const now = await reconciles();
        if (now === last) return now;
        last = now;
        await new Promise((r) => setTimeout(r, 1500));
      }
    };
    const before = await settled();
    await deleteQueueByHand(vh.name, 'a.q2');
    await eventually(async () => expect(await getQueue(vh.name, 'a.q2')).toBeDefined(), { timeoutMs: 20_000, intervalMs: 100 });
    expect((await settled()) - before).toBe(1);
  });

  it('shares claims with every other Secret for the same broker: the younger batch gets Conflict naming the owner', async () => {
    await batches.create('b', { vhost: vh.name, rabbitmq: { connectionSecret: { name: 'second-user' } }, queues: [{ name: 'a.q2' }, { name: 'b.own' }] });
    const b = await batches.waitFor('b', (x) => item(x, 'queue/a.q2')?.status === 'Conflict');
    expect(item(b, 'queue/a.q2')?.error).toContain(`${ns.name}/a`);
  });

  it('uses one event stream per broker, and closes what the last batch of a connection used', async () => {
    // Default connection, "by-name" and "second-user": one broker, one AMQP connection.
    await eventually(async () => expect(await eventConnections()).toBe(1), { timeoutMs: 15_000 });
    expect(await poolSeries('http://localhost:15672')).toBeGreaterThan(0);
    await batches.delete('a');
    await batches.gone('a');
    await eventually(async () => expect(await poolSeries('http://localhost:15672')).toBe(0), { timeoutMs: 15_000 });
    // The default connection keeps the broker's stream: still exactly one.
    expect(await eventConnections()).toBe(1);
  });
});

describe('a Secret whose amqpUri is wrong', () => {
  it.each([
    ['amqp-dead', 'no node answered'],
    ['amqp-empty', 'no node listed'],
    ['amqp-http', 'is not amqp:// or amqps://'],
  ])('(%s) is refused naming the Secret and the key, and nothing is applied', async (name, why) => {
    const queue = `${name}.q`;
    await batches.create(name, { vhost: vh.name, rabbitmq: { connectionSecret: { name } }, queues: [{ name: queue }] });
    const b = await batches.waitFor(name, (x) => condition(x, 'Ready')?.reason === 'InvalidConnection', 40_000);
    expect(condition(b, 'Ready')?.message).toContain(`Secret ${ns.name}/${name} key amqpUri`);
    expect(condition(b, 'Ready')?.message).toContain(why);
    expect(await getQueue(vh.name, queue)).toBeUndefined();
  });
});
