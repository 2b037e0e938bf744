/** The CLI as a user runs it (a child process), against the real broker: outcomes and exit codes. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestVhost, getQueue, listQueueNames, mgmt, rabbitUrl } from '../support/rabbit.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-cli-'));
let vh: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  vh = await createTestVhost('cli');
});
afterAll(() => vh.cleanup());

function cli(args: string[], file?: { name: string; content: unknown }, auditLog = join(dir, 'audit.log'), url = rabbitUrl()) {
  if (file) writeFileSync(join(dir, file.name), typeof file.content === 'string' ? file.content : JSON.stringify(file.content));
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--vhost', vh.name, '--audit-log', auditLog], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RABBITMQ_URL: url, RABBITMQ_PASSWORD: 'guest' },
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

const queues = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ name: `${prefix}.${String(i).padStart(3, '0')}` }));

describe('rabbitbatch CLI', () => {
  it('creates 100 queues from a file, then deletes them', () => {
    const file = { name: 'hundred.json', content: queues('hundred', 100) };
    const created = cli(['queue', 'create', '--batch', '--file', join(dir, file.name), '-o', 'json'], file);
    expect(created.code, created.err).toBe(0);
    expect((JSON.parse(created.out) as { status: string }[]).every((r) => r.status === 'Ready')).toBe(true);
    return listQueueNames(vh.name).then(async (names) => {
      expect(names.filter((n) => n.startsWith('hundred.'))).toHaveLength(100);
      const deleted = cli(['queue', 'delete', '--batch', '--file', join(dir, file.name)]);
      expect(deleted.code, deleted.err).toBe(0);
      expect((await listQueueNames(vh.name)).filter((n) => n.startsWith('hundred.'))).toEqual([]);
    });
  });

  it('takes a comma-separated RABBITMQ_URL as the operator does: a node that does not answer is passed over', async () => {
    const file = { name: 'nodes.json', content: queues('nodes', 3) };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name)], file, join(dir, 'audit.log'), `http://127.0.0.1:1, ${rabbitUrl()}`);
    expect(res.code, res.err).toBe(0);
    expect((await listQueueNames(vh.name)).filter((n) => n.startsWith('nodes.'))).toHaveLength(3);
  });

  it('refuses a file with one bad item, naming its index, and creates nothing', async () => {
    const file = { name: 'bad.yaml', content: '- name: fine.one\n- name: fine.two\n- name: "not fine"\n' };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name)], file);
    expect(res.code).toBe(1);
    expect(res.err).toContain('item 2.name');
    expect(await getQueue(vh.name, 'fine.one')).toBeUndefined();
  });

  it('refuses more items than --max-batch before doing anything', async () => {
    const file = { name: 'big.json', content: queues('big', 101) };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name)], file);
    expect(res.code).toBe(1);
    expect(res.err).toContain('more than --max-batch 100');
    expect((await listQueueNames(vh.name)).filter((n) => n.startsWith('big.'))).toEqual([]);
  });

  it('best-effort: partial success exits 3, each failure reported', async () => {
    await mgmt(`/api/queues/${encodeURIComponent(vh.name)}/taken`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: { 'x-max-length': 1 } } });
    const file = { name: 'partial.json', content: [{ name: 'taken', arguments: { 'x-max-length': 2 } }, { name: 'free' }] };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name), '--mode', 'best-effort', '-o', 'json'], file);
    expect(res.code).toBe(3);
    const rows = JSON.parse(res.out) as { resource: string; status: string; error: string | null }[];
    expect(rows.find((r) => r.resource === 'queue/taken')).toMatchObject({ status: 'Conflict' });
    expect(rows.find((r) => r.resource === 'queue/taken')?.error).toContain('x-max-length: desired 2, actual 1');
    expect(await getQueue(vh.name, 'free')).toBeDefined();
  });

  it('all-or-nothing: a failure rolls back what the run created and exits 4', async () => {
    const file = { name: 'rollback.json', content: [{ name: 'rb.a' }, { name: 'rb.b' }, { name: 'rb.bad', type: 'quorum', arguments: { 'x-max-age': '1D' } }] };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name)], file);
    expect(res.code).toBe(4);
    expect((await listQueueNames(vh.name)).filter((n) => n.startsWith('rb.'))).toEqual([]);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const file = { name: 'dry.yaml', content: 'queues:\n  - name: dry.q\nexchanges:\n  - name: dry.x\n' };
    const res = cli(['apply', '-f', join(dir, file.name), '--dry-run'], file);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/create\s+queue\/dry\.q/);
    expect(await getQueue(vh.name, 'dry.q')).toBeUndefined();
  });

  it('writes one audit entry per batch and never prints the password', async () => {
    // A user of its own with a password that cannot appear by chance, used for real.
    const user = `rabbitbatch-audit-${process.pid}`;
    const password = 'Aud1t-pl4nted-7e1b';
    await mgmt(`/api/users/${user}`, { method: 'PUT', body: { password, tags: 'management' } });
    try {
      await mgmt(`/api/permissions/${encodeURIComponent(vh.name)}/${user}`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
      const auditLog = join(dir, 'audit-own.log');
      const file = { name: 'audited.json', content: [{ name: 'audited.one' }, { name: 'audited.two' }] };
      const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name), '--username', user, '--password', password], file, auditLog);
      expect(res.code, res.err).toBe(0);
      expect(await getQueue(vh.name, 'audited.two')).toBeDefined(); // the planted password really worked
      const again = cli(['queue', 'create', '--batch', '--file', join(dir, file.name), '--username', user, '--password', password], file, auditLog);
      expect(again.code, again.err).toBe(0);
      const text = readFileSync(auditLog, 'utf8');
      const entries = text.trim().split('\n').map((l) => (JSON.parse(l) as { audit: { vhost: string; items: number; result: string; operations: number } }).audit);
      expect(entries).toHaveLength(2); // one per batch, not one per item
      expect(entries.map((e) => [e.vhost, e.items, e.result])).toEqual([
        [vh.name, 2, 'Succeeded'],
        [vh.name, 2, 'Succeeded'],
      ]);
      expect(entries[0]!.operations).toBeGreaterThan(entries[1]!.operations); // the second run had nothing to create
      for (const [where, out] of Object.entries({ stdout: res.out + again.out, stderr: res.err + again.err, audit: text })) expect(out.includes(password), `${where} contains the password`).toBe(false);
    } finally {
      await mgmt(`/api/users/${user}`, { method: 'DELETE' });
    }
  });
});
