/**
 * Test helpers that talk to the real broker: a vhost per test file, and direct management API
 * reads so tests assert what RabbitMQ holds, not what rabbitbatch says it did.
 */
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { inject } from 'vitest';

const AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;

export function rabbitUrl(): string {
  try {
    return inject('rabbitmqUrl');
  } catch {
    return process.env.RABBITMQ_URL ?? 'http://127.0.0.1:15672';
  }
}

export async function mgmt(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${rabbitUrl()}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  } catch (err) {
    throw new Error(`RabbitMQ management API unreachable at ${rabbitUrl()} (${(err as Error).message}): run \`make env-up\``, { cause: err });
  }
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const v = encodeURIComponent;

export async function createTestVhost(prefix: string): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const name = `t-${prefix}-${randomBytes(3).toString('hex')}`;
  const created = await mgmt(`/api/vhosts/${v(name)}`, { method: 'PUT', body: {} });
  if (created.status >= 300) throw new Error(`could not create vhost ${name}: ${created.status} ${JSON.stringify(created.json)}`);
  await mgmt(`/api/permissions/${v(name)}/guest`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
  return { name, cleanup: async () => void (await mgmt(`/api/vhosts/${v(name)}`, { method: 'DELETE' })) };
}

export interface BrokerQueue {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: Record<string, unknown>;
  messages?: number;
  consumers?: number;
}

export async function getQueue(vhost: string, name: string): Promise<BrokerQueue | undefined> {
  const res = await mgmt(`/api/queues/${v(vhost)}/${v(name)}`);
  if (res.status === 404) return undefined;
  const q = res.json as BrokerQueue & { messages_ready?: number };
  // Message counts are stats, refreshed every few seconds; fall back to ready counts.
  return { ...q, messages: q.messages ?? q.messages_ready ?? 0 };
}

export async function listQueueNames(vhost: string): Promise<string[]> {
  const res = await mgmt(`/api/queues/${v(vhost)}?disable_stats=true&columns=name`);
  return (res.json as { name: string }[]).map((q) => q.name).sort();
}

export async function getExchange(vhost: string, name: string): Promise<Record<string, unknown> | undefined> {
  const res = await mgmt(`/api/exchanges/${v(vhost)}/${v(name)}`);
  return res.status === 404 ? undefined : (res.json as Record<string, unknown>);
}

export async function listBindings(vhost: string): Promise<{ source: string; destination: string; destination_type: string; routing_key: string }[]> {
  const res = await mgmt(`/api/bindings/${v(vhost)}`);
  return (res.json as { source: string; destination: string; destination_type: string; routing_key: string }[]).filter((b) => b.source !== '');
}

export async function deleteQueueByHand(vhost: string, name: string): Promise<void> {
  await mgmt(`/api/queues/${v(vhost)}/${v(name)}`, { method: 'DELETE' });
}

/** Publishes persistent messages over AMQP with confirms, so they are really in the queue. */
export async function publish(vhost: string, queue: string, bodies: string[]): Promise<void> {
  await publishPersistent(await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${v(vhost)}`), queue, bodies);
}

/** Publishes persistent messages to `queue` on `conn`, waits for every confirm, closes `conn`. */
export async function publishPersistent(conn: amqp.ChannelModel, queue: string, bodies: string[]): Promise<void> {
  try {
    const ch = await conn.createConfirmChannel();
    for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), { persistent: true });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

/** Exact message count without waiting for stats: a passive declare over AMQP. */
export async function messageCount(vhost: string, queue: string): Promise<number> {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${v(vhost)}`);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
