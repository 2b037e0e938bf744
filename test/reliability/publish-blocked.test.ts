/**
 * A broker resource alarm while publishing: RabbitMQ blocks the publishing connection
 * (`connection.blocked`), and the publisher stops reading the file until `connection.unblocked`
 * instead of pushing the rest of it into the socket buffer. Raises a real memory alarm
 * (`rabbitmqctl set_vm_memory_high_watermark`) and always restores the watermark it found (read
 * before the test, checked after).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishFile } from '../../src/batch/publish/publisher.js';
import { AmqpConnection } from '../../src/rabbit/amqp-connection.js';
import { ChannelPool } from '../../src/rabbit/channel-pool.js';
import { readWatermark, setWatermark } from '../support/broker-control.js';
import { createTestVhost, messageCount, mgmt } from '../support/rabbit.js';

const LINES = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-blocked-'));
/** The watermark the broker had before this file: what it gets back. */
let found: string[] | undefined;
const restore = async () => {
  if (found) await setWatermark(found);
};
let vh: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  found = await readWatermark();
  vh = await createTestVhost('blocked');
  await mgmt(`/api/queues/${encodeURIComponent(vh.name)}/alarm`, { method: 'PUT', body: { durable: true, auto_delete: false, arguments: {} } });
});
afterAll(async () => {
  await restore();
  if (found) expect(await readWatermark()).toEqual(found); // left as found
  await vh?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('publish under a broker memory alarm', () => {
  it('pauses reading while the connection is blocked, then delivers every line once', async () => {
    const file = join(dir, 'lines.jsonl');
    writeFileSync(file, Array.from({ length: LINES }, (_, i) => JSON.stringify({ body: { id: i + 1 } })).join('\n') + '\n');
    const connection = new AmqpConnection({ url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vh.name)}`, connectionName: 'rabbitbatch-blocked-test' });
    const pool = new ChannelPool<ConfirmChannel>({ connection, size: 1, confirm: true });
    const blocked: string[] = [];
    connection.on('blocked', (reason: string) => blocked.push(reason));
    try {
      const channel = await pool.acquire();
      await setWatermark(['0.0000001']); // any memory use is over it: the alarm goes off at once
      const abort = new AbortController();
      // A window larger than the file: only the alarm can hold the publisher back.
      const run = publishFile({ channel, file, routingKey: 'alarm', window: LINES * 2, signal: abort.signal, connection });
      await new Promise((r) => setTimeout(r, 3_000));
      abort.abort(); // stop reading; outstanding confirms arrive once the alarm clears
      await restore();
      const summary = await run;
      await pool.release(channel);

      expect(blocked.length).toBeGreaterThan(0);
      expect(summary.stopped).toBe('interrupted');
      // Without the pause the whole file would have been published into the socket by now.
      expect(summary.published).toBeGreaterThan(0);
      console.log(`published ${summary.published} of ${LINES} lines before the alarm stopped the reading`);
      expect(summary.published).toBeLessThan(LINES / 10);
      expect(summary.confirmed).toBe(summary.published);
      expect(summary.failed).toEqual([]);
      expect(await messageCount(vh.name, 'alarm')).toBe(summary.published);
    } finally {
      await restore();
      await pool.close();
      await connection.close();
    }
  });
});
