/**
 * What rabbitbatch observes in RabbitMQ, as plain data. The planner compares these with the
 * desired spec; the management client produces them from `GET /api/...` (with
 * `disable_stats=true&columns=...`), the event stream produces `RabbitEvent`s. Arguments are kept
 * as RabbitMQ returns them.
 */
import type { BindingKey } from './identity.js';
export type Arguments = Record<string, string | number | boolean>;

export interface ObservedExchange {
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: Arguments;
}

export interface ObservedQueue {
  name: string;
  /** classic | quorum | stream (RabbitMQ 3.10 reports `type`). */
  type: string;
  durable: boolean;
  autoDelete: boolean;
  arguments: Arguments;
  /** Present when read with stats (single-queue GET); undefined in stats-free listings. */
  messages?: number;
  consumers?: number;
}

export interface ObservedBinding extends BindingKey {
  arguments: Arguments;
  /** RabbitMQ's `properties_key`, needed to delete the binding. */
  propertiesKey: string;
}

/** Everything rabbitbatch needs to know about one vhost. */
export interface ObservedVhost {
  vhost: string;
  exists: boolean;
  exchanges: Map<string, ObservedExchange>;
  queues: Map<string, ObservedQueue>;
  /** Bindings with a non-empty source only (default-exchange bindings are implicit). */
  bindings: ObservedBinding[];
}

/** One change RabbitMQ reported on `amq.rabbitmq.event` (rabbitmq_event_exchange). */
export type RabbitEvent =
  | { kind: 'queue' | 'exchange'; action: string; vhost: string; name: string; user?: string }
  | ({ kind: 'binding'; action: string; vhost: string; user?: string } & BindingKey)
  | { kind: 'vhost'; action: string; vhost: string; name: string; user?: string }
  | { kind: 'policy' | 'other'; action: string; vhost: string; name: string; user?: string };
