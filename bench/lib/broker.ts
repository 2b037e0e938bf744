/**
 * Shared benchmark plumbing against the real broker: fresh vhosts, and the baselines every
 * figure is compared with (measured in the same run, on the same machine).
 */
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { Agent, Pool, request } from 'undici';

export const MGMT = process.env.RABBITMQ_URL ?? 'http://127.0.0.1:15672';
export const AUTH = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
const v = encodeURIComponent;

export async function withVhost<T>(prefix: string, fn: (vhost: string) => Promise<T>): Promise<T> {
  const vhost = `bench-${prefix}-${randomBytes(3).toString('hex')}`;
  await call(MGMT, 'PUT', `/api/vhosts/${v(vhost)}`, '{}');
  await call(MGMT, 'PUT', `/api/permissions/${v(vhost)}/guest`, JSON.stringify({ configure: '.*', write: '.*', read: '.*' }));
  try {
    return await fn(vhost);
  } finally {
    await call(MGMT, 'DELETE', `/api/vhosts/${v(vhost)}`);
  }
}

async function call(base: string, method: 'PUT' | 'DELETE', path: string, body?: string): Promise<void> {
  const res = await request(`${base}${path}`, { method, headers: { authorization: AUTH, 'content-type': 'application/json' }, ...(body ? { body } : {}) });
  await res.body.dump();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode}`);
}

export const queueBody = JSON.stringify({ durable: true, auto_delete: false, arguments: {} });
export const queuePath = (vhost: string, name: string) => `/api/queues/${v(vhost)}/${v(name)}`;

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

/** (a) one PUT per object, one at a time, on a keep-alive connection. */
export async function sequentialPuts(base: string, vhost: string, names: string[]): Promise<number> {
  const pool = new Pool(base, { connections: 1 });
  try {
    return await timed(async () => {
      for (const n of names) {
        const res = await pool.request({ method: 'PUT', path: queuePath(vhost, n), headers: { authorization: AUTH, 'content-type': 'application/json' }, body: queueBody });
        await res.body.dump();
      }
    });
  } finally {
    await pool.close();
  }
}

/** (b) the official operator's way: a fresh client per object, no keep-alive, blind PUT. */
export async function newConnectionPuts(base: string, vhost: string, names: string[]): Promise<number> {
  return timed(async () => {
    for (const n of names) {
      const agent = new Agent({ keepAliveTimeout: 1, connections: 1 });
      const res = await request(`${base}${queuePath(vhost, n)}`, { method: 'PUT', dispatcher: agent, headers: { authorization: AUTH, 'content-type': 'application/json', connection: 'close' }, body: queueBody });
      await res.body.dump();
      await agent.close();
    }
  });
}

/** (c) raw parallel PUTs at a given concurrency over a keep-alive pool. */
export async function parallelPuts(base: string, vhost: string, names: string[], concurrency: number): Promise<number> {
  const pool = new Pool(base, { connections: concurrency });
  const queue = [...names];
  try {
    return await timed(() =>
      Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let n = queue.pop(); n !== undefined; n = queue.pop()) {
            const res = await pool.request({ method: 'PUT', path: queuePath(vhost, n), headers: { authorization: AUTH, 'content-type': 'application/json' }, body: queueBody });
            await res.body.dump();
          }
        }),
      ),
    );
  } finally {
    await pool.close();
  }
}

/** (c) AMQP `assertQueue` on `channels` channels of one connection. */
export async function amqpDeclares(vhost: string, names: string[], channels = 10): Promise<number> {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${v(vhost)}`);
  try {
    const chans = await Promise.all(Array.from({ length: channels }, () => conn.createChannel()));
    const queue = [...names];
    return await timed(() =>
      Promise.all(
        chans.map(async (ch) => {
          for (let n = queue.pop(); n !== undefined; n = queue.pop()) await ch.assertQueue(n, { durable: true });
        }),
      ),
    );
  } finally {
    await conn.close();
  }
}

/**
 * The broker's own rate for durable queue declarations on this machine: the best of parallel
 * PUTs at each concurrency and AMQP `assertQueue` on 10 channels, `n` queues each, in fresh vhosts.
 */
export async function declareCap(n: number, concurrencies = [10, 25, 50]): Promise<{ perSecond: number; how: string; sweep: Record<string, number> }> {
  const names = Array.from({ length: n }, (_, i) => `cap${i}`);
  const sweep: Record<string, number> = {};
  for (const c of concurrencies) sweep[`http x${c}`] = n / (await withVhost(`cap${c}`, (vh) => parallelPuts(MGMT, vh, names, c)));
  sweep['amqp x10 channels'] = n / (await withVhost('capamqp', (vh) => amqpDeclares(vh, names, 10)));
  const [how, perSecond] = Object.entries(sweep).sort((a, b) => b[1] - a[1])[0]!;
  return { perSecond, how, sweep };
}
