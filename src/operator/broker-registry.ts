/**
 * One event stream per broker the batches use: the default connection's broker and every broker
 * a connection Secret names. Brokers are known by their cluster name, so two Secrets for one
 * broker share one stream.
 *
 * Expected flow: a reconcile resolves a batch's connection → `use(batch, broker, target)` → the
 * broker's stream starts on its first batch (one AMQP connection, named
 * `rabbitbatch-events-<identity>`, to the first node of `target` that answers) → every
 * (re)subscribe, the owner re-verifies the batches of that broker → `release(batch)` when the
 * batch is gone or names another broker; the stream of a broker without batches is stopped and
 * its AMQP connection closed.
 *
 * Guarantees
 * - At most one AMQP connection per broker, whatever the number of Secrets naming it. A pinned
 *   broker (the default connection's) keeps its stream while the operator runs.
 * - A lost node: the AMQP connection reconnects to the next node of the target at once
 *   (amqp-connection.ts), and the new subscription makes the owner re-verify every batch there.
 * - `state(broker)` says whether drift reaches this operator by events (`subscribed`), will once
 *   the stream is back (`connecting`), or only at the periodic resync (`no-event-exchange`: the
 *   broker lacks the rabbitmq_event_exchange plugin; `disabled`: RABBITMQ_EVENTS=false).
 *
 * Failure modes
 * - The stream uses the credentials of the first connection that named the broker. A later
 *   connection with the same credentials that lists more nodes adds them, for the next
 *   reconnect (the stream up now stays); other connections' addresses are checked
 *   (connections.ts), not used.
 */
import type { Logger } from 'pino';
import type { EventState } from '../controllers/drift-repair-condition.js';
import type { RabbitEvent } from '../model/observed.js';
import { AmqpConnection } from '../rabbit/amqp-connection.js';
import { amqpConnectionUrl, type AmqpTarget } from '../rabbit/amqp-check.js';
import { RabbitEventStream } from '../rabbit/event-stream.js';

export interface BrokerEventHooks {
  onEvent(broker: string, event: RabbitEvent): void;
  /** (Re)subscribed: events missed meanwhile are lost, so everything on `broker` is re-verified. */
  onSubscribed(broker: string): void;
  onUnsubscribed(broker: string): void;
  /** The state of `broker` changed in a way its batches' status shows (no event exchange). */
  onStateChanged(broker: string): void;
}

interface Broker {
  target: AmqpTarget;
  connection: AmqpConnection;
  stream: RabbitEventStream;
  batches: Set<string>;
  pinned: boolean;
  missingExchange: boolean;
}

export interface BrokerRegistryOptions {
  identity: string;
  /** RABBITMQ_EVENTS: false keeps every stream off. */
  enabled: boolean;
  log: Logger;
  hooks: BrokerEventHooks;
  /** Pause before asking again for a missing event exchange. Defaults to 30000 ms. */
  missingRetryMs?: number;
}

export class BrokerRegistry {
  private readonly brokers = new Map<string, Broker>();
  private readonly brokerOfBatch = new Map<string, string>();
  private stopped = false;

  constructor(private readonly o: BrokerRegistryOptions) {}

  /** `batch` (namespace/name) is on `broker`: its stream runs (started now if it is the first). */
  use(batch: string, broker: string, target: AmqpTarget): void {
    if (this.stopped) return;
    const previous = this.brokerOfBatch.get(batch);
    if (previous === broker) return;
    this.brokerOfBatch.set(batch, broker);
    this.widen(broker, target);
    this.entry(broker, target).batches.add(batch);
    if (previous !== undefined) void this.leave(previous, batch);
  }

  /** The default connection's broker: its stream runs until `stop`. */
  pin(broker: string, target: AmqpTarget): void {
    if (this.stopped) return;
    this.entry(broker, target).pinned = true;
  }

  async release(batch: string): Promise<void> {
    const broker = this.brokerOfBatch.get(batch);
    this.brokerOfBatch.delete(batch);
    if (broker !== undefined) await this.leave(broker, batch);
  }

  state(broker: string | undefined): EventState | undefined {
    if (!this.o.enabled) return 'disabled';
    const b = broker === undefined ? undefined : this.brokers.get(broker);
    if (!b) return undefined;
    if (b.stream.isSubscribed) return 'subscribed';
    return b.missingExchange ? 'no-event-exchange' : 'connecting';
  }

  isSubscribed(broker: string): boolean {
    return this.brokers.get(broker)?.stream.isSubscribed === true;
  }

  /** The brokers with a stream, and the node each one's AMQP connection is on. */
  streams(): { broker: string; node: string | undefined; batches: number; state: EventState | undefined }[] {
    return [...this.brokers].map(([broker, b]) => ({ broker, node: b.connection.node, batches: b.batches.size, state: this.state(broker) }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.brokers.values()];
    this.brokers.clear();
    await Promise.all(all.map((b) => this.close(b)));
  }

  /** More nodes for a running stream (same credentials): used from its next reconnect on, without dropping it now. */
  private widen(broker: string, target: AmqpTarget): void {
    const b = this.brokers.get(broker);
    if (!b || b.target.username !== target.username || b.target.password !== target.password) return;
    const extra = target.urls.filter((u) => !b.target.urls.includes(u));
    if (extra.length === 0) return;
    b.target = { ...b.target, urls: [...b.target.urls, ...extra] };
    b.connection.addNodes(amqpConnectionUrl({ ...target, urls: extra }).split(','));
    this.o.log.info({ broker, nodes: b.connection.endpoint }, 'RabbitMQ event stream: more nodes known, used on the next reconnect');
  }

  private entry(broker: string, target: AmqpTarget): Broker {
    const b = this.brokers.get(broker);
    if (b) return b;
    const { log, hooks } = this.o;
    const connection = new AmqpConnection({ url: amqpConnectionUrl(target), connectionName: `rabbitbatch-events-${this.o.identity}`, ...(target.ca ? { ca: target.ca } : {}) });
    connection.on('retry', (err: unknown, delay: number) => log.warn({ broker, err, retryInMs: delay }, 'RabbitMQ event stream: reconnecting'));
    connection.on('disconnected', () => log.info({ broker }, 'RabbitMQ event stream: AMQP connection closed'));
    connection.on('connected', () => log.info({ broker, node: connection.node }, 'RabbitMQ event stream: AMQP connection open'));
    const entry: Broker = {
      target,
      connection,
      batches: new Set(),
      pinned: false,
      missingExchange: false,
      stream: new RabbitEventStream({
        connection,
        ...(this.o.missingRetryMs !== undefined ? { missingRetryMs: this.o.missingRetryMs } : {}),
        onEvent: (event) => hooks.onEvent(broker, event),
        onSubscribed: () => {
          log.info({ broker, node: connection.node }, 'subscribed to RabbitMQ events: re-verifying every batch on this broker');
          entry.missingExchange = false;
          hooks.onSubscribed(broker);
        },
        onUnsubscribed: () => {
          log.warn({ broker }, 'RabbitMQ event stream lost: the cache expires entries until it is back');
          hooks.onUnsubscribed(broker);
        },
        onExchangeMissing: () => {
          if (entry.missingExchange) return;
          log.warn({ broker }, 'RabbitMQ broker has no amq.rabbitmq.event exchange (rabbitmq_event_exchange plugin not enabled): drift is repaired by the periodic resync only');
          entry.missingExchange = true;
          hooks.onStateChanged(broker);
        },
        onError: (err) => log.warn({ broker, err }, 'RabbitMQ event stream error'),
      }),
    };
    this.brokers.set(broker, entry);
    // Events are an optimisation over TTLs and the resync: the operator works without them.
    if (this.o.enabled) void entry.stream.start().catch((err: Error) => log.warn({ broker, err: err.message }, 'RabbitMQ event stream not available yet'));
    return entry;
  }

  private async leave(broker: string, batch: string): Promise<void> {
    const b = this.brokers.get(broker);
    if (!b) return;
    b.batches.delete(batch);
    if (b.batches.size > 0 || b.pinned) return;
    this.brokers.delete(broker);
    this.o.log.info({ broker }, 'no batch uses this broker any more: its event stream is stopped');
    await this.close(b);
    this.o.hooks.onUnsubscribed(broker);
  }

  private async close(b: Broker): Promise<void> {
    await b.stream.stop();
    await b.connection.close();
  }
}
