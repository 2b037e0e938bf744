/**
 * What an export reads, whatever the source (a live broker, a definitions file, the official
 * operator's manifests): every vhost's exchanges, queues, bindings and policies as plain data,
 * before anything is decided about them. `select.ts` turns it into batch items.
 */

/** Argument values as the source holds them; only scalars fit a RabbitQueueBatch. */
export type RawArguments = Record<string, unknown>;

export interface TopologyExchange {
  vhost: string;
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  arguments: RawArguments;
}

export interface TopologyQueue {
  vhost: string;
  name: string;
  type: string;
  durable: boolean;
  autoDelete: boolean;
  /** Owned by one client connection (a live broker says so; files never hold such queues). */
  exclusive: boolean;
  arguments: RawArguments;
}

export interface TopologyBinding {
  vhost: string;
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey: string;
  arguments: RawArguments;
}

export interface TopologyPolicy {
  vhost: string;
  name: string;
}

export interface Topology {
  /** The vhosts the source knows (a `--vhost` that is not among them is an error). */
  vhosts: string[];
  exchanges: TopologyExchange[];
  queues: TopologyQueue[];
  bindings: TopologyBinding[];
  policies: TopologyPolicy[];
  /** Objects the source holds that are no topology rabbitbatch declares, with why (e.g. an
   * operator's `User` resource, or policies the user may not read). */
  notes: Skipped[];
}

export interface Skipped {
  /** `exchange/<vhost>/<name>`, `queue/...`, `binding/...`, `policy/...`, or a source object. */
  what: string;
  reason: string;
}

/** Input that is not what it claims to be: the message names the file, the object and the field. */
export class ExportInputError extends Error {}

export function emptyTopology(): Topology {
  return { vhosts: [], exchanges: [], queues: [], bindings: [], policies: [], notes: [] };
}
