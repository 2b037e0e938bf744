/**
 * `rabbitbatch export` as a user runs it (a child process) against the real broker: a vhost with
 * the usual mix of objects, clients' objects included, exported and planned again against the
 * same broker (zero writes), with a user that may only read, and with bad input.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { validateSpec } from '../../src/api/validate.js';
import { planBatch } from '../../src/batch/plan.js';
import { ManagementClient } from '../../src/rabbit/management-client.js';
import { observeVhost } from '../../src/rabbit/observe.js';
import { createTestVhost, mgmt, rabbitUrl } from '../support/rabbit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-export-'));
const v = encodeURIComponent;
let vh: { name: string; cleanup: () => Promise<void> };
let client: amqp.ChannelModel;

function cli(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'export', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RABBITMQ_URL: rabbitUrl(), RABBITMQ_USERNAME: 'guest', RABBITMQ_PASSWORD: 'guest', ...env },
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

async function put(path: string, body: unknown): Promise<void> {
  const res = await mgmt(path, { method: path.includes('/bindings/') ? 'POST' : 'PUT', body });
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.json)}`);
}

beforeAll(async () => {
  vh = await createTestVhost('export');
  const V = v(vh.name);
  await put(`/api/exchanges/${V}/orders`, { type: 'topic', durable: true });
  await put(`/api/exchanges/${V}/orders.dlx`, { type: 'fanout', durable: true, arguments: { 'alternate-exchange': 'amq.fanout' } });
  await put(`/api/exchanges/${V}/billing.headers`, { type: 'headers', durable: true, internal: true });
  await put(`/api/queues/${V}/orders.created`, { durable: true, arguments: { 'x-message-ttl': 60000, 'x-dead-letter-exchange': 'orders.dlx' } });
  await put(`/api/queues/${V}/orders.audit`, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5 } });
  await put(`/api/queues/${V}/billing.events`, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  await put(`/api/queues/${V}/scratch`, { durable: false, auto_delete: false });
  await put(`/api/bindings/${V}/e/orders/q/orders.created`, { routing_key: 'created.#' });
  await put(`/api/bindings/${V}/e/orders/q/orders.audit`, { routing_key: '#' });
  await put(`/api/bindings/${V}/e/orders/e/billing.headers`, { routing_key: 'paid' });
  await put(`/api/bindings/${V}/e/billing.headers/q/billing.events`, { routing_key: '', arguments: { 'x-match': 'all', kind: 'invoice' } });
  await put(`/api/bindings/${V}/e/amq.topic/q/scratch`, { routing_key: 'debug.#' });
  await put(`/api/policies/${V}/nothing-ttl`, { pattern: '^nothing$', definition: { 'message-ttl': 1000 }, 'apply-to': 'queues' });
  // Enough queues with one prefix to need two batches.
  for (let i = 0; i < 1100; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => put(`/api/queues/${V}/bulk.${String(i + j).padStart(4, '0')}`, { durable: true })));
  }
  // A client's objects: a server-named exclusive queue and a named exclusive one, bound.
  client = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${V}`);
  const ch = await client.createChannel();
  const reply = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(reply.queue, 'orders', 'replies');
  await ch.assertQueue('session.reply', { exclusive: true });
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await vh?.cleanup();
});

describe('rabbitbatch export from a live broker', () => {
  it('exports a vhost in groups within the limits, leaves the clients\' objects out, and the batches plan zero writes against the same broker', async () => {
    const out = join(dir, 'live');
    const res = cli(['--vhost', vh.name, '--out-dir', out]);
    expect(res.code, res.err).toBe(0);
    expect(res.err).toContain('3 exchanges, 1104 queues, 5 bindings, 0 policies exported in 5 batches');
    expect(res.err).toContain('; 10 skipped:');
    expect(res.err).toContain(`the RabbitQueueBatch API holds no policies`);
    expect(res.err).toContain(`policy/${vh.name}/nothing-ttl`);
    expect(res.err).toMatch(/server-named amq\.\* queue of a client: queue\/[^/]+\/amq\.gen-/);
    expect(res.err).toContain(`exclusive: it belongs to one client connection: queue/${vh.name}/session.reply`);
    expect(res.err).toMatch(/its queue amq\.gen-\S+ is not exported/);
    const files = readdirSync(out).sort();
    const base = vh.name.toLowerCase();
    expect(files).toEqual([`${base}-billing.yaml`, `${base}-bulk-2.yaml`, `${base}-bulk.yaml`, `${base}-orders.yaml`, `${base}-scratch.yaml`]);

    const api = new ManagementClient({ url: rabbitUrl(), username: 'guest', password: 'guest', minSize: 1, maxSize: 2, warm: false });
    try {
      const observed = await observeVhost(api, vh.name);
      for (const f of files) {
        const manifest = parse(readFileSync(join(out, f), 'utf8')) as { spec: unknown };
        const valid = validateSpec(manifest.spec);
        if (!valid.ok) throw new Error(`${f}: ${JSON.stringify(valid.errors)}`);
        const plan = planBatch({ spec: { ...valid.spec, adopt: 'Never' }, observed });
        expect(plan.phases, `${f} plans writes`).toEqual([]);
        expect(plan.items.filter((i) => i.decision !== 'unchanged'), f).toEqual([]);
      }
    } finally {
      await api.close();
    }
    // The same through the CLI, as the README tells a person to check.
    const dry = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'apply', '-f', join(out, `${base}-bulk.yaml`), '--dry-run', '--max-batch', '1000', '-o', 'json'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RABBITMQ_URL: rabbitUrl() } });
    expect(dry.status, dry.stderr).toBe(0);
    const rows = JSON.parse(dry.stdout) as { status: string }[];
    expect(rows.length).toBeGreaterThan(900);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(['unchanged']));
  });

  it('needs only read permissions: a monitoring user exports the same manifests', async () => {
    const user = `t-export-reader-${Date.now()}`;
    await put(`/api/users/${v(user)}`, { password: 'reader-pw', tags: 'monitoring' });
    try {
      await put(`/api/permissions/${v(vh.name)}/${v(user)}`, { configure: '^$', write: '^$', read: '.*' });
      const asReader = cli(['--vhost', vh.name, '--username', user], { RABBITMQ_PASSWORD: 'reader-pw' });
      expect(asReader.code, asReader.err).toBe(0);
      expect(asReader.err).toContain('1104 queues');
      const asAdmin = cli(['--vhost', vh.name]);
      expect(asReader.out).toBe(asAdmin.out);
      expect(asReader.out.length).toBeGreaterThan(1000);
    } finally {
      await mgmt(`/api/users/${v(user)}`, { method: 'DELETE' });
    }
  });

  it('reads a definitions file of that broker to the same manifests', async () => {
    const defs = await mgmt('/api/definitions');
    const path = join(dir, 'defs.json');
    writeFileSync(path, JSON.stringify(defs.json));
    const fromFile = cli(['--from-definitions', path, '--vhost', vh.name]);
    expect(fromFile.code, fromFile.err).toBe(0);
    expect(fromFile.out).toBe(cli(['--vhost', vh.name]).out);
  });

  it('refuses a vhost that does not exist, a file that is not definitions, and operator resources with an unknown field, writing nothing', () => {
    const out = join(dir, 'never');
    const missing = cli(['--vhost', 'no-such-vhost', '--out-dir', out]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('vhost "no-such-vhost" does not exist');
    const notDefs = join(dir, 'not-defs.json');
    writeFileSync(notDefs, JSON.stringify([{ name: 'q' }]));
    const bad = cli(['--from-definitions', notDefs, '--out-dir', out]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`${notDefs} is not a RabbitMQ definitions file`);
    const mto = join(dir, 'mto.yaml');
    writeFileSync(mto, 'apiVersion: rabbitmq.com/v1beta1\nkind: Queue\nmetadata: {name: q1, namespace: shop}\nspec: {name: q1, rabbitmqClusterReference: {name: r}, durabel: true}\n');
    const typo = cli(['--from-mto', mto, '--out-dir', out]);
    expect(typo.code).toBe(1);
    expect(typo.err).toContain(`${mto}: Queue shop/q1: unknown field spec.durabel`);
    for (const r of [missing, bad, typo]) expect(r.out).toBe('');
    expect(existsSync(out)).toBe(false);
  });
});
