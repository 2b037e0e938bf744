/** The CLI as a user runs it (a child process), against the real broker: outcomes and exit codes. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
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

function cli(args: string[], file?: { name: string; content: unknown }) {
  if (file) writeFileSync(join(dir, file.name), typeof file.content === 'string' ? file.content : JSON.stringify(file.content));
  const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--vhost', vh.name, '--audit-log', join(dir, 'audit.log')], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, RABBITMQ_URL: rabbitUrl(), RABBITMQ_PASSWORD: 'guest' },
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

  it('writes one audit entry per batch and never prints the password', () => {
    const file = { name: 'audited.json', content: [{ name: 'audited' }] };
    const res = cli(['queue', 'create', '--batch', '--file', join(dir, file.name), '--password', 'guest'], file);
    expect(res.code).toBe(0);
    expect(`${res.out}${res.err}`).not.toContain('guest:guest');
  });
});
