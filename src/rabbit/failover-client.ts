/**
 * One management API over several nodes of one RabbitMQ cluster: every node has its own client
 * (`ManagementClient`: its own pool and circuit breaker), and each request goes to a node that
 * answers.
 *
 * Guarantees
 * - Sticky: requests go to the node that answered last, so a healthy cluster keeps one warm pool
 *   busy and the others idle.
 * - A node that does not answer (refused, reset, timed out, or its own breaker open) is taken out
 *   and the request goes on to the next node at once. The node is tried again after a pause
 *   (cockatiel's decorrelated-jitter exponential backoff: up to ~1.4 s the first time, growing to
 *   30 s by default), and is back on its first answer.
 * - The circuit breaker is per node: one lost node never makes requests to the others fail fast.
 * - An answer is final, whatever its status: a 4xx (the request's own fault) or a 5xx from a node
 *   that answered is not sent again elsewhere. Only "no answer" moves on. A binding POST that got
 *   no answer may thus reach a second node; RabbitMQ treats an identical binding as one.
 * - `endpoint` is the whole node list (stable whichever node serves), so cache keys, claims and
 *   status do not change when a node fails.
 *
 * Failure modes
 * - No node answers → `BrokerUnavailableError` naming each node's error. When every node is in
 *   backoff, the one due first is tried anyway (a request never fails without asking anyone).
 * - A TLS failure (`TlsError`) is not failed over: it is a CA or address problem to fix, and it
 *   reaches the caller with its own message.
 */
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { BindingSpec, ExchangeSpec, OperatorPolicySpec, PolicySpec, QueueSpec } from '../api/schema.js';
import type { PolicyKind } from '../model/identity.js';
import type { HttpPoolStats } from './http-pool.js';
import type { ManagementApi } from '../model/broker.js';
import { BrokerUnavailableError, TlsError } from '../model/errors.js';
import type { ObservedBinding, ObservedExchange, ObservedPolicy, ObservedQueue } from '../model/observed.js';

/** A node's client: the management API, plus the pool figures and shutdown `ManagementClient` has. */
export type NodeClient = ManagementApi & { close(): Promise<void>; poolStats?(): HttpPoolStats };

export interface FailoverOptions {
  /** Scale of the first pause before a node that stopped answering is tried again (jittered). Defaults to 1000 ms. */
  initialRetryDelayMs?: number;
  /** Longest pause. Defaults to 30000 ms. */
  maxRetryDelayMs?: number;
  /** Clock, for tests. Defaults to Date.now. */
  now?: () => number;
}

interface NodeState {
  client: NodeClient;
  /** Not before this time (ms) while out; 0 when in. */
  retryAt: number;
  backoff: IBackoff<unknown> | undefined;
  lastError: string | undefined;
}

export class FailoverManagementClient implements ManagementApi {
  readonly endpoint: string;
  broker?: string;
  private readonly nodes: NodeState[];
  private preferred = 0;
  private readonly backoff: ExponentialBackoff<unknown>;
  private readonly now: () => number;

  constructor(clients: NodeClient[], o: FailoverOptions = {}) {
    if (clients.length === 0) throw new Error('FailoverManagementClient needs at least one node');
    this.nodes = clients.map((client) => ({ client, retryAt: 0, backoff: undefined, lastError: undefined }));
    this.endpoint = clients.map((c) => c.endpoint).join(',');
    this.backoff = new ExponentialBackoff({ initialDelay: o.initialRetryDelayMs ?? 1_000, maxDelay: o.maxRetryDelayMs ?? 30_000 });
    this.now = o.now ?? Date.now;
  }

  /** Each node's endpoint, whether it is in, and its last error while out. */
  nodeStates(): { endpoint: string; up: boolean; retryInMs?: number; lastError?: string }[] {
    const now = this.now();
    return this.nodes.map((n) => ({
      endpoint: n.client.endpoint,
      up: n.retryAt === 0,
      ...(n.retryAt ? { retryInMs: Math.max(0, n.retryAt - now) } : {}),
      ...(n.lastError ? { lastError: n.lastError } : {}),
    }));
  }

  /** The node clients, in the order given (for checks that must ask every node). */
  clients(): readonly NodeClient[] {
    return this.nodes.map((n) => n.client);
  }

  /** Pool figures summed over the nodes (reuse ratio over all their requests). */
  poolStats(): HttpPoolStats {
    const all = this.nodes.map((n) => n.client.poolStats?.()).filter((s): s is HttpPoolStats => s !== undefined);
    const sum = (k: keyof HttpPoolStats) => all.reduce((acc, s) => acc + s[k], 0);
    const requests = sum('requests');
    const socketsCreated = sum('socketsCreated');
    return {
      requests,
      socketsCreated,
      reuseRatio: requests > 0 ? Math.max(0, 1 - socketsCreated / requests) : 0,
      active: sum('active'),
      idle: sum('idle'),
      pending: sum('pending'),
      size: sum('size'),
      max: sum('max'),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.client.close()));
  }

  /** The cluster name, from a node that answers. */
  clusterName(): Promise<string> {
    return this.route((c) => (c.clusterName ? c.clusterName() : Promise.resolve('')));
  }
  /** GET any management API path, from a node that answers (read-only tools: `rabbitbatch export`). */
  read<T>(path: string): Promise<T> {
    return this.route((c) => {
      const reader = c as NodeClient & { read?<U>(p: string): Promise<U> };
      if (!reader.read) throw new Error(`${c.endpoint} cannot read arbitrary paths`);
      return reader.read<T>(path);
    });
  }
  vhostExists(vhost: string): Promise<boolean> {
    return this.route((c) => c.vhostExists(vhost));
  }
  listExchanges(vhost: string): Promise<ObservedExchange[]> {
    return this.route((c) => c.listExchanges(vhost));
  }
  listQueues(vhost: string): Promise<ObservedQueue[]> {
    return this.route((c) => c.listQueues(vhost));
  }
  listBindings(vhost: string): Promise<ObservedBinding[]> {
    return this.route((c) => c.listBindings(vhost));
  }
  getQueue(vhost: string, name: string): Promise<ObservedQueue | undefined> {
    return this.route((c) => c.getQueue(vhost, name));
  }
  getExchange(vhost: string, name: string): Promise<ObservedExchange | undefined> {
    return this.route((c) => c.getExchange(vhost, name));
  }
  putExchange(vhost: string, exchange: ExchangeSpec): Promise<void> {
    return this.route((c) => c.putExchange(vhost, exchange));
  }
  putQueue(vhost: string, queue: QueueSpec): Promise<void> {
    return this.route((c) => c.putQueue(vhost, queue));
  }
  postBinding(vhost: string, binding: BindingSpec): Promise<string> {
    return this.route((c) => c.postBinding(vhost, binding));
  }
  deleteExchange(vhost: string, name: string, opts?: { ifUnused?: boolean }): Promise<boolean> {
    return this.route((c) => c.deleteExchange(vhost, name, opts));
  }
  deleteQueue(vhost: string, name: string, opts?: { ifEmpty?: boolean; ifUnused?: boolean }): Promise<boolean> {
    return this.route((c) => c.deleteQueue(vhost, name, opts));
  }
  deleteBinding(vhost: string, binding: Pick<ObservedBinding, 'source' | 'destination' | 'destinationType' | 'propertiesKey'>): Promise<boolean> {
    return this.route((c) => c.deleteBinding(vhost, binding));
  }
  listPolicies(vhost: string, kind: PolicyKind): Promise<ObservedPolicy[]> {
    return this.route((c) => c.listPolicies(vhost, kind));
  }
  putPolicy(vhost: string, kind: PolicyKind, policy: PolicySpec | OperatorPolicySpec): Promise<void> {
    return this.route((c) => c.putPolicy(vhost, kind, policy));
  }
  deletePolicy(vhost: string, kind: PolicyKind, name: string): Promise<boolean> {
    return this.route((c) => c.deletePolicy(vhost, kind, name));
  }
  putVhost(vhost: string): Promise<void> {
    return this.route((c) => c.putVhost(vhost));
  }

  /** The nodes to try, in order: the preferred one first, then the others that are in or due. */
  private candidates(): NodeState[] {
    const now = this.now();
    const ordered = this.nodes.map((_, i) => this.nodes[(this.preferred + i) % this.nodes.length]!);
    const ready = ordered.filter((n) => n.retryAt <= now);
    if (ready.length > 0) return ready;
    return [ordered.reduce((a, b) => (b.retryAt < a.retryAt ? b : a))];
  }

  private async route<T>(call: (c: NodeClient) => Promise<T>): Promise<T> {
    const errors: string[] = [];
    for (const node of this.candidates()) {
      try {
        const result = await call(node.client);
        node.retryAt = 0;
        node.backoff = undefined;
        node.lastError = undefined;
        this.preferred = this.nodes.indexOf(node);
        return result;
      } catch (err) {
        if (!(err instanceof BrokerUnavailableError) || err instanceof TlsError) throw err;
        const now = this.now();
        // Requests in flight when a node dies all fail: only the first one (or a failed retry
        // after the pause) lengthens the pause, so it does not grow with the concurrency.
        if (node.retryAt === 0 || node.retryAt <= now) {
          node.backoff = node.backoff ? node.backoff.next(undefined) : this.backoff.next();
          node.retryAt = now + node.backoff.duration;
        }
        node.lastError = err.message;
        errors.push(`${node.client.endpoint}: ${err.message}`);
      }
    }
    throw new BrokerUnavailableError(`no node of ${this.endpoint} answered (${errors.join('; ')})`);
  }
}
