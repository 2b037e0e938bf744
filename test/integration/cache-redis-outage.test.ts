/**
 * Redis stopped in the middle of a run and started again: a Redis of this test's own (the
 * machine's is shared), used with `CACHE_BACKEND=redis` by an operator and by two cache replicas.
 * While it is down, reads are served from L1 (no request to RabbitMQ) and batches keep
 * reconciling; once it is back, invalidations travel between replicas again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueSchema } from '../../src/api/schema.js';
import { CachedObservedState } from '../../src/cache/observed-cache.js';
import { RedisSharedCache } from '../../src/cache/redis-shared-cache.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { createTestNamespace } from '../support/kube.js';
import { batchClient, condition, startTestOperator, type TestOperator } from '../support/operator.js';
import { createTestVhost, getQueue, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const log = pino({ enabled: false });
let port: number;
let server: ChildProcess | undefined;
let vh: { name: string; cleanup: () => Promise<void> };
let ns: { name: string; cleanup: () => Promise<void> };
let operator: TestOperator | undefined;
const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest', minSize: 1 });
const shared: RedisSharedCache[] = [];

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

async function startRedis(): Promise<void> {
  server = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await eventually(
    () =>
      new Promise<void>((resolve, reject) => {
        const probe = createServer();
        probe.once('error', () => resolve()); // the port is taken: Redis listens
        probe.listen(port, '127.0.0.1', () => probe.close(() => reject(new Error('redis-server not listening yet'))));
      }),
    { timeoutMs: 10_000, intervalMs: 100 },
  );
}

async function stopRedis(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s || s.exitCode !== null) return;
  const exited = new Promise((r) => s.once('exit', r));
  s.kill('SIGKILL');
  await exited;
}

function replica() {
  const s = new RedisSharedCache({ url: `redis://127.0.0.1:${port}`, log });
  s.start();
  shared.push(s);
  return { shared: s, cache: new CachedObservedState({ shared: s }) };
}

beforeAll(async () => {
  port = await freePort();
  await startRedis();
  vh = await createTestVhost('redisdown');
  ns = await createTestNamespace('redisdown');
});

afterAll(async () => {
  await operator?.stop();
  await Promise.all(shared.map((s) => s.close()));
  await api.close();
  await stopRedis();
  await ns?.cleanup();
  await vh?.cleanup();
});

describe('Redis stopped mid-run', () => {
  it('serves reads from L1 and keeps reconciling while Redis is down; invalidations resume when it is back', async () => {
    operator = await startTestOperator(
      ns.name,
      { CACHE_BACKEND: 'redis', REDIS_URL: `redis://127.0.0.1:${port}` },
      { inProcess: 'the test stops and starts its own Redis on a loopback port, which a Pod cannot reach' },
    );
    const batches = batchClient(ns.name);
    await batches.create('before', { vhost: vh.name, queues: [{ name: 'rd.before' }] });
    await batches.waitFor('before', (b) => condition(b, 'Ready')?.status === 'True');
    const a = replica();
    const b = replica();
    await eventually(() => expect(a.shared.connected && b.shared.connected).toBe(true));
    await a.cache.observe(api, vh.name);
    await b.cache.observe(api, vh.name);

    await stopRedis();
    await eventually(() => expect(a.shared.connected || b.shared.connected).toBe(false));
    // Reads from L1: not one request to RabbitMQ.
    const requests = api.poolStats().requests;
    for (let i = 0; i < 20; i++) expect((await b.cache.observe(api, vh.name)).exists).toBe(true);
    expect(api.poolStats().requests - requests).toBe(0);
    // The operator keeps reconciling on its L1 cache.
    await batches.create('during', { vhost: vh.name, queues: [{ name: 'rd.during' }] });
    await batches.waitFor('during', (x) => condition(x, 'Ready')?.status === 'True', 60_000);
    expect(await getQueue(vh.name, 'rd.during')).toBeDefined();

    await startRedis();
    await eventually(() => expect(a.shared.connected && b.shared.connected).toBe(true), { timeoutMs: 20_000 });
    await b.cache.observe(api, vh.name); // b's L1 again holds a listing without the new queue
    await api.putQueue(vh.name, queueSchema.parse({ name: 'rd.after' }));
    const before = b.cache.stats().invalidations.redis;
    a.cache.invalidate(api, vh.name);
    await eventually(async () => expect((await b.cache.observe(api, vh.name)).queues.has('rd.after')).toBe(true));
    expect(b.cache.stats().invalidations.redis).toBeGreaterThan(before);
  }, 120_000);
});
