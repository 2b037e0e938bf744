/**
 * Resolves a batch's RabbitMQ connection: its `spec.rabbitmq.connectionSecret` (a Secret in the
 * batch's own namespace — never another one) or the operator's default connection. Clients are
 * shared per endpoint and credentials, so every batch on one broker uses one pooled client.
 *
 * A connection may list several nodes of one cluster (`uri` / `RABBITMQ_URL` with commas): each
 * node gets its own client, and requests go to one node at a time, moving on when it stops
 * answering (src/rabbit/failover-client.ts). Before the first use, every node is asked for its
 * cluster name; a list that mixes brokers is refused, naming the Secret and the key, and nothing
 * is applied. Nodes that did not answer then are asked again (at most every 30 s) until they do.
 *
 * Every connection is then named by its broker: the cluster name from `/api/overview`. Two
 * Secrets for one broker (other users, `127.0.0.1` and `localhost`) are one broker: the same
 * claims, cache partition and event stream. A connection also has AMQP addresses for its event
 * stream: a Secret's `amqpUri`, or derived from `uri` (src/model/amqp-address.ts). A given
 * `amqpUri` is asked once whether it answers and is the same broker; if not, the batch is
 * refused, naming the Secret and the key, and nothing is applied.
 *
 * A connection's clients live while a batch uses them: `release` (the batch is gone, or now
 * names another connection) closes the clients nobody uses any more. The default connection's
 * stay for the life of the process (readiness, the event stream of the default broker).
 */
import { createHash } from 'node:crypto';
import type { RabbitQueueBatch } from '../api/schema.js';
import type { RabbitConnection } from '../config/config.js';
import type { SecretApi } from '../kube/core-apis.js';
import { apiStatusCode } from '../kube/custom-object.js';
import type { ManagementApi } from '../model/broker.js';
import { BrokerUnavailableError, ConfigError } from '../model/errors.js';
import { Reason } from '../model/reason.js';
import { FailoverManagementClient, type NodeClient } from '../rabbit/failover-client.js';
import { amqpAddresses } from '../model/amqp-address.js';
import { nodeListProblems, splitNodeList } from '../model/node-list.js';
import { amqpClusterName, type AmqpTarget } from '../rabbit/amqp-check.js';
import { managementApiForNodes } from '../rabbit/node-clients.js';
import { checkSameBroker } from '../rabbit/same-broker.js';
import { connectionRef, keyOf } from './claims.js';

export interface ResolvedConnection {
  /** The batch's pooled client. */
  api: ManagementApi;
  /** The broker (cluster name): what claims, the cache and the event stream are keyed by. */
  broker?: string;
  /** Where the broker's event stream subscribes, with this connection's credentials. */
  events?: AmqpTarget;
  /** Set instead of `events` when the AMQP addresses derived from `uri` do not reach the broker. */
  eventsProblem?: string;
}

/** Store index: the connection Secret a batch names, as `namespace/name`. */
export const SECRETS_INDEX = 'connection-secrets';
export const secretOf = (b: RabbitQueueBatch): string[] => {
  const name = b.spec.rabbitmq?.connectionSecret?.name;
  return name ? [`${b.metadata.namespace}/${name}`] : [];
};

export type ClientFactory = (connection: RabbitConnection) => NodeClient & { clusterName?(): Promise<string> };

type Client = ManagementApi & { close(): Promise<void> };

/** Where a connection came from, for messages: "Secret ns/name key uri" or "RABBITMQ_URL". */
interface Source {
  label: string;
  /** "Secret ns/name key amqpUri" when the Secret gives one (then it is checked once). */
  amqpLabel?: string;
}

interface Verification {
  names: Map<string, string>;
  unanswered: string[];
  checkedAt: number;
  error?: ConfigError;
}

const RECHECK_MS = 30_000;

export class ConnectionResolver {
  private readonly clients = new Map<string, Client>();
  /** Per multi-node client: which nodes said which cluster name. */
  private readonly verified = new Map<string, Verification>();
  /** Passwords read from Secrets, so the logger can scrub them from any text. */
  readonly secrets = new Set<string>();
  /** The broker each connection reference resolved to last (claims compare brokers). */
  private readonly brokers = new Map<string, string>();
  /** Per client: its broker's cluster name, once asked. */
  private readonly clusterNames = new Map<string, string>();
  /** Per client: when its AMQP addresses were asked, and what was wrong (undefined: they reach the broker). */
  private readonly amqpChecked = new Map<string, { at: number; problem: string | undefined }>();
  /** Per connection reference: why its event stream cannot subscribe (derived addresses only). */
  private readonly eventProblems = new Map<string, string | undefined>();
  /** Which client each batch (namespace/name) uses: a client nobody uses is closed. */
  private readonly usedBy = new Map<string, string>();

  constructor(
    private readonly core: SecretApi,
    private readonly defaultConnection: RabbitConnection,
    private readonly createClient: ClientFactory,
    /** Told about every Secret read (its resourceVersion, or '' when missing), so it can be watched. */
    private readonly onSecretRead: (namespace: string, name: string, version: string) => void = () => undefined,
    /** The Secret as a live watch holds it (secret-watch.ts), so a reconcile need not read it; undefined: read it. */
    private readonly watchedSecret: (namespace: string, name: string) => { data?: Record<string, string> } | undefined = () => undefined,
  ) {
    this.secrets.add(defaultConnection.password);
  }

  async resolve(batch: RabbitQueueBatch): Promise<ResolvedConnection> {
    const { connection, source } = await this.connectionFor(batch);
    const id = this.idOf(connection);
    const addresses = amqpAddresses(splitNodeList(connection.url), connection.amqpUri);
    if (addresses.problems.length > 0) {
      throw new ConfigError(Reason.InvalidConnection, `${source.amqpLabel ?? 'RABBITMQ_AMQP_URL'}: ${addresses.problems.join('; ')}; nothing was applied`);
    }
    const api = this.client(connection, id);
    this.use(keyOf(batch), id);
    if (api instanceof FailoverManagementClient) await this.verifySameBroker(id, api, source);
    const broker = await this.clusterNameOf(id, api);
    const events: AmqpTarget = { urls: addresses.urls, username: connection.username, password: connection.password, ...(connection.ca ? { ca: connection.ca } : {}) };
    this.brokers.set(connectionRef(batch), broker);
    // The default connection's stream is set up apart (defaultBroker); a Secret's addresses are asked once.
    if (source.label === 'RABBITMQ_URL') return { api, broker, events };
    // The broker's name is not known yet (it did not answer): nothing to compare the AMQP side with.
    if (!this.clusterNames.has(id)) return { api, broker };
    const problem = await this.amqpProblem(id, events, broker, source);
    this.eventProblems.set(connectionRef(batch), problem);
    return { api, broker, ...(problem ? { eventsProblem: problem } : { events }) };
  }

  /** Why the event stream cannot use the batch's connection (derived AMQP addresses that fail), if so. */
  eventsProblemOf(batch: RabbitQueueBatch): string | undefined {
    return this.eventProblems.get(connectionRef(batch));
  }

  /** The broker of `batch` as last resolved (a batch not resolved yet in this process: unknown). */
  brokerOf(batch: RabbitQueueBatch): string | undefined {
    return this.brokers.get(connectionRef(batch));
  }

  /** The default connection's broker and event-stream target (asks the cluster name once). */
  async defaultBroker(): Promise<{ broker: string; events: AmqpTarget }> {
    const c = this.defaultConnection;
    const id = this.idOf(c);
    const broker = await this.clusterNameOf(id, this.client(c, id));
    this.brokers.set('default', broker);
    const addresses = amqpAddresses(splitNodeList(c.url), c.amqpUri);
    return { broker, events: { urls: addresses.urls, username: c.username, password: c.password, ...(c.ca ? { ca: c.ca } : {}) } };
  }

  /** The default connection's client (health checks, cache warming). */
  defaultClient(): ManagementApi {
    return this.client(this.defaultConnection, this.idOf(this.defaultConnection));
  }

  allClients(): ManagementApi[] {
    return [...this.clients.values()];
  }

  /** `batch` (namespace/name) is gone or uses no connection any more: close what nobody uses. */
  async release(batchKey: string): Promise<void> {
    const id = this.usedBy.get(batchKey);
    this.usedBy.delete(batchKey);
    if (id !== undefined) await this.closeUnused(id);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  private use(batchKey: string, id: string): void {
    const previous = this.usedBy.get(batchKey);
    this.usedBy.set(batchKey, id);
    if (previous !== undefined && previous !== id) void this.closeUnused(previous);
  }

  private async closeUnused(id: string): Promise<void> {
    if (id === this.idOf(this.defaultConnection) || [...this.usedBy.values()].includes(id)) return;
    const client = this.clients.get(id);
    this.clients.delete(id);
    this.verified.delete(id);
    this.clusterNames.delete(id);
    this.amqpChecked.delete(id);
    await client?.close();
  }

  /** The cluster name of the client's broker, asked once (a node list's check may know it already). */
  private async clusterNameOf(id: string, api: Client): Promise<string> {
    let name = this.clusterNames.get(id) ?? this.verified.get(id)?.names.values().next().value;
    if (name === undefined) {
      try {
        name = (await api.clusterName?.()) ?? '';
      } catch (err) {
        // Not answering: the reconcile goes on to fail where it always did (reading the vhost
        // back), with the endpoint in its status; the name is asked again next time.
        if (err instanceof BrokerUnavailableError) return api.endpoint;
        throw err;
      }
    }
    // A broker that does not say its name is known by its address.
    const broker = name || api.endpoint;
    this.clusterNames.set(id, broker);
    api.broker = broker;
    return broker;
  }

  /**
   * The AMQP addresses must answer and be the broker `uri` reaches. A given `amqpUri` that does
   * not is refused (nothing applied); addresses derived from `uri` that do not only cost the
   * event stream (said in the status), and are asked again every 30 s.
   */
  private async amqpProblem(id: string, target: AmqpTarget, broker: string, source: Source): Promise<string | undefined> {
    const previous = this.amqpChecked.get(id);
    if (previous && (previous.problem === undefined || Date.now() - previous.at < RECHECK_MS)) return this.refuseOrSay(previous.problem, source, target);
    let problem: string | undefined;
    try {
      const name = await amqpClusterName(target);
      if (name && name !== broker) problem = `reaches RabbitMQ cluster "${name}", but uri reaches "${broker}"`;
    } catch (err) {
      problem = `no node answered (${(err as Error).message})`;
    }
    this.amqpChecked.set(id, { at: Date.now(), problem });
    return this.refuseOrSay(problem, source, target);
  }

  private refuseOrSay(problem: string | undefined, source: Source, target: AmqpTarget): string | undefined {
    if (problem === undefined) return undefined;
    if (source.amqpLabel) throw new ConfigError(Reason.InvalidConnection, `${source.amqpLabel}: ${problem} (list the AMQP addresses of the same broker); nothing was applied`);
    return `${source.label.replace(/ key uri$/, '')} has no amqpUri, and the AMQP address derived from uri (${target.urls.join(', ')}) ${problem}: set amqpUri to the broker's AMQP address`;
  }

  private async connectionFor(batch: RabbitQueueBatch): Promise<{ connection: RabbitConnection; source: Source }> {
    const name = batch.spec.rabbitmq?.connectionSecret?.name;
    if (!name) return { connection: this.defaultConnection, source: { label: 'RABBITMQ_URL' } };
    const namespace = batch.metadata.namespace;
    // A Secret its watch holds needs no read: a change since arrives as an event and requeues the batch.
    const data = this.watchedSecret(namespace, name)?.data ?? (await this.readSecret(namespace, name));
    const field = (key: string) => (data?.[key] ? Buffer.from(data[key], 'base64').toString('utf8') : undefined);
    const [uri, username, password, ca, amqpUri] = [field('uri'), field('username'), field('password'), field('ca.crt'), data?.amqpUri !== undefined ? Buffer.from(data.amqpUri, 'base64').toString('utf8') : undefined];
    const missing = [['uri', uri], ['username', username], ['password', password]].filter(([, v]) => !v).map(([k]) => k);
    if (!uri || !username || !password) {
      throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} lacks ${missing.join(', ')} (needs uri, username, password; ca.crt and amqpUri optional)`);
    }
    this.secrets.add(password);
    const problems = nodeListProblems(splitNodeList(uri));
    if (problems.length > 0) {
      throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} key uri: ${problems.join('; ')}`);
    }
    const source: Source = { label: `Secret ${namespace}/${name} key uri`, ...(amqpUri !== undefined ? { amqpLabel: `Secret ${namespace}/${name} key amqpUri` } : {}) };
    return { connection: { url: uri, username, password, ...(ca ? { ca } : {}), ...(amqpUri !== undefined ? { amqpUri } : {}) }, source };
  }

  private async readSecret(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      this.onSecretRead(namespace, name, secret.metadata?.resourceVersion ?? '');
      return secret.data;
    } catch (err) {
      const code = apiStatusCode(err);
      if (code === 404) this.onSecretRead(namespace, name, '');
      if (code === 404 || code === 403) {
        throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} (spec.rabbitmq.connectionSecret) ${code === 404 ? 'does not exist' : 'cannot be read by the operator'}`);
      }
      throw err;
    }
  }

  private idOf(connection: RabbitConnection): string {
    return createHash('sha256').update(`${connection.url}\0${connection.username}\0${connection.password}\0${connection.ca ?? ''}\0${connection.amqpUri ?? ''}`).digest('hex');
  }

  /** One client per connection; one per node behind a failover client when it lists several. */
  private client(connection: RabbitConnection, id: string): Client {
    let client = this.clients.get(id);
    if (!client) {
      client = managementApiForNodes(connection, (node) => this.createClient(node));
      this.clients.set(id, client);
    }
    return client;
  }

  /** Refuses a node list that mixes brokers (a cached verdict; unanswered nodes asked again later). */
  private async verifySameBroker(id: string, api: FailoverManagementClient, source: Source): Promise<void> {
    const previous = this.verified.get(id);
    if (previous?.error) throw previous.error;
    if (previous && (previous.unanswered.length === 0 || Date.now() - previous.checkedAt < RECHECK_MS)) return;
    const nodes = api.clients().flatMap((c) => {
      const named = c as NodeClient & { clusterName?(): Promise<string> };
      return named.clusterName ? [{ endpoint: c.endpoint, clusterName: () => named.clusterName!() }] : [];
    });
    const check = await checkSameBroker(nodes, previous?.names);
    const verdict: Verification = { names: check.names, unanswered: check.unanswered, checkedAt: Date.now() };
    if (check.mismatch) verdict.error = new ConfigError(Reason.InvalidConnection, `${source.label}: ${check.mismatch}; nothing was applied`);
    this.verified.set(id, verdict);
    if (verdict.error) throw verdict.error;
  }
}
