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
import type { EventEmitter } from 'node:events';
import { createReadStream, renameSync, writeFileSync } from 'node:fs';
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
  /**
   * Emits 'blocked' / 'unblocked' when the broker raises or clears a resource alarm (memory,
   * disk): reading pauses while blocked, since nothing published then would leave the socket.
   */
  connection?: EventEmitter;
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

/**
 * The lines of a stream, a chunk's worth at a time (a trailing '\r' is dropped, so CRLF files
 * read like LF files). Pulls the next chunk only when asked, so a paused consumer pauses the
 * read; a line longer than `maxChars` is not accumulated: it comes back as `undefined`.
 */
async function* chunkedLines(input: NodeJS.ReadableStream, maxChars: number): AsyncGenerator<(string | undefined)[]> {
  input.setEncoding('utf8'); // decodes multi-byte characters split across chunks
  let carry = '';
  let overlong = false;
  const finish = (text: string) => (overlong ? undefined : text.endsWith('\r') ? text.slice(0, -1) : text);
  for await (const chunk of input as AsyncIterable<string>) {
    const parts = chunk.split('\n');
    const lines: (string | undefined)[] = [];
    for (let i = 0; i < parts.length - 1; i++) {
      lines.push(finish(i === 0 ? carry + parts[0]! : parts[i]!));
      if (i === 0) [carry, overlong] = ['', false];
    }
    const tail = parts[parts.length - 1]!;
    if (parts.length > 1) carry = tail;
    else carry += tail;
    if (carry.length > maxChars) [carry, overlong] = ['', true];
    yield lines;
  }
  if (carry !== '' || overlong) yield [finish(carry)];
}

/** The broker's reason for closing the channel, in words: a missing exchange is the usual one. */
function channelError(err: Error, exchange: string): string {
  if (/NOT_FOUND - no exchange/.test(err.message)) return `the exchange "${exchange}" does not exist in this vhost (${err.message.replace(/^.*?(NOT_FOUND)/, '$1').replace(/"$/, '')})`;
  return `the broker closed the channel: ${err.message}`;
}

export async function publishFile(o: PublishOptions): Promise<PublishSummary> {
  const started = performance.now();
  const window = Math.max(1, o.window ?? 1000);
  const maxLine = o.maxLineBytes ?? 10 * 1024 * 1024;
  const ch = o.channel;
  const summary: PublishSummary = { lastLine: o.resumeFrom ?? 0, published: 0, confirmed: 0, failed: [], invalid: [], checkpoint: o.resumeFrom ?? 0, stopped: 'end', seconds: 0 };
  // Line numbers awaiting confirms, in publish order: a fixed ring, so the bookkeeping of a
  // run allocates nothing per message (a growing/shifting array churns backing stores).
  const pending = new Float64Array(window);
  let head = 0;
  let inFlight = 0;
  let wake: (() => void) | undefined;
  // A nacked line is not delivered: the checkpoint must never move past it.
  let holdCheckpoint = false;
  let bytes = 0;
  const saveCheckpoint = () => {
    if (!o.checkpoint) return;
    writeFileSync(`${o.checkpoint}.tmp`, `${summary.checkpoint}\n`);
    renameSync(`${o.checkpoint}.tmp`, o.checkpoint);
  };
  // One callback for every message rather than a closure each: confirms on one channel come in
  // publish order, so the message confirmed is always the head of `pending`.
  const onConfirm = (err: unknown) => {
    const n = pending[head]!;
    head = (head + 1) % window;
    inFlight--;
    if (err) {
      summary.failed.push({ line: n, reason: channelClosedBy ? `not delivered: ${channelClosedBy}` : 'nacked by the broker' });
      holdCheckpoint = true;
    } else if (returned > 0 && returnedLines.delete(n)) {
      // RabbitMQ acks a returned message too (basic.return comes first): it failed, not confirmed.
      returned--;
    } else summary.confirmed++;
    if (!holdCheckpoint) summary.checkpoint = Math.max(summary.checkpoint, n);
    if (summary.confirmed % 1000 === 0) {
      saveCheckpoint();
      o.onProgress?.({ lines: n, confirmed: summary.confirmed, bytes });
    }
    wake?.();
  };
  const returnedLines = new Set<number>();
  let returned = 0;
  ch.on('return', (msg) => {
    const line = Number(msg.properties.messageId);
    returnedLines.add(line);
    returned++;
    summary.failed.push({ line, reason: `returned: ${(msg.fields as { replyText?: string }).replyText ?? 'unroutable'} (no queue bound for routing key "${msg.fields.routingKey}")` });
  });
  // A publish to a missing exchange closes the channel (404) and nacks what is in flight: say why.
  let channelClosedBy: string | undefined;
  ch.on('error', (err: Error) => (channelClosedBy = channelError(err, o.exchange ?? '')));

  let blocked = false;
  let unblock: (() => void) | undefined;
  const onBlocked = () => (blocked = true);
  const onUnblocked = () => {
    blocked = false;
    unblock?.();
  };
  o.connection?.on('blocked', onBlocked).on('unblocked', onUnblocked);
  o.signal?.addEventListener('abort', () => unblock?.(), { once: true });

  const input = o.file === '-' ? process.stdin : createReadStream(o.file);
  let lineNo = 0;
  read: for await (const lines of chunkedLines(input, maxLine)) {
    for (const text of lines) {
      lineNo++;
      if (lineNo <= (o.resumeFrom ?? 0)) continue;
      if (o.signal?.aborted) {
        summary.stopped = 'interrupted';
        break read;
      }
      bytes += (text?.length ?? maxLine) + 1;
      if (text?.trim() === '') continue;
      let line: Line;
      try {
        if (text === undefined || Buffer.byteLength(text) > maxLine) throw new Error(`line longer than ${maxLine} bytes`);
        line = parseLine(text, o.raw ?? false, o.routingKey ?? '');
        // The default exchange routes by queue name: without one the message can only be returned.
        if (line.routingKey === '' && (o.exchange ?? '') === '') throw new Error('no routing key: the line names none and --routing-key is not given (the default exchange routes by queue name)');
      } catch (err) {
        summary.invalid.push({ line: lineNo, reason: (err as Error).message });
        if (o.skipInvalid) continue;
        summary.stopped = 'invalid';
        break read;
      }
      while (inFlight >= window) await new Promise<void>((r) => (wake = r));
      while (blocked && !o.signal?.aborted) await new Promise<void>((r) => (unblock = r));
      pending[(head + inFlight) % window] = lineNo;
      inFlight++;
      summary.lastLine = lineNo;
      const ok = ch.publish(o.exchange ?? '', line.routingKey, line.body, { persistent: true, mandatory: true, messageId: String(lineNo), ...line.options }, onConfirm);
      summary.published++;
      if (!ok) await new Promise((r) => ch.once('drain', r));
    }
  }
  o.connection?.off('blocked', onBlocked).off('unblocked', onUnblocked);
  await ch.waitForConfirms().catch(() => undefined);
  if (!holdCheckpoint && inFlight === 0) summary.checkpoint = Math.max(summary.checkpoint, summary.lastLine);
  saveCheckpoint();
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}
