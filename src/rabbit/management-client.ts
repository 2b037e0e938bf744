/**
 * The RabbitMQ management HTTP API over one pooled keep-alive connection (`HttpPool`).
 *
 * Guarantees
 * - Listings ask for `disable_stats=true&columns=...`: for ~300 queues ~24 KB instead of ~420 KB.
 * - PUT bodies always carry `durable` and `auto_delete` (an empty body would declare a
 *   non-durable queue); queues carry `x-queue-type` for quorum and stream, exchanges `type`
 *   and `internal`.
 * - Vhost and object names are percent-encoded as one path segment each (`/` → `%2F`).
 * - `endpoint` and every error message are free of credentials (they travel in a header).
 *
 * Failure modes
 * - Any non-2xx answer the caller did not expect → `ManagementError(status, RabbitMQ's "reason")`.
 * - No answer → `BrokerUnavailableError`; idempotent calls are retried with backoff behind a
 *   circuit breaker (`resilience.ts`), which then fails fast while the broker stays away.
 * - A 400 that says a cluster node went away mid-request (`isClusterTransient`) is asked again a
 *   few times, then becomes `BrokerUnavailableError` (retried with backoff), not a refusal.
 */
import type { BindingSpec, ExchangeSpec, OperatorPolicySpec, PolicySpec, QueueSpec } from '../api/schema.js';
import type { PolicyKind } from '../model/identity.js';
import { HttpPool, type HttpPoolOptions, type HttpPoolStats, type HttpResponse } from './http-pool.js';
import { BrokerUnavailableError, ManagementError } from '../model/errors.js';
import type { ManagementApi } from '../model/broker.js';
import { queueArguments } from '../model/queue-arguments.js';
import { createResilience, type Resilience, type ResilienceOptions } from './resilience.js';
import type { Arguments, ObservedBinding, ObservedExchange, ObservedPolicy, ObservedQueue } from '../model/observed.js';

export interface ManagementClientOptions extends Omit<HttpPoolOptions, 'warmHeaders' | 'warmPath'> {
  /** Management API user. Required. */
  username: string;
  /** Its password; sent as basic auth, never logged. Required. */
  password: string;
  /** Open the pool's minimum number of sockets in the background at construction. Defaults to true. */
  warm?: boolean;
  /** Circuit breaker and retry settings. Defaults to `createResilience`'s defaults. */
  resilience?: Omit<ResilienceOptions, 'endpoint' | 'registry'>;
}

// ---- RabbitMQ's JSON, and its mapping to the Observed* types (pure, unit-tested) ----

export interface RawQueue {
  name: string;
  type?: string;
  durable: boolean;
  auto_delete: boolean;
  arguments?: Arguments;
  messages?: number;
  messages_ready?: number;
  consumers?: number;
  policy?: string | null;
}
export interface RawPolicy {
  name: string;
  pattern: string;
  'apply-to': string;
  priority: number;
  definition: Record<string, unknown>;
}
export interface RawExchange {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments?: Arguments;
}
export interface RawBinding {
  source: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments?: Arguments;
  properties_key: string;
}

// `policy` comes from the queue record itself (no stats needed); `operator_policy` and
// `effective_policy_definition` are stats, so rabbitbatch works the operator policy out itself.
const QUEUE_COLUMNS = 'name,type,durable,auto_delete,arguments,policy';
const EXCHANGE_COLUMNS = 'name,type,durable,auto_delete,internal,arguments';
const BINDING_COLUMNS = 'source,destination,destination_type,routing_key,arguments,properties_key';

/**
 * Maps a queue. With `withCounts` (a single-queue GET) missing counts are 0: RabbitMQ fills in
 * `messages` only after its first stats emission, a few seconds after the queue is created.
 * Without it (stats-free listings) counts stay undefined, meaning "not read".
 */
export function toObservedQueue(q: RawQueue, withCounts = false): ObservedQueue {
  const queue: ObservedQueue = { name: q.name, type: q.type ?? 'classic', durable: q.durable, autoDelete: q.auto_delete, arguments: q.arguments ?? {} };
  if (withCounts || q.messages !== undefined || q.messages_ready !== undefined) queue.messages = q.messages ?? q.messages_ready ?? 0;
  if (withCounts || q.consumers !== undefined) queue.consumers = q.consumers ?? 0;
  if (typeof q.policy === 'string' && q.policy !== '') queue.policy = q.policy;
  return queue;
}

export function toObservedPolicy(p: RawPolicy): ObservedPolicy {
  return { name: p.name, pattern: p.pattern, applyTo: p['apply-to'], priority: p.priority, definition: p.definition ?? {} };
}

/** Drops keys zod left undefined: RabbitMQ would refuse `null`. */
export function policyBody(p: PolicySpec | OperatorPolicySpec): string {
  const definition = Object.fromEntries(Object.entries(p.definition).filter(([, v]) => v !== undefined));
  return JSON.stringify({ pattern: p.pattern, 'apply-to': p.applyTo, priority: p.priority, definition });
}

export function toObservedExchange(e: RawExchange): ObservedExchange {
  return { name: e.name, type: e.type, durable: e.durable, autoDelete: e.auto_delete, internal: e.internal, arguments: e.arguments ?? {} };
}

export function toObservedBinding(b: RawBinding): ObservedBinding {
  return { source: b.source, destination: b.destination, destinationType: b.destination_type, routingKey: b.routing_key, arguments: b.arguments ?? {}, propertiesKey: b.properties_key };
}

export function queueBody(q: QueueSpec): string {
  return JSON.stringify({ durable: q.durable, auto_delete: q.autoDelete, arguments: queueArguments(q) });
}

export function exchangeBody(e: ExchangeSpec): string {
  return JSON.stringify({ type: e.type, durable: e.durable, auto_delete: e.autoDelete, internal: e.internal, arguments: e.arguments });
}

export function bindingBody(b: BindingSpec): string {
  return JSON.stringify({ routing_key: b.routingKey, arguments: b.arguments });
}

/**
 * One path segment: percent-encoded (the default vhost `/` becomes `%2F`), and `.`/`..` too,
 * which a URL parser would otherwise resolve as "this/parent directory".
 */
export function segment(name: string): string {
  return name === '.' || name === '..' ? name.replaceAll('.', '%2E') : encodeURIComponent(name);
}

const s = segment;
const bindingKind = (t: 'queue' | 'exchange') => (t === 'queue' ? 'q' : 'e');

/** Management API paths, relative to the endpoint. */
export const managementPaths = {
  overview: () => '/api/overview?columns=rabbitmq_version',
  clusterName: () => '/api/overview?columns=cluster_name',
  vhosts: () => '/api/vhosts?columns=name',
  exchanges: (vhost: string) => `/api/exchanges/${s(vhost)}?disable_stats=true&columns=${EXCHANGE_COLUMNS}`,
  exchange: (vhost: string, name: string) => `/api/exchanges/${s(vhost)}/${s(name)}`,
  queues: (vhost: string) => `/api/queues/${s(vhost)}?disable_stats=true&columns=${QUEUE_COLUMNS}`,
  queue: (vhost: string, name: string) => `/api/queues/${s(vhost)}/${s(name)}`,
  bindings: (vhost: string) => `/api/bindings/${s(vhost)}?columns=${BINDING_COLUMNS}`,
  vhost: (vhost: string) => `/api/vhosts/${s(vhost)}`,
  policies: (vhost: string, kind: PolicyKind) => `/api/${kind === 'policy' ? 'policies' : 'operator-policies'}/${s(vhost)}`,
  policy: (vhost: string, kind: PolicyKind, name: string) => `/api/${kind === 'policy' ? 'policies' : 'operator-policies'}/${s(vhost)}/${s(name)}`,
  binding: (vhost: string, b: Pick<ObservedBinding, 'source' | 'destination' | 'destinationType'>) => `/api/bindings/${s(vhost)}/e/${s(b.source)}/${bindingKind(b.destinationType)}/${s(b.destination)}`,
} as const;

/** `?a=true&b=true` for the flags that are set, or nothing. */
function flags(o: Record<string, boolean | undefined>): string {
  const set = Object.entries(o).filter(([, on]) => on).map(([k]) => `${k}=true`);
  return set.length ? `?${set.join('&')}` : '';
}

/** RabbitMQ answers errors as `{"error": "...", "reason": "..."}`. */
export function reasonOf(text: string): string {
  try {
    const body = JSON.parse(text) as { reason?: unknown; error?: unknown };
    const reason = body.reason ?? body.error;
    return typeof reason === 'string' ? reason : JSON.stringify(reason ?? text);
  } catch {
    return text.slice(0, 500);
  }
}

/**
 * 400 answers RabbitMQ gives while a cluster node goes down (seen on 3.10 declaring quorum
 * queues: `cluster_not_formed`, a `noproc` from the lost node's supervisor, `nodedown`): the
 * request was fine, a member of the cluster was not.
 */
export function isClusterTransient(reason: string): boolean {
  return /cluster_not_formed|\bnoproc\b|\bnodedown\b|^Request to node \S+ failed/.test(reason);
}

/** Attempts of a request answered with such a 400 (250 ms, 500 ms, ... between them: ~2.5 s in all). */
const CLUSTER_TRANSIENT_ATTEMPTS = 5;

// ---- The client ----

export class ManagementClient implements ManagementApi {
  readonly endpoint: string;
  broker?: string;
  private readonly http: HttpPool;
  private readonly auth: string;
  private readonly resilience: Resilience;

  constructor(o: ManagementClientOptions) {
    const url = new URL(o.url);
    url.username = '';
    url.password = '';
    this.auth = `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}`;
    this.http = new HttpPool({ ...o, url: url.href, warmHeaders: { authorization: this.auth } });
    this.endpoint = this.http.endpoint;
    this.resilience = createResilience({ ...o.resilience, endpoint: this.endpoint, ...(o.registry ? { registry: o.registry } : {}) });
    if (o.warm !== false) void this.http.warm().catch(() => undefined);
  }

  /** closed | open | halfOpen | isolated (cockatiel's names). */
  get breakerState(): string {
    return String(this.resilience.breaker.state);
  }

  /** Opens the pool's minimum number of sockets now. */
  async warm(): Promise<void> {
    await this.http.warm();
  }

  poolStats(): HttpPoolStats {
    return this.http.stats();
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  async overview(): Promise<{ rabbitmqVersion: string }> {
    const raw = await this.json<{ rabbitmq_version?: string }>(managementPaths.overview());
    return { rabbitmqVersion: raw.rabbitmq_version ?? 'unknown' };
  }

  /** The broker's cluster name: every node of one cluster reports the same one. */
  async clusterName(): Promise<string> {
    return (await this.json<{ cluster_name?: string }>(managementPaths.clusterName())).cluster_name ?? '';
  }

  /** A `management`-tagged user may not GET /api/vhosts/{v} (administrator only) but sees, in the
   * listing, every vhost it has permissions on: that is the question that matters here. */
  async vhostExists(vhost: string): Promise<boolean> {
    return (await this.json<{ name: string }[]>(managementPaths.vhosts())).some((x) => x.name === vhost);
  }

  async listExchanges(vhost: string): Promise<ObservedExchange[]> {
    // The default exchange ("") is listed too and cannot be declared; amq.* stay visible for externals.
    return (await this.json<RawExchange[]>(managementPaths.exchanges(vhost))).filter((e) => e.name !== '').map(toObservedExchange);
  }

  async listQueues(vhost: string): Promise<ObservedQueue[]> {
    return (await this.json<RawQueue[]>(managementPaths.queues(vhost))).map((q) => toObservedQueue(q));
  }

  async listBindings(vhost: string): Promise<ObservedBinding[]> {
    // Default-exchange bindings (source "") are implicit, one per queue.
    return (await this.json<RawBinding[]>(managementPaths.bindings(vhost))).filter((b) => b.source !== '').map(toObservedBinding);
  }

  async getQueue(vhost: string, name: string): Promise<ObservedQueue | undefined> {
    const res = await this.call('GET', `${managementPaths.queue(vhost, name)}?columns=${QUEUE_COLUMNS},messages,messages_ready,consumers`, undefined, [404]);
    return res.status === 404 ? undefined : toObservedQueue(JSON.parse(res.text) as RawQueue, true);
  }

  async getExchange(vhost: string, name: string): Promise<ObservedExchange | undefined> {
    const res = await this.call('GET', `${managementPaths.exchange(vhost, name)}?columns=${EXCHANGE_COLUMNS}`, undefined, [404]);
    return res.status === 404 ? undefined : toObservedExchange(JSON.parse(res.text) as RawExchange);
  }

  async putExchange(vhost: string, e: ExchangeSpec): Promise<void> {
    await this.call('PUT', managementPaths.exchange(vhost, e.name), exchangeBody(e));
  }

  async putQueue(vhost: string, q: QueueSpec): Promise<void> {
    await this.call('PUT', managementPaths.queue(vhost, q.name), queueBody(q));
  }

  async postBinding(vhost: string, b: BindingSpec): Promise<string> {
    const res = await this.call('POST', managementPaths.binding(vhost, b), bindingBody(b));
    // RabbitMQ answers 201 with `Location: .../<properties key>` and an empty body.
    const location = res.location ?? '';
    return decodeURIComponent(location.slice(location.lastIndexOf('/') + 1));
  }

  async deleteExchange(vhost: string, name: string, opts: { ifUnused?: boolean } = {}): Promise<boolean> {
    return (await this.call('DELETE', managementPaths.exchange(vhost, name) + flags({ 'if-unused': opts.ifUnused }), undefined, [404])).status !== 404;
  }

  async deleteQueue(vhost: string, name: string, opts: { ifEmpty?: boolean; ifUnused?: boolean } = {}): Promise<boolean> {
    const path = managementPaths.queue(vhost, name);
    try {
      return (await this.call('DELETE', path + flags({ 'if-empty': opts.ifEmpty, 'if-unused': opts.ifUnused }), undefined, [404])).status !== 404;
    } catch (err) {
      // RabbitMQ 3.10 refuses if-empty/if-unused on quorum queues: check the queue ourselves,
      // then delete. Message counts are stats (refreshed every few seconds), so this is weaker
      // than the broker's own check; the README says so.
      if (!(err instanceof ManagementError && err.status === 400 && /not supported by quorum queues/.test(err.reason))) throw err;
      const queue = await this.getQueue(vhost, name);
      if (!queue) return false;
      const messages = queue.messages ?? 0;
      const consumers = queue.consumers ?? 0;
      if ((opts.ifEmpty && messages > 0) || (opts.ifUnused && consumers > 0)) {
        throw new ManagementError(400, `queue '${name}' holds ${messages} messages and has ${consumers} consumers`, 'DELETE', path);
      }
      return (await this.call('DELETE', path, undefined, [404])).status !== 404;
    }
  }

  async deleteBinding(vhost: string, b: Pick<ObservedBinding, 'source' | 'destination' | 'destinationType' | 'propertiesKey'>): Promise<boolean> {
    return (await this.call('DELETE', `${managementPaths.binding(vhost, b)}/${s(b.propertiesKey)}`, undefined, [404])).status !== 404;
  }

  /**
   * A user without the `policymaker` (policies) or `administrator` (operator policies) tag may
   * not list them: that reads as none, so a batch declaring no policies works with a
   * `management` user as before, and one declaring some is refused at its first PUT, which
   * names the credentials.
   */
  async listPolicies(vhost: string, kind: PolicyKind): Promise<ObservedPolicy[]> {
    const res = await this.call('GET', managementPaths.policies(vhost, kind), undefined, [401, 403]);
    return res.status >= 400 ? [] : (JSON.parse(res.text) as RawPolicy[]).map(toObservedPolicy);
  }

  async putPolicy(vhost: string, kind: PolicyKind, policy: PolicySpec | OperatorPolicySpec): Promise<void> {
    await this.call('PUT', managementPaths.policy(vhost, kind, policy.name), policyBody(policy));
  }

  async deletePolicy(vhost: string, kind: PolicyKind, name: string): Promise<boolean> {
    return (await this.call('DELETE', managementPaths.policy(vhost, kind, name), undefined, [404])).status !== 404;
  }

  async putVhost(vhost: string): Promise<void> {
    await this.call('PUT', managementPaths.vhost(vhost), '{}');
  }

  /** GET any management API path (reads only): for read-only tools such as `rabbitbatch export`. */
  async read<T>(path: string): Promise<T> {
    return this.json<T>(path);
  }

  private async json<T>(path: string): Promise<T> {
    return JSON.parse((await this.call('GET', path)).text) as T;
  }

  private call(method: string, path: string, body?: string, allowed: number[] = []): Promise<HttpResponse> {
    // Through the breaker; GET/PUT/DELETE are idempotent and may be retried, POST (binding) not.
    return this.resilience.run(() => this.callOnce(method, path, body, allowed), method !== 'POST');
  }

  private async callOnce(method: string, path: string, body: string | undefined, allowed: number[]): Promise<HttpResponse> {
    const headers: Record<string, string> = { authorization: this.auth };
    if (body !== undefined) headers['content-type'] = 'application/json';
    for (let attempt = 1; ; attempt++) {
      const res = await this.http.request(method, path, body, headers);
      if ((res.status >= 200 && res.status < 300) || allowed.includes(res.status)) return res;
      const reason = reasonOf(res.text);
      // A node of the cluster going away answers some requests with a 400 that is not about the
      // request: ask again (a re-declare is idempotent), then report the broker unavailable.
      if (res.status === 400 && isClusterTransient(reason)) {
        if (attempt < CLUSTER_TRANSIENT_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, 250 * attempt));
          continue;
        }
        throw new BrokerUnavailableError(`${method} ${this.endpoint}${path.split('?')[0]}: a cluster node was lost mid-request (${reason.replace(/\s+/g, ' ').slice(0, 300)})`);
      }
      throw new ManagementError(res.status, reason, method, path.split('?')[0]!);
    }
  }
}
