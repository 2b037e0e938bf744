/** `rabbitbatch publish` against the real broker: 100,000 lines arrive; an interrupted publish resumed from its checkpoint delivers each line once. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestVhost, messageCount, mgmt } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-publish-'));
let vh: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  vh = await createTestVhost('publish');
  for (const q of ['all', 'resume', 'bad']) await mgmt(`/api/queues/${encodeURIComponent(vh.name)}/${q}`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: {} } });
});
afterAll(() => vh.cleanup());

const args = (file: string, queue: string, extra: string[] = []) => ['--import', 'tsx', 'src/cli/main.ts', 'publish', '--file', file, '--routing-key', queue, '--vhost', vh.name, ...extra];
const lines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ body: { id: i + 1 } })).join('\n') + '\n';

describe('rabbitbatch publish', () => {
  it('publishes 100,000 lines: the queue holds exactly as many messages', async () => {
    const file = join(dir, 'all.jsonl');
    writeFileSync(file, lines(100_000));
    const res = spawnSync(process.execPath, args(file, 'all'), { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    expect(res.stderr).toContain('confirmed 100000');
    expect(await messageCount(vh.name, 'all')).toBe(100_000);
  }, 180_000);

  it('refuses an invalid line with its number, after publishing what came before', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, `${JSON.stringify({ body: 'a' })}\nnot json\n${JSON.stringify({ body: 'c' })}\n`);
    const res = spawnSync(process.execPath, args(file, 'bad'), { cwd: ROOT, encoding: 'utf8' });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('line 2:');
    // Line 1 arrived (and was confirmed before the exit), line 3 did not.
    expect(await messageCount(vh.name, 'bad')).toBe(1);
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vh.name)}`);
    try {
      const ch = await conn.createChannel();
      const msg = await ch.get('bad', { noAck: true });
      expect(msg && msg.content.toString()).toBe('a');
    } finally {
      await conn.close();
    }
  });

  it('stopped by SIGINT and resumed from its checkpoint, delivers every line exactly once', async () => {
    const n = 200_000;
    const file = join(dir, 'resume.jsonl');
    const checkpoint = join(dir, 'resume.checkpoint');
    writeFileSync(file, lines(n));
    const first = spawn(process.execPath, args(file, 'resume', ['--checkpoint', checkpoint]), { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    first.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await eventually(async () => expect(await messageCount(vh.name, 'resume')).toBeGreaterThan(1000), { timeoutMs: 60_000, intervalMs: 50 });
    first.kill('SIGINT');
    const code = await new Promise<number | null>((r) => first.once('exit', r));
    expect(code, stderr).toBe(0);
    const stoppedAt = Number(readFileSync(checkpoint, 'utf8'));
    expect(stoppedAt).toBeLessThan(n);
    expect(stderr).toContain(`resume with --resume-from ${stoppedAt}`);

    const second = spawnSync(process.execPath, args(file, 'resume', ['--checkpoint', checkpoint]), { cwd: ROOT, encoding: 'utf8' });
    expect(second.status, second.stderr).toBe(0);
    expect(await messageCount(vh.name, 'resume')).toBe(n);
    // Each id exactly once.
    const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vh.name)}`);
    const ch = await conn.createChannel();
    const seen = new Uint8Array(n + 1);
    let dupes = 0;
    for (let msg = await ch.get('resume', { noAck: true }); msg; msg = await ch.get('resume', { noAck: true })) {
      const id = (JSON.parse(msg.content.toString()) as { id: number }).id;
      if (seen[id]) dupes++;
      seen[id] = 1;
    }
    await conn.close();
    expect(dupes).toBe(0);
    expect(seen.slice(1).every((x) => x === 1)).toBe(true);
  }, 300_000);
});
