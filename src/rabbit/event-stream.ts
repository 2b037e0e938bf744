/**
 * RabbitMQ's own change events (`rabbitmq_event_exchange`): the topic exchange
 * `amq.rabbitmq.event` in vhost `/`, carrying the events of every vhost.
 *
 * Guarantees
 * - Subscribes on a server-named exclusive, auto-delete queue, after every (re)connect of its
 *   `AmqpConnection`, and then calls `onSubscribed`: events are at most once and only flow while
 *   the queue is bound, so the owner must re-list everything after each (re)subscribe.
 * - `onUnsubscribed` is called when the connection is lost: the owner stops trusting its cache.
 * - An event the broker delivers twice (same routing key and headers) reaches `onEvent` once
 *   (event-dedupe.ts says when that happens).
 *
 * Failure modes
 * - A broker without the `rabbitmq_event_exchange` plugin has no `amq.rabbitmq.event`: the bind
 *   fails with NOT_FOUND, `onExchangeMissing` is called, and the subscription is tried again
 *   every `missingRetryMs` (the plugin may be enabled later) instead of every second.
 * - Events missed while unsubscribed are not replayed (the re-list covers them); some RabbitMQ
 *   versions drop `binding.*` events in corner cases, so a periodic full re-list stays on.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { RabbitEvent } from '../model/observed.js';
import type { AmqpConnection } from './amqp-connection.js';
import { EventDeduplicator } from './event-dedupe.js';

export const EVENT_EXCHANGE = 'amq.rabbitmq.event';
const ROUTING_KEYS = ['queue.*', 'exchange.*', 'binding.*', 'vhost.*', 'policy.*'];

export interface EventStreamOptions {
  /** A connection to vhost `/` (where the event exchange lives). */
  connection: AmqpConnection;
  onEvent: (event: RabbitEvent) => void;
  onSubscribed?: () => void;
  onUnsubscribed?: () => void;
  onError?: (err: unknown) => void;
  /** The broker has no `amq.rabbitmq.event` exchange (the plugin is not enabled). */
  onExchangeMissing?: (err: unknown) => void;
  /** Pause before trying again after the exchange was missing. Defaults to 30000 ms. */
  missingRetryMs?: number;
}

/** A bind that failed because the event exchange does not exist (amqplib's channel close text). */
export function isExchangeMissing(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return e?.code === 404 && String(e.message ?? '').includes(`no exchange '${EVENT_EXCHANGE}'`);
}

/** Header values arrive as strings or Buffers (longstr) depending on the field. */
function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}

export function parseEvent(routingKey: string, headers: Record<string, unknown>): RabbitEvent {
  const [kindRaw = '', action = ''] = routingKey.split('.');
  const vhost = text(headers.vhost);
  const user = headers.user_who_performed_action === undefined ? undefined : text(headers.user_who_performed_action);
  const extra = user === undefined ? {} : { user };
  switch (kindRaw) {
    case 'queue':
    case 'exchange':
      return { kind: kindRaw, action, vhost, name: text(headers.name), ...extra };
    case 'binding':
      return {
        kind: 'binding',
        action,
        vhost,
        source: text(headers.source_name),
        destination: text(headers.destination_name),
        destinationType: text(headers.destination_kind) === 'exchange' ? 'exchange' : 'queue',
        routingKey: text(headers.routing_key),
        ...extra,
      };
    case 'vhost':
      return { kind: 'vhost', action, vhost: text(headers.name), name: text(headers.name), ...extra };
    case 'policy':
      return { kind: 'policy', action, vhost, name: text(headers.name), ...extra };
    default:
      return { kind: 'other', action: routingKey, vhost, name: text(headers.name), ...extra };
  }
}

export class RabbitEventStream {
  private channel: Channel | undefined;
  private subscribed = false;
  private readonly dedupe = new EventDeduplicator();
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  /** One subscription per connection, however many paths ask for it. */
  private subscribing: { conn: ChannelModel; done: Promise<void> } | undefined;
  private readonly onConnected = (conn: ChannelModel) => void this.subscribeOnce(conn).catch((err) => this.o.onError?.(err));
  private readonly onDisconnected = () => {
    this.channel = undefined;
    this.subscribing = undefined;
    if (this.subscribed) {
      this.subscribed = false;
      this.o.onUnsubscribed?.();
    }
  };

  constructor(private readonly o: EventStreamOptions) {}

  get isSubscribed(): boolean {
    return this.subscribed;
  }

  async start(): Promise<void> {
    this.o.connection.on('connected', this.onConnected);
    this.o.connection.on('disconnected', this.onDisconnected);
    await this.subscribeOnce(await this.o.connection.connection());
  }

  private subscribeOnce(conn: ChannelModel): Promise<void> {
    if (this.subscribing?.conn === conn) return this.subscribing.done;
    const done: Promise<void> = this.subscribe(conn).catch((err: unknown) => {
      // The connection is up but the subscription failed (e.g. the broker is still booting):
      // try again shortly, on whatever connection is current then.
      const missing = isExchangeMissing(err);
      if (missing) this.o.onExchangeMissing?.(err);
      else this.o.onError?.(err);
      if (this.subscribing?.done === done) this.subscribing = undefined;
      if (!this.stopped) {
        const delay = missing ? (this.o.missingRetryMs ?? 30_000) : 1_000;
        this.retry = setTimeout(() => void this.o.connection.connection().then((c) => this.subscribeOnce(c)).catch(() => undefined), delay);
        this.retry.unref();
      }
    });
    this.subscribing = { conn, done };
    return done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.o.connection.off('connected', this.onConnected);
    this.o.connection.off('disconnected', this.onDisconnected);
    const ch = this.channel;
    this.channel = undefined;
    this.subscribing = undefined;
    this.subscribed = false;
    await ch?.close().catch(() => undefined);
  }

  private async subscribe(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    this.channel = ch;
    ch.on('error', (err: unknown) => this.o.onError?.(err));
    ch.on('close', () => {
      if (this.channel === ch) this.onDisconnected();
    });
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    for (const key of ROUTING_KEYS) await ch.bindQueue(queue, EVENT_EXCHANGE, key);
    await ch.consume(queue, (msg: ConsumeMessage | null) => {
      if (!msg) return;
      try {
        const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
        if (this.dedupe.first(msg.fields.routingKey, headers)) this.o.onEvent(parseEvent(msg.fields.routingKey, headers));
      } catch (err) {
        this.o.onError?.(err);
      }
    }, { noAck: true });
    this.subscribed = true;
    this.o.onSubscribed?.();
  }
}
