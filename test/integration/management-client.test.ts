/**
 * The pooled management client against the real broker: round trips and their mapping, RabbitMQ's
 * own errors, socket reuse, the 1,000-requests-per-connection close, and the circuit breaker.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTestVhost, rabbitUrl, mgmt as supportMgmt, publish as publishBodies } from '../support/rabbit.js';
import { eventually as poll } from '../support/wait.js';
import { bindingSchema, exchangeSchema, queueSchema } from '../../src/api/schema.js';
import { BrokerUnavailableError, ManagementError } from '../../src/model/errors.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';

const MGMT = rabbitUrl();
const enc = encodeURIComponent;
// Shared helpers (test/support), in the shapes this file uses.
const mgmt = (path: string, method = 'GET', body?: unknown) => supportMgmt(path, { method, body });
const createVhost = async (prefix: string) => (await createTestVhost(prefix)).name;
const eventually = <T>(fn: () => Promise<T>, timeoutMs = 20_000) => poll(fn, { timeoutMs, intervalMs: 200 });
const publish = (vhost: string, queue: string, count: number) => publishBodies(vhost, queue, Array.from({ length: count }, (_, i) => `m${i}`));

// ---- Tests ----

let vhost: string;
const registry = new Registry();
const api = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 5, registry });

beforeAll(async () => {
  vhost = await createVhost('mgmt');
});
afterAll(async () => {
  await api.close();
  await mgmt(`/api/vhosts/${enc(vhost)}`, 'DELETE');
});

describe('ManagementClient', () => {
  it('answers the overview with the broker version', async () => {
    expect((await api.overview()).rabbitmqVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('round-trips exchanges, queues with arguments and bindings, mapped to observed types', async () => {
    await api.putExchange(vhost, exchangeSchema.parse({ name: 'orders', type: 'topic', arguments: { 'alternate-exchange': 'unrouted' } }));
    await api.putExchange(vhost, exchangeSchema.parse({ name: 'internal.x', type: 'fanout', durable: false, autoDelete: true, internal: true }));
    await api.putQueue(vhost, queueSchema.parse({ name: 'orders.q', arguments: { 'x-message-ttl': 60_000, 'x-max-length': 10 } }));
    await api.putQueue(vhost, queueSchema.parse({ name: 'orders.quorum', type: 'quorum', arguments: { 'x-delivery-limit': 5 } }));
    const key = await api.postBinding(vhost, bindingSchema.parse({ source: 'orders', destination: 'orders.q', routingKey: 'eu.#', arguments: { region: 'eu' } }));
    await api.postBinding(vhost, bindingSchema.parse({ source: 'orders', destination: 'internal.x', destinationType: 'exchange', routingKey: 'all' }));

    const exchanges = await api.listExchanges(vhost);
    expect(exchanges.find((e) => e.name === 'orders')).toEqual({ name: 'orders', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: { 'alternate-exchange': 'unrouted' } });
    expect(exchanges.find((e) => e.name === 'internal.x')).toEqual({ name: 'internal.x', type: 'fanout', durable: false, autoDelete: true, internal: true, arguments: {} });
    expect(exchanges.some((e) => e.name === '')).toBe(false);
    expect(await api.getExchange(vhost, 'orders')).toEqual(exchanges.find((e) => e.name === 'orders'));

    const queues = await api.listQueues(vhost);
    expect(queues.find((q) => q.name === 'orders.q')).toEqual({ name: 'orders.q', type: 'classic', durable: true, autoDelete: false, arguments: { 'x-message-ttl': 60_000, 'x-max-length': 10 } });
    expect(queues.find((q) => q.name === 'orders.quorum')).toEqual({ name: 'orders.quorum', type: 'quorum', durable: true, autoDelete: false, arguments: { 'x-delivery-limit': 5, 'x-queue-type': 'quorum' } });

    const bindings = await api.listBindings(vhost);
    expect(bindings).toHaveLength(2); // default-exchange bindings are left out
    expect(bindings).toContainEqual({ source: 'orders', destination: 'orders.q', destinationType: 'queue', routingKey: 'eu.#', arguments: { region: 'eu' }, propertiesKey: key });
    expect(bindings).toContainEqual(expect.objectContaining({ source: 'orders', destination: 'internal.x', destinationType: 'exchange', routingKey: 'all' }));

    expect(await api.deleteBinding(vhost, { source: 'orders', destination: 'orders.q', destinationType: 'queue', propertiesKey: key })).toBe(true);
    expect((await api.listBindings(vhost)).map((b) => b.destination)).toEqual(['internal.x']);
    expect(await api.deleteBinding(vhost, { source: 'orders', destination: 'orders.q', destinationType: 'queue', propertiesKey: key })).toBe(false);
    expect(await api.deleteExchange(vhost, 'internal.x')).toBe(true);
    expect(await api.getExchange(vhost, 'internal.x')).toBeUndefined();
  });

  it('works in the default vhost "/" (sent as %2F)', async () => {
    const name = `rabbitbatch-test-${randomBytes(3).toString('hex')}`;
    await api.putQueue('/', queueSchema.parse({ name, durable: false, autoDelete: true }));
    try {
      expect(await api.getQueue('/', name)).toMatchObject({ name, durable: false, autoDelete: true });
    } finally {
      expect(await api.deleteQueue('/', name)).toBe(true);
    }
  });

  it("surfaces RabbitMQ's own reason for an inequivalent re-declare, without credentials", async () => {
    await api.putQueue(vhost, queueSchema.parse({ name: 'eq', arguments: { 'x-message-ttl': 1000 } }));
    await api.putQueue(vhost, queueSchema.parse({ name: 'eq', arguments: { 'x-message-ttl': 1000 } })); // identical: fine
    const err = await api.putQueue(vhost, queueSchema.parse({ name: 'eq', arguments: { 'x-message-ttl': 2000 } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManagementError);
    expect(err).toMatchObject({ status: 400, method: 'PUT', path: `/api/queues/${enc(vhost)}/eq` });
    expect((err as ManagementError).reason).toContain("inequivalent arg 'x-message-ttl'");
    expect((err as Error).message).not.toMatch(/guest|Basic /);
    expect(api.endpoint).toBe(MGMT);
    expect((await api.getQueue(vhost, 'eq'))?.arguments).toEqual({ 'x-message-ttl': 1000 });
  });

  it('reads message counts, refuses to delete a queue that holds messages, and treats 404 as gone', async () => {
    await api.putQueue(vhost, queueSchema.parse({ name: 'full' }));
    const fresh = await api.getQueue(vhost, 'full');
    expect(fresh?.consumers).toBe(0);
    expect(fresh?.messages).toBeTypeOf('number'); // 0 even before the first stats emission
    await publish(vhost, 'full', 2);
    await eventually(async () => expect((await api.getQueue(vhost, 'full'))?.messages).toBe(2));

    const refused = await api.deleteQueue(vhost, 'full', { ifEmpty: true }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ManagementError);
    expect(refused).toMatchObject({ status: 400 });
    expect(await api.getQueue(vhost, 'full')).toMatchObject({ name: 'full', messages: 2 });

    expect(await api.deleteQueue(vhost, 'never-existed')).toBe(false);
    expect(await api.getQueue(vhost, 'never-existed')).toBeUndefined();
    expect(await api.deleteQueue(vhost, 'full')).toBe(true);
    expect(await api.getQueue(vhost, 'full')).toBeUndefined();
  });

  it('reuses keep-alive sockets: 300 requests, 5 at a time, on the 5 warm sockets', async () => {
    const client = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 5, warm: false });
    try {
      await client.warm();
      expect(client.poolStats()).toMatchObject({ socketsCreated: 5, size: 5 });
      for (let i = 0; i < 60; i++) await Promise.all(Array.from({ length: 5 }, () => client.listQueues(vhost)));
      const stats = client.poolStats();
      expect(stats.requests).toBe(305);
      expect(stats.socketsCreated).toBe(5); // only the warm ones: nothing opened beyond the minimum
      expect(stats.reuseRatio).toBeGreaterThan(0.9);
      expect(stats.max).toBe(50);
    } finally {
      await client.close();
    }
  });

  it('keeps the minimum warm past the idle timeout', async () => {
    const client = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 3, idleTimeoutMs: 1_000, warm: false });
    try {
      await client.warm();
      // Three idle timeouts pass with no traffic of ours: the pool's own touches keep the sockets.
      await new Promise((r) => setTimeout(r, 3_500));
      const stats = client.poolStats();
      expect(stats.size).toBe(3);
      expect(stats.socketsCreated).toBe(3);
      expect(stats.requests).toBeGreaterThan(3); // the touches
    } finally {
      await client.close();
    }
  });

  it('survives RabbitMQ closing a keep-alive connection after 1,000 requests', async () => {
    // One socket, so it reaches RabbitMQ's limit of 1,000 requests per connection.
    const single = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 1, maxSize: 1, warm: false });
    try {
      // GET /api/vhosts/%2F: the cheapest call (an overview costs the broker ~10x more, and the
      // 1,100 of them outlasted the test's time on a loaded machine).
      for (let i = 0; i < 1100; i++) await single.vhostExists('/');
      const stats = single.poolStats();
      expect(stats.requests).toBe(1100);
      expect(stats.socketsCreated).toBe(2); // one per 1,000 requests
      expect(stats.reuseRatio).toBeGreaterThan(0.99);
    } finally {
      await single.close();
    }
  }, 240_000);

  it('counts requests and sockets in the registry it was given', async () => {
    const text = await registry.metrics();
    expect(text).toContain(`rabbitbatch_http_requests_total{endpoint="${MGMT}",method="PUT",code="400",purpose="work"} 1`);
    expect(text).toMatch(new RegExp(`rabbitbatch_http_requests_total\\{endpoint="${MGMT}",method="GET",code="200",purpose="work"\\} \\d+`));
    expect(text).toMatch(new RegExp(`rabbitbatch_http_pool_connections_created_total\\{endpoint="${MGMT}"\\} [1-9]`));
    expect(text).toContain(`rabbitbatch_http_pool_connections{endpoint="${MGMT}",state="idle"}`);
  });

  it('counts keep-warm requests as purpose="keepalive", apart from the work callers asked for', async () => {
    const own = new Registry();
    const client = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: 3, warm: false, registry: own });
    const series = async (purpose: string) => {
      const line = (await own.metrics()).split('\n').find((l) => l.startsWith(`rabbitbatch_http_requests_total{endpoint="${MGMT}",method="GET",code="200",purpose="${purpose}"}`));
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    try {
      await client.warm();
      expect(await series('keepalive')).toBe(3);
      expect(await series('work')).toBe(0);
      await client.overview();
      expect(await series('work')).toBe(1);
      expect(await series('keepalive')).toBe(3);
    } finally {
      await client.close();
    }
  });

  it('opens its circuit breaker when the broker is unreachable, and fails fast while open', async () => {
    const breakerRegistry = new Registry();
    const dead = new ManagementClient({ url: 'http://127.0.0.1:1', username: 'u', password: 'p', warm: false, registry: breakerRegistry, resilience: { retries: 0, halfOpenAfterMs: 60_000 } });
    try {
      for (let i = 0; i < 5; i++) await expect(dead.vhostExists('/')).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect(dead.breakerState).toBe('1'); // cockatiel's CircuitState.Open
      await expect(dead.vhostExists('/')).rejects.toThrow(/circuit open/);
      // ...and still says what went wrong.
      await expect(dead.vhostExists('/')).rejects.toThrow(/last error: GET http:\/\/127.0.0.1:1\/api\/vhosts: connection refused/);
      expect(await breakerRegistry.getSingleMetricAsString('rabbitbatch_circuit_breaker_state')).toContain('endpoint="http://127.0.0.1:1"} 1');
      expect(await breakerRegistry.getSingleMetricAsString('rabbitbatch_http_requests_total')).toContain('method="GET",code="error",purpose="work"} 5');
    } finally {
      await dead.close();
    }
  });
});
