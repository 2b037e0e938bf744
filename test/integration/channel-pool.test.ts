/**
 * The AMQP channel pool against the real broker: the three exhaustion modes, channels closed by
 * a failed operation, confirm channels, metrics, and recovery after the broker drops the connection.
 */
import type { Channel, ConfirmChannel } from 'amqplib';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTestVhost, mgmt as supportMgmt } from '../support/rabbit.js';
import { eventually as poll } from '../support/wait.js';
import { AmqpConnection } from '../../src/rabbit/amqp-connection.js';
import { ChannelPool, PoolExhaustedError, type ChannelPoolOptions } from '../../src/rabbit/channel-pool.js';
import { BrokerUnavailableError } from '../../src/model/errors.js';

const enc = encodeURIComponent;
// Shared helpers (test/support), in the shapes this file uses.
const mgmt = (path: string, method = 'GET', body?: unknown) => supportMgmt(path, { method, body });
const createVhost = async (prefix: string) => (await createTestVhost(prefix)).name;
const eventually = <T>(fn: () => Promise<T>, timeoutMs = 30_000) => poll(fn, { timeoutMs, intervalMs: 200 });

// ---- Tests ----

let vhost: string;
let connection: AmqpConnection;
const connectionName = `rabbitbatch-test-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  vhost = await createVhost('chpool');
  connection = new AmqpConnection({ url: `amqp://guest:guest@127.0.0.1:5672/${enc(vhost)}`, connectionName });
  // Fail with the fix in the message rather than hang when the broker is not there.
  await mgmt('/api/overview?columns=rabbitmq_version');
});
afterAll(async () => {
  await connection?.close();
  if (vhost) await mgmt(`/api/vhosts/${enc(vhost)}`, 'DELETE');
});

const pool = (o: Partial<ChannelPoolOptions> = {}) => new ChannelPool<Channel>({ connection, size: 2, ...o });

describe('ChannelPool', () => {
  it('block: waits, then fails with a clear error naming the size and the wait', async () => {
    const registry = new Registry();
    const p = pool({ exhaustion: 'block', acquireTimeoutMs: 300, registry });
    const held = [await p.acquire(), await p.acquire()];
    const err = await p.acquire().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as Error).message).toMatch(/after waiting 300 ms: all 2 channels of pool "default" are in use/);
    expect(p.stats()).toMatchObject({ active: 2, pending: 0 }); // the timed-out waiter left the queue
    const metrics = await registry.metrics();
    expect(metrics).toContain('rabbitbatch_amqp_pool_exhausted_total{pool="default"} 1');
    expect(metrics).toContain('rabbitbatch_amqp_channels{pool="default",state="active"} 2');
    expect(metrics).toContain('rabbitbatch_amqp_pool_wait_seconds_count{pool="default"} 3');
    for (const ch of held) await p.release(ch);
    await p.close();
  });

  it('block with the broker unreachable: says so, rather than blaming the pool size', async () => {
    const nowhere = new AmqpConnection({ url: 'amqp://guest:guest@127.0.0.1:1/' });
    const p = new ChannelPool({ connection: nowhere, size: 2, acquireTimeoutMs: 300 });
    const err = await p.acquire().then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect((err as Error).message).toMatch(/could not open an AMQP channel within 300 ms/);
    await nowhere.close(); // ends the reconnect loop; the pending channel open fails
    await p.close();
    await expect(nowhere.connection()).rejects.toThrow(/closed/);
  });

  it('fail-fast: fails at once when every channel is in use', async () => {
    const p = pool({ exhaustion: 'fail-fast' });
    const held = [await p.acquire(), await p.acquire()];
    const refused = p.acquire();
    expect(p.stats().pending).toBe(0); // refused without ever joining the queue
    await expect(refused).rejects.toThrow(PoolExhaustedError);
    await expect(refused).rejects.toThrow(/all 2 AMQP channels of pool "default" are in use \(exhaustion mode fail-fast/);
    await p.release(held[0]!);
    const again = await p.acquire(); // a free channel is handed out again
    expect(again).toBe(held[0]);
    await p.release(again);
    await p.release(held[1]!);
    await p.close();
  });

  it('queue: waits as long as it takes, in order, and gets the channel released first', async () => {
    const p = pool({ exhaustion: 'queue', acquireTimeoutMs: 1 }); // the timeout does not apply to queue
    const held = [await p.acquire(), await p.acquire()];
    const first = p.acquire();
    const second = p.acquire();
    expect(p.stats().pending).toBe(2);
    await new Promise((r) => setTimeout(r, 50)); // longer than acquireTimeoutMs: still waiting
    expect(p.stats().pending).toBe(2);
    await p.release(held[1]!);
    expect(await first).toBe(held[1]);
    await p.release(held[0]!);
    expect(await second).toBe(held[0]);
    await p.release(held[0]!);
    await p.release(held[1]!);
    await p.close();
  });

  it('never hands out a channel that a failed operation closed', async () => {
    const registry = new Registry();
    const p = pool({ size: 1, registry });
    const ch = await p.acquire();
    await expect(ch.checkQueue('does-not-exist')).rejects.toThrow(/404/);
    await p.release(ch); // released as if healthy: the pool must notice it is closed
    const next = await p.acquire();
    expect(next).not.toBe(ch);
    await expect(next.assertQueue('pool.works', { durable: false })).resolves.toMatchObject({ queue: 'pool.works' });
    await p.release(next);

    // use(): a failure destroys the channel, the next call gets a working one.
    await expect(p.use((c) => c.checkQueue('still-missing'))).rejects.toThrow(/404/);
    await expect(p.use((c) => c.checkQueue('pool.works'))).resolves.toMatchObject({ queue: 'pool.works' });
    const metrics = await registry.metrics();
    expect(metrics).toContain('rabbitbatch_amqp_channels_created_total{pool="default"} 3');
    expect(metrics).toContain('rabbitbatch_amqp_channels_destroyed_total{pool="default"} 2');
    await p.close();
  });

  it('opens confirm channels when asked: a publish is confirmed by the broker', async () => {
    const p = new ChannelPool<ConfirmChannel>({ connection, size: 1, confirm: true, name: 'publish' });
    await p.use(async (ch) => {
      await ch.assertQueue('confirmed', { durable: true });
      ch.sendToQueue('confirmed', Buffer.from('hello'), { persistent: true });
      await ch.waitForConfirms();
    });
    expect((await p.use((ch) => ch.checkQueue('confirmed'))).messageCount).toBe(1);
    await p.close();
  });

  it('recovers after the broker closes the connection: old channels are dropped, new ones work', async () => {
    const p = pool({ size: 2 });
    const before = await p.acquire();
    await before.assertQueue('before.loss', { durable: false });
    await p.release(before);
    let disconnects = 0;
    connection.on('disconnected', () => disconnects++);

    const mine = await eventually(async () => {
      const list = (await mgmt('/api/connections?columns=name,client_properties')).json as { name: string; client_properties: { connection_name?: string } }[];
      const found = list.filter((c) => c.client_properties.connection_name === connectionName);
      expect(found.length).toBeGreaterThan(0);
      return found;
    });
    for (const c of mine) expect((await mgmt(`/api/connections/${enc(c.name)}`, 'DELETE')).status).toBeLessThan(300);

    await eventually(async () => expect(disconnects).toBeGreaterThan(0));
    const after = await p.acquire(); // waits for the reconnect; the dead idle channel is not handed out
    expect(after).not.toBe(before);
    await expect(after.assertQueue('after.loss', { durable: false })).resolves.toMatchObject({ queue: 'after.loss' });
    await p.release(after);
    expect(connection.connected).toBe(true);
    await p.close();
  });
});
