/**
 * What rabbitbatch observes in RabbitMQ, as plain data. The planner compares these with the
 * desired spec; the management client produces them from `GET /api/...` (with
 * `disable_stats=true&columns=...`). Arguments are kept as RabbitMQ returns them.
 */
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

export interface ObservedBinding {
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey: string;
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
