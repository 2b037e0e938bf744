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
  /** The policy RabbitMQ applies to it (listed without stats); undefined when none. */
  policy?: string;
  /** Present when read with stats (single-queue GET); undefined in stats-free listings. */
  messages?: number;
  consumers?: number;
}

export interface ObservedBinding extends BindingKey {
  arguments: Arguments;
  /** RabbitMQ's `properties_key`, needed to delete the binding. */
  propertiesKey: string;
}

/** A policy or operator policy as RabbitMQ returns it (`GET /api/policies/{vhost}`). */
export interface ObservedPolicy {
  name: string;
  pattern: string;
  applyTo: string;
  priority: number;
  definition: Record<string, unknown>;
}

/** Everything rabbitbatch needs to know about one vhost. */
export interface ObservedVhost {
  vhost: string;
  exists: boolean;
  exchanges: ReadonlyMap<string, ObservedExchange>;
  queues: ReadonlyMap<string, ObservedQueue>;
  /** Bindings with a non-empty source only (default-exchange bindings are implicit). */
  bindings: ObservedBinding[];
  /** Policies and operator policies by name (absent: none read, e.g. a vhost that does not exist). */
  policies?: ReadonlyMap<string, ObservedPolicy>;
  operatorPolicies?: ReadonlyMap<string, ObservedPolicy>;
}

/** One change RabbitMQ reported on `amq.rabbitmq.event` (rabbitmq_event_exchange). */
export type RabbitEvent =
  | { kind: 'queue' | 'exchange'; action: string; vhost: string; name: string; user?: string }
  | ({ kind: 'binding'; action: string; vhost: string; user?: string } & BindingKey)
  | { kind: 'vhost'; action: string; vhost: string; name: string; user?: string }
  /** `policy.set` / `policy.cleared`, for policies and operator policies alike. */
  | { kind: 'policy'; action: string; vhost: string; name: string; user?: string }
  | { kind: 'other'; action: string; vhost: string; name: string; user?: string };
