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
  await untilUsable(vhost);
  try {
    return await fn(vhost);
  } finally {
    await deleteVhost(vhost);
  }
}

/**
 * A new vhost on a busy 3.10 broker can answer 400 to a queue declaration for a while (its message
 * stores still starting): wait until a probe queue declares, before any clock starts.
 */
async function untilUsable(vhost: string): Promise<void> {
  const probe = `/api/queues/${v(vhost)}/bench-probe`;
  for (let attempt = 1; ; attempt++) {
    try {
      await call(MGMT, 'PUT', probe, queueBody);
      await call(MGMT, 'DELETE', probe);
      return;
    } catch (err) {
      if (attempt >= 60) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * Deleting a vhost of 10,000 queues can outlast a busy broker's keep-alive, or the broker closes
 * the connection while it works: ask again (404: gone) for up to ~3 minutes, then name the vhost.
 */
async function deleteVhost(vhost: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call(MGMT, 'DELETE', `/api/vhosts/${v(vhost)}`);
      return;
    } catch (err) {
      if (/\b404\b/.test((err as Error).message)) return;
      if (attempt >= 12) throw new Error(`vhost ${vhost} left on the broker: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 15_000));
    }
  }
}

/** RabbitMQ may close an idle keep-alive socket just as a request goes out: PUT and DELETE are safe to send again. */
async function retryOnClosedSocket<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string }).code !== 'UND_ERR_SOCKET' && (err as { code?: string }).code !== 'ECONNRESET') throw err;
    return fn();
  }
}

async function call(base: string, method: 'PUT' | 'DELETE', path: string, body?: string): Promise<void> {
  const res = await retryOnClosedSocket(() => request(`${base}${path}`, { method, headers: { authorization: AUTH, 'content-type': 'application/json' }, ...(body ? { body } : {}) }));
  await res.body.dump();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode}`);
}

export const queueBody = JSON.stringify({ durable: true, auto_delete: false, arguments: {} });
export const queuePath = (vhost: string, name: string) => `/api/queues/${v(vhost)}/${v(name)}`;

/** One management request of a baseline: what a client that declares blindly sends. */
export interface HttpOp {
  method: 'PUT' | 'POST';
  path: string;
  body: string;
}

/** Durable queues without arguments, one PUT each. */
export const queueOps = (vhost: string, names: string[]): HttpOp[] => names.map((n) => ({ method: 'PUT', path: queuePath(vhost, n), body: queueBody }));

/**
 * The requests that declare `spec` blindly, in dependency order (exchanges, queues, bindings):
 * the same objects rabbitbatch's executor creates for that spec, one request per object.
 */
export function specOps(spec: { vhost: string; exchanges?: { name: string; type: string }[]; queues?: { name: string; arguments?: Record<string, unknown> }[]; bindings?: { source: string; destination: string; routingKey?: string }[] }): HttpOp[] {
  const vh = spec.vhost;
  return [
    ...(spec.exchanges ?? []).map((x): HttpOp => ({ method: 'PUT', path: `/api/exchanges/${v(vh)}/${v(x.name)}`, body: JSON.stringify({ type: x.type, durable: true, auto_delete: false, internal: false, arguments: {} }) })),
    ...(spec.queues ?? []).map((q): HttpOp => ({ method: 'PUT', path: queuePath(vh, q.name), body: JSON.stringify({ durable: true, auto_delete: false, arguments: q.arguments ?? {} }) })),
    ...(spec.bindings ?? []).map((b): HttpOp => ({ method: 'POST', path: `/api/bindings/${v(vh)}/e/${v(b.source)}/q/${v(b.destination)}`, body: JSON.stringify({ routing_key: b.routingKey ?? '', arguments: {} }) })),
  ];
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

const headers = { authorization: AUTH, 'content-type': 'application/json' };

async function send(pool: Pool, op: HttpOp): Promise<void> {
  const request = () => pool.request({ method: op.method, path: op.path, headers, body: op.body });
  const res = op.method === 'PUT' ? await retryOnClosedSocket(request) : await request();
  await res.body.dump();
  if (res.statusCode >= 300) throw new Error(`${op.method} ${op.path}: ${res.statusCode}`);
}

/** Opens `n` sockets before the timed part, as rabbitbatch's warm pool has them: both sides start warm. */
async function warmPool(pool: Pool, n: number): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await pool.request({ method: 'GET', path: '/api/overview?columns=rabbitmq_version', headers });
      await res.body.dump();
    }),
  );
}

/** (a) one request per object, one at a time, on a keep-alive connection opened before the clock starts. */
export async function sequentialOps(base: string, ops: HttpOp[]): Promise<number> {
  const pool = new Pool(base, { connections: 1 });
  try {
    await warmPool(pool, 1);
    return await timed(async () => {
      for (const op of ops) await send(pool, op);
    });
  } finally {
    await pool.close();
  }
}

export const sequentialPuts = (base: string, vhost: string, names: string[]) => sequentialOps(base, queueOps(vhost, names));

/** (b) the official operator's way: a fresh client per object, no keep-alive, blind request (cold by construction). */
export async function newConnectionOps(base: string, ops: HttpOp[]): Promise<number> {
  return timed(async () => {
    for (const op of ops) {
      const agent = new Agent({ keepAliveTimeout: 1, connections: 1 });
      const res = await request(`${base}${op.path}`, { method: op.method, dispatcher: agent, headers: { ...headers, connection: 'close' }, body: op.body });
      await res.body.dump();
      await agent.close();
      if (res.statusCode >= 300) throw new Error(`${op.method} ${op.path}: ${res.statusCode}`);
    }
  });
}

/** Sends `ops` with `concurrency` requests in flight on `pool`, each worker taking the next op. */
async function sendAll(pool: Pool, ops: HttpOp[], concurrency: number): Promise<void> {
  const queue = [...ops].reverse();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let op = queue.pop(); op !== undefined; op = queue.pop()) await send(pool, op);
    }),
  );
}

/** (c) raw parallel requests at a given concurrency over a keep-alive pool warmed to that many sockets. */
export async function parallelOps(base: string, ops: HttpOp[], concurrency: number): Promise<number> {
  const pool = new Pool(base, { connections: concurrency });
  try {
    await warmPool(pool, concurrency);
    return await timed(() => sendAll(pool, ops, concurrency));
  } finally {
    await pool.close();
  }
}

/**
 * The fastest a client can go here: the requests sent blindly (no read, no check after), each
 * dependency level all at once (exchanges and queues, then bindings), over `concurrency`
 * keep-alive sockets opened before the clock starts.
 */
export async function levelledOps(base: string, ops: HttpOp[], concurrency: number): Promise<number> {
  const pool = new Pool(base, { connections: concurrency });
  const levels = [ops.filter((o) => o.method === 'PUT'), ops.filter((o) => o.method === 'POST')];
  try {
    await warmPool(pool, concurrency);
    return await timed(async () => {
      for (const level of levels) await sendAll(pool, level, concurrency);
    });
  } finally {
    await pool.close();
  }
}

export const parallelPuts = (base: string, vhost: string, names: string[], concurrency: number) => parallelOps(base, queueOps(vhost, names), concurrency);

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

/**
 * The restart baseline: re-declaring every queue blindly, one PUT each, as the official operator
 * does when it starts (it never reads RabbitMQ back). Sent over a warm keep-alive pool at
 * `concurrency` in flight, which is faster than that operator's new connection per request:
 * the ratio against it is a lower bound.
 */
export async function blindRedeclare(vhost: string, names: string[], concurrency = 25): Promise<{ seconds: number; requests: number; concurrency: number }> {
  const ops = queueOps(vhost, names);
  return { seconds: await parallelOps(MGMT, ops, concurrency), requests: ops.length, concurrency };
}
