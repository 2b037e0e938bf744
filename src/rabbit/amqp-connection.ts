/**
 * One AMQP connection that comes back after it is lost.
 *
 * Guarantees
 * - `connection()` resolves with a live connection, waiting for a reconnect if needed.
 * - After a loss, reconnects with jittered exponential backoff (0.5 s → 30 s) until `close()`.
 * - Emits 'connected' (with the connection) after every (re)connect, 'disconnected' on loss,
 *   'blocked'/'unblocked' when the broker raises or clears a resource alarm.
 *
 * Failure modes
 * - Channels of a lost connection are dead: owners (the channel pool, the event stream) listen
 *   for 'disconnected' and drop them.
 * - After `close()`, `connection()` rejects at once, and so does a call still waiting for a
 *   reconnect.
 * - `retryFirstConnect: false`: a first connect that fails rejects at once with its cause (no
 *   retries); losses after a successful connect are retried as always.
 * - Several nodes (`url` lists them, separated by commas): each attempt goes to the next node,
 *   and a lost connection reconnects to the next one first, so a stopped node is left at once;
 *   the backoff pause comes only after every node has failed once in a row.
 * - `amqps://` with a certificate that does not verify against `ca` (or the system roots): each
 *   attempt fails with a `TlsError` that says so (emitted with 'retry', kept in `lastError`), and
 *   the attempts go on with backoff, so a fixed certificate is picked up without a restart.
 */
import { EventEmitter } from 'node:events';
import amqp, { type ChannelModel } from 'amqplib';
import { Backoff } from '../util/backoff.js';
import { tlsFailure } from './tls-errors.js';

export interface AmqpConnectionOptions {
  /**
   * `amqp://user:pass@host:5672/vhost` (a `heartbeat` parameter is added: 10 s), or several nodes
   * of one cluster separated by commas, each a full URL. Required.
   */
  url: string;
  /** Shown in the management UI's connection list. Defaults to `rabbitbatch`. */
  connectionName?: string;
  /** CA bundle for `amqps://`. Defaults to the system roots. */
  ca?: string;
  /**
   * Reconnect with backoff after a failed first connect. A one-shot command (the CLI's
   * `publish`) sets false: the first failure rejects `connection()` with its cause, so it can
   * exit instead of waiting for a broker that is not there. Defaults to true.
   */
  retryFirstConnect?: boolean;
}

export class AmqpConnection extends EventEmitter {
  private current: ChannelModel | undefined;
  private connecting: Promise<ChannelModel> | undefined;
  private closed = false;
  private readonly backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;

  private readonly watchdog: NodeJS.Timeout;
  /** Scheme, host and port only (of every node): for messages (the URL carries the password). */
  get endpoint(): string {
    return this.urls.map((u) => {
      const url = new URL(u);
      return `${url.protocol}//${url.host}`;
    }).join(',');
  }
  private failure: Error | undefined;
  private readonly urls: string[];
  /** The node the next attempt goes to. */
  private next = 0;
  /** Failed attempts in a row; a pause only after every node failed once. */
  private failedInRow = 0;

  constructor(private readonly o: AmqpConnectionOptions) {
    super();
    this.urls = o.url.split(',').map((u) => u.trim()).filter(Boolean);
    // Belt and braces: whatever way a connection ended, one that is wanted gets re-established.
    this.watchdog = setInterval(() => {
      if (this.wanted && !this.current && !this.connecting && !this.closed) void this.connection().catch((err: unknown) => this.emit('retry', err, 0));
    }, 5_000);
    this.watchdog.unref();
  }

  /** Set once somebody asked for a connection: from then on it is kept up until `close()`. */
  private wanted = false;
  private everConnected = false;

  /** Why the last attempt failed, until one succeeds (the channel pool puts it in its errors). */
  get lastError(): Error | undefined {
    return this.failure;
  }

  /** More nodes of the same cluster: used from the next (re)connect on; the connection up now stays. */
  addNodes(urls: readonly string[]): void {
    for (const u of urls) if (!this.urls.includes(u)) this.urls.push(u);
  }

  /** The node of the connection that is up (scheme, host, port), if any. */
  get node(): string | undefined {
    return this.currentNode;
  }
  private currentNode: string | undefined;

  /** Is a connection up right now (for readiness and metrics)? */
  get connected(): boolean {
    return this.current !== undefined;
  }

  async connection(): Promise<ChannelModel> {
    if (this.closed) throw new Error('AMQP connection closed');
    this.wanted = true;
    if (this.current) return this.current;
    this.connecting ??= this.connectWithRetry().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    this.wakeUp?.();
    const c = this.current;
    this.current = undefined;
    await c?.close().catch(() => undefined);
  }

  private async connectWithRetry(): Promise<ChannelModel> {
    for (;;) {
      try {
        return await this.connectOnce();
      } catch (err) {
        this.failure = err instanceof Error ? err : new Error(String(err));
        if (this.closed) throw new Error('AMQP connection closed', { cause: err });
        if (this.o.retryFirstConnect === false && !this.everConnected) {
          this.wanted = false; // the watchdog must not try again behind the caller's back
          if (++this.failedInRow < this.urls.length) continue;
          this.failedInRow = 0;
          throw this.failure;
        }
        // Another node first; the pause only once each node has failed in a row.
        if (++this.failedInRow < this.urls.length) {
          this.emit('retry', err, 0);
          continue;
        }
        this.failedInRow = 0;
        const delay = this.backoff.next();
        this.emit('retry', err, delay);
        // close() ends the pause early, so nobody waits for a connection that will never come.
        await new Promise<void>((resolve) => {
          this.wakeUp = resolve;
          this.retryTimer = setTimeout(resolve, delay);
        });
        if (this.closed) throw new Error('AMQP connection closed', { cause: err });
      }
    }
  }

  private async connectOnce(): Promise<ChannelModel> {
    // A broker that is stopping can accept TCP and never answer the handshake: bound the
    // connect, and let heartbeats notice a connection that died silently.
    const target = this.urls[this.next % this.urls.length] ?? this.o.url;
    // Whatever happens to this attempt, the next one goes to the next node.
    this.next = (this.next + 1) % this.urls.length;
    const url = new URL(target);
    const node = `${url.protocol}//${url.host}`;
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', '10');
    const connecting = amqp.connect(url.href, {
      timeout: 10_000,
      clientProperties: { connection_name: this.o.connectionName ?? 'rabbitbatch' },
      ...(this.o.ca ? { ca: [this.o.ca] } : {}),
    }).catch((err: unknown) => {
      // Node's TLS codes say little on their own: name the endpoint and the CA in question.
      throw tlsFailure(err, { endpoint: node, caGiven: this.o.ca !== undefined }) ?? err;
    });
    let timer: NodeJS.Timeout | undefined;
    const conn = await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // amqplib's timeout covers the TCP connect only; a booting broker can stall the handshake.
          connecting.then((late) => late.close(), () => undefined);
          reject(new Error('AMQP handshake timed out after 15 s'));
        }, 15_000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (this.closed) {
      // close() was called during the handshake: this connection is not wanted any more.
      await conn.close().catch(() => undefined);
      throw new Error('AMQP connection closed');
    }
    this.backoff.reset();
    this.failedInRow = 0;
    // `next` already names another node: a lost connection reconnects elsewhere first.
    this.currentNode = node;
    this.failure = undefined;
    this.everConnected = true;
    this.current = conn;
    conn.on('error', () => undefined); // 'close' follows; handled there
    conn.on('blocked', (reason: string) => this.emit('blocked', reason));
    conn.on('unblocked', () => this.emit('unblocked'));
    conn.on('close', () => {
      if (this.current === conn) {
        this.current = undefined;
        this.currentNode = undefined;
      }
      this.emit('disconnected');
      if (!this.closed) void this.connection().catch((err: unknown) => this.emit('retry', err, 0));
    });
    this.emit('connected', conn);
    return conn;
  }
}
