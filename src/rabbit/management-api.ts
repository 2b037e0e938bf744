/**
 * The small interface the batch executor and the cache use to talk to the RabbitMQ management
 * HTTP API. `ManagementClient` (management-client.ts) implements it over a pooled undici client.
 */
import type { BindingSpec, ExchangeSpec, QueueSpec } from '../api/schema.js';
import type { ObservedBinding, ObservedExchange, ObservedQueue } from './types.js';

export interface ManagementApi {
  /** Base URL without credentials, for logs, metrics and status (never holds the password). */
  readonly endpoint: string;
  vhostExists(vhost: string): Promise<boolean>;
  listExchanges(vhost: string): Promise<ObservedExchange[]>;
  listQueues(vhost: string): Promise<ObservedQueue[]>;
  /** Non-default-exchange bindings only. */
  listBindings(vhost: string): Promise<ObservedBinding[]>;
  /** With message and consumer counts; undefined when missing (404). */
  getQueue(vhost: string, name: string): Promise<ObservedQueue | undefined>;
  getExchange(vhost: string, name: string): Promise<ObservedExchange | undefined>;
  /** PUT; resolves on 201/204; a 400 "inequivalent arg" rejects with ManagementError. */
  putExchange(vhost: string, exchange: ExchangeSpec): Promise<void>;
  putQueue(vhost: string, queue: QueueSpec): Promise<void>;
  /** POST; resolves with the new binding's properties key. */
  postBinding(vhost: string, binding: BindingSpec): Promise<string>;
  /** 404 resolves `false` (already gone). */
  deleteExchange(vhost: string, name: string, opts?: { ifUnused?: boolean }): Promise<boolean>;
  /** 404 resolves `false`; 400 (not empty / in use with the flags) rejects with ManagementError. */
  deleteQueue(vhost: string, name: string, opts?: { ifEmpty?: boolean; ifUnused?: boolean }): Promise<boolean>;
  deleteBinding(vhost: string, binding: Pick<ObservedBinding, 'source' | 'destination' | 'destinationType' | 'propertiesKey'>): Promise<boolean>;
}

/** A non-2xx answer of the management API. `reason` is RabbitMQ's own text. */
export class ManagementError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}`);
    this.name = 'ManagementError';
  }
}

/** Connection refused, reset, timeout: the broker is unreachable rather than saying no. */
export class BrokerUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerUnavailableError';
  }
}
