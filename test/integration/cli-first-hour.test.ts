/**
 * The CLI as a new user meets it, as a child process against the real broker: failures exit
 * with the documented code and say the real cause; dry runs exit as the real run would; the
 * audit entry agrees with the exit code; a manifest the operator accepts is accepted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestVhost, getQueue, listQueueNames, mgmt, publish, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-first-hour-'));
let vh: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  vh = await createTestVhost('cli-first');
});
afterAll(() => vh.cleanup());

/** Runs the CLI; a process that does not exit on its own within 60 s is killed and fails the test (status null). */
function cli(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, RABBITMQ_URL: rabbitUrl(), RABBITMQ_PASSWORD: 'guest', ...env },
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const lines = file('lines.jsonl', `${JSON.stringify({ body: 'a' })}\n${JSON.stringify({ body: 'b' })}\n`);

describe('rabbitbatch publish when AMQP fails', () => {
  it('a refused port: exits 2 by itself, saying "connection refused"', () => {
    const res = cli(['publish', '--file', lines, '--routing-key', 'q', '--amqp-url', 'amqp://127.0.0.1:5999']);
    expect(res.code, res.err).toBe(2);
    expect(res.err).toContain('cannot connect to amqp://127.0.0.1:5999: connection refused');
  });

  it('a wrong password: exits 2 by itself, saying the credentials were refused', () => {
    const res = cli(['publish', '--file', lines, '--routing-key', 'q', '--amqp-url', 'amqp://guest:wrong@127.0.0.1:5672']);
    expect(res.code, res.err).toBe(2);
    expect(res.err).toContain('access refused: RabbitMQ did not accept the username and password');
    expect(res.err).not.toContain('wrong');
  });

  it('an unknown host: exits 2, saying the DNS lookup failed', () => {
    const res = cli(['publish', '--file', lines, '--routing-key', 'q', '--amqp-url', 'amqp://guest:guest@no-such-host.invalid:5672']);
    expect(res.code, res.err).toBe(2);
    expect(res.err).toContain('host not found (DNS lookup failed)');
  });
});

describe('rabbitbatch publish reports', () => {
  it('a missing exchange as missing, and a returned message as failed only (not also confirmed)', async () => {
    const missing = cli(['publish', '--file', lines, '--vhost', vh.name, '--exchange', 'no.such.exchange', '--routing-key', 'k']);
    expect(missing.code).toBe(3);
    expect(missing.err).toContain('the exchange "no.such.exchange" does not exist');
    const returned = cli(['publish', '--file', lines, '--vhost', vh.name, '--exchange', 'amq.direct', '--routing-key', 'nobody.listens']);
    expect(returned.code).toBe(3);
    expect(returned.err).toContain('confirmed 0, failed 2');
    expect(returned.err).toContain('returned: NO_ROUTE');
  });

  it('no routing key for the default exchange is a usage error (exit 1), not an unroutable message', () => {
    const res = cli(['publish', '--file', lines, '--vhost', vh.name]);
    expect(res.code).toBe(1);
    expect(res.err).toContain('--routing-key is not given');
    expect(cli(['publish', '--file', lines, '--vhost', vh.name, '--raw']).code).toBe(1);
  });
});

describe('rabbitbatch apply and the list commands', () => {
  it('an unreachable management API: the cause, not "circuit open ... retrying"', () => {
    for (const [url, cause] of [
      ['http://127.0.0.1:15999', 'connection refused'],
      ['http://no-such-host.invalid:15672', 'host not found (DNS lookup failed)'],
    ] as const) {
      const res = cli(['apply', '-f', 'examples/cli/batch.yaml', '--vhost', vh.name], { RABBITMQ_URL: url });
      expect(res.code, res.err).toBe(2);
      expect(res.err).toContain(cause);
      expect(res.err).not.toMatch(/circuit open|retrying/);
    }
  });

  it('apply of a manifest with 150 items uses the manifest limit, not --max-batch 100; the list commands keep 100', async () => {
    const queues = Array.from({ length: 150 }, (_, i) => `    - name: big.${i}`).join('\n');
    const manifest = file('big.yaml', `apiVersion: rabbitbatch.io/v1alpha1\nkind: RabbitQueueBatch\nmetadata:\n  name: big\nspec:\n  vhost: ${vh.name}\n  queues:\n${queues}\n`);
    const res = cli(['apply', '-f', manifest, '--audit-log', join(dir, 'audit.log')]);
    expect(res.code, res.err).toBe(0);
    expect((await listQueueNames(vh.name)).filter((n) => n.startsWith('big.'))).toHaveLength(150);
    const list = file('big-list.json', JSON.stringify(Array.from({ length: 150 }, (_, i) => ({ name: `list.${i}` }))));
    const refused = cli(['queue', 'create', '--file', list, '--vhost', vh.name]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('more than --max-batch 100');
  });

  it('--dry-run exits as the real run would when the plan has a conflict; the message names the CLI flag', async () => {
    await mgmt(`/api/queues/${encodeURIComponent(vh.name)}/dry.q`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: { 'x-message-ttl': 1000 } } });
    const spec = file('dry.yaml', `vhost: ${vh.name}\nqueues:\n  - name: dry.q\n    arguments: {x-message-ttl: 2000}\n`);
    const aon = cli(['apply', '-f', spec, '--dry-run']);
    expect(aon.code).toBe(4);
    expect(aon.out).toContain('pass --on-conflict RecreateIfEmpty');
    expect(aon.out).not.toContain('spec.onConflict');
    expect(cli(['apply', '-f', spec, '--dry-run', '--mode', 'best-effort']).code).toBe(3);
    const real = cli(['apply', '-f', spec, '--mode', 'best-effort', '--audit-log', join(dir, 'audit.log')]);
    expect(real.code).toBe(3);
    // The flag it names works.
    expect(cli(['apply', '-f', spec, '--on-conflict', 'RecreateIfEmpty', '--audit-log', join(dir, 'audit.log')]).code).toBe(0);
    expect((await getQueue(vh.name, 'dry.q'))?.arguments).toEqual({ 'x-message-ttl': 2000 });
  });

  it('queue delete keeping a busy queue exits 3 and its audit entry does not say Succeeded', async () => {
    const list = file('busy.json', JSON.stringify([{ name: 'busy.keep' }]));
    expect(cli(['queue', 'create', '--file', list, '--vhost', vh.name]).code).toBe(0);
    await publish(vh.name, 'busy.keep', ['hold']);
    await eventually(async () => expect((await getQueue(vh.name, 'busy.keep'))?.messages).toBe(1));
    const audit = join(dir, 'delete-audit.log');
    const res = cli(['queue', 'delete', '--file', list, '--vhost', vh.name, '--audit-log', audit]);
    expect(res.code).toBe(3);
    const entry = JSON.parse(readFileSync(audit, 'utf8').trim().split('\n').pop()!) as { audit: { result: string; retained?: number } };
    expect(entry.audit.result).toBe('PartiallySucceeded');
    expect(entry.audit.retained).toBe(1);
    expect(await getQueue(vh.name, 'busy.keep')).toBeDefined();
  });

  it('invalid JSON is reported as JSON, with its position', () => {
    const bad = file('bad.json', '[{"name": "a"},\n {"name": "b"\n');
    const res = cli(['queue', 'create', '--file', bad, '--vhost', vh.name]);
    expect(res.code).toBe(1);
    expect(res.err).toContain('is not valid JSON');
    expect(res.err).toMatch(/line 3 column 1/);
    expect(res.err).not.toContain('Flow sequence');
  });
});
