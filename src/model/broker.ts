/**
 * The ports through which everything above talks to a broker: `ManagementApi` (the management
 * HTTP API; `ManagementClient` in src/rabbit implements it over a pooled undici client) and
 * `ObservedStateSource` (observed state, straight from the API or through the cache).
 * Failures are the error classes of errors.ts.
 */
import type { BindingSpec, ExchangeSpec, OperatorPolicySpec, PolicySpec, QueueSpec } from '../api/schema.js';
import type { PolicyKind } from './identity.js';
import type { Operation } from './operation.js';
import type { ObservedBinding, ObservedExchange, ObservedPolicy, ObservedQueue, ObservedVhost } from './observed.js';

export interface ManagementApi {
  /** Base URL without credentials, for logs, metrics and status (never holds the password). */
  readonly endpoint: string;
  /**
   * The broker this client reaches (its cluster name), once known: connections to one broker
   * (two Secrets, other credentials) share one cache partition, claims and event stream.
   */
  broker?: string;
  /** The broker's cluster name (`/api/overview`), where the client can ask. */
  clusterName?(): Promise<string>;
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
  /** Policies (`policy`) or operator policies (`operator-policy`) of a vhost. */
  listPolicies(vhost: string, kind: PolicyKind): Promise<ObservedPolicy[]>;
  /** PUT: creates or changes the policy in place (RabbitMQ re-applies it to the matching objects). */
  putPolicy(vhost: string, kind: PolicyKind, policy: PolicySpec | OperatorPolicySpec): Promise<void>;
  /** 404 resolves `false`. */
  deletePolicy(vhost: string, kind: PolicyKind, name: string): Promise<boolean>;
  /** PUT /api/vhosts/{vhost}: needs the administrator tag (401/403 otherwise). */
  putVhost(vhost: string): Promise<void>;
}

/** Where the reconciler gets observed state: straight from the API, or through the cache. */
export interface ObservedStateSource {
  /** `wanted`: the exchange and queue names the caller will look at, a hint a cache may use; defaults to every name. */
  observe(api: ManagementApi, vhost: string, wanted?: ReadonlySet<string>): Promise<ObservedVhost>;
  /** Before each operation the operator makes: its event will be the operator's own echo. */
  expectWrite?(api: ManagementApi, vhost: string, op: Operation): void;
  /** After each operation the operator made (write-through; a failed one makes the state unknown). */
  recordWrite(api: ManagementApi, vhost: string, op: Operation, ok: boolean, propertiesKey?: string): void;
  /** Forget what is known of a vhost: the next observe reads RabbitMQ. */
  invalidate(api: ManagementApi, vhost: string): void;
}
