/**
 * Streaming batch publish: one message per line of a file (or stdin), on a confirm channel, with
 * a bounded window of unconfirmed messages. Memory stays flat whatever the file size.
 *
 * Guarantees
 * - Backpressure: a full window, `publish()` returning false (wait for 'drain') and a blocked
 *   connection all pause reading.
 * - The checkpoint is the highest line L such that every line up to L is confirmed (confirms on
 *   one channel arrive in order), written atomically; resuming after L after an orderly stop
 *   (SIGINT waits for outstanding confirms) publishes each line exactly once.
 * - Nacked and returned (`mandatory`, unroutable) messages are reported with their line numbers.
 *
 * Failure modes
 * - After a crash (SIGKILL) lines published but not yet confirmed may be published again on
 *   resume: at least once, as RabbitMQ's confirms allow.
 * - An invalid line stops the run (or is skipped with `skipInvalid`) and is reported by number.
 */
import { createReadStream, renameSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ConfirmChannel, Options } from 'amqplib';

export interface PublishOptions {
  channel: ConfirmChannel;
  /** File path, or '-' for stdin. */
  file: string;
  /** Defaults to '' (the default exchange: routing key = queue name). */
  exchange?: string;
  /** Used when a line does not name one. */
  routingKey?: string;
  /** One body per line instead of JSON objects. Defaults to false. */
  raw?: boolean;
  /** Unconfirmed messages at most. Defaults to 1000. */
  window?: number;
  /** Skip lines up to and including this one. Defaults to 0. */
  resumeFrom?: number;
  checkpoint?: string;
  /** Refuse lines longer than this (bytes). Defaults to 10 MB. */
  maxLineBytes?: number;
  skipInvalid?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: { lines: number; confirmed: number; bytes: number }) => void;
}

export interface PublishSummary {
  lastLine: number;
  published: number;
  confirmed: number;
  failed: { line: number; reason: string }[];
  invalid: { line: number; reason: string }[];
  /** Every line up to this one is confirmed: resume after it. */
  checkpoint: number;
  stopped: 'end' | 'invalid' | 'interrupted';
  seconds: number;
}

interface Line {
  body: Buffer;
  routingKey: string;
  options: Options.Publish;
}

export function parseLine(text: string, raw: boolean, routingKey: string): Line {
  if (raw) return { body: Buffer.from(text), routingKey, options: {} };
  const msg = JSON.parse(text) as { body?: unknown; routingKey?: string; headers?: Record<string, unknown>; properties?: Options.Publish };
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('a line must be a JSON object {"body": ...}');
  if (!('body' in msg)) throw new Error('missing "body"');
  const body = typeof msg.body === 'string' ? Buffer.from(msg.body) : Buffer.from(JSON.stringify(msg.body));
  return { body, routingKey: msg.routingKey ?? routingKey, options: { ...msg.properties, ...(msg.headers ? { headers: msg.headers } : {}) } };
}

export async function publishFile(o: PublishOptions): Promise<PublishSummary> {
  const started = performance.now();
  const window = o.window ?? 1000;
  const maxLine = o.maxLineBytes ?? 10 * 1024 * 1024;
  const ch = o.channel;
  const summary: PublishSummary = { lastLine: o.resumeFrom ?? 0, published: 0, confirmed: 0, failed: [], invalid: [], checkpoint: o.resumeFrom ?? 0, stopped: 'end', seconds: 0 };
  const pending: number[] = []; // line numbers awaiting confirms, in publish order
  let wake: (() => void) | undefined;
  // A nacked line is not delivered: the checkpoint must never move past it.
  let holdCheckpoint = false;
  let bytes = 0;
  const saveCheckpoint = () => {
    if (!o.checkpoint) return;
    writeFileSync(`${o.checkpoint}.tmp`, `${summary.checkpoint}\n`);
    renameSync(`${o.checkpoint}.tmp`, o.checkpoint);
  };
  ch.on('return', (msg) => summary.failed.push({ line: Number(msg.properties.messageId), reason: `returned: ${(msg.fields as { replyText?: string }).replyText ?? 'unroutable'} (no queue bound for routing key "${msg.fields.routingKey}")` }));

  const input = o.file === '-' ? process.stdin : createReadStream(o.file);
  const rl = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  for await (const text of rl) {
    lineNo++;
    if (lineNo <= (o.resumeFrom ?? 0)) continue;
    if (o.signal?.aborted) {
      summary.stopped = 'interrupted';
      break;
    }
    bytes += text.length + 1;
    if (text.trim() === '') continue;
    let line: Line;
    try {
      if (Buffer.byteLength(text) > maxLine) throw new Error(`line longer than ${maxLine} bytes`);
      line = parseLine(text, o.raw ?? false, o.routingKey ?? '');
    } catch (err) {
      summary.invalid.push({ line: lineNo, reason: (err as Error).message });
      if (o.skipInvalid) continue;
      summary.stopped = 'invalid';
      break;
    }
    while (pending.length >= window) await new Promise<void>((r) => (wake = r));
    const n = lineNo;
    pending.push(n);
    summary.lastLine = n;
    const ok = ch.publish(o.exchange ?? '', line.routingKey, line.body, { persistent: true, mandatory: true, messageId: String(n), ...line.options }, (err) => {
      // Confirms on one channel come in publish order: the head of `pending` is this line.
      pending.shift();
      if (err) {
        summary.failed.push({ line: n, reason: 'nacked by the broker' });
        holdCheckpoint = true;
      } else summary.confirmed++;
      if (!holdCheckpoint && (pending.length === 0 || pending[0]! > n)) summary.checkpoint = Math.max(summary.checkpoint, n);
      if (summary.confirmed % 1000 === 0) {
        saveCheckpoint();
        o.onProgress?.({ lines: n, confirmed: summary.confirmed, bytes });
      }
      wake?.();
    });
    summary.published++;
    if (!ok) await new Promise((r) => ch.once('drain', r));
  }
  rl.close();
  await ch.waitForConfirms().catch(() => undefined);
  if (!holdCheckpoint && pending.length === 0) summary.checkpoint = Math.max(summary.checkpoint, summary.lastLine);
  saveCheckpoint();
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
