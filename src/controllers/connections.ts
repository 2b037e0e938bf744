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
 */
import { createHash } from 'node:crypto';
import type { RabbitQueueBatch } from '../api/schema.js';
import type { RabbitConnection } from '../config/config.js';
import type { SecretApi } from '../kube/core-apis.js';
import { apiStatusCode } from '../kube/custom-object.js';
import type { ManagementApi } from '../model/broker.js';
import { ConfigError } from '../model/errors.js';
import { Reason } from '../model/reason.js';
import { FailoverManagementClient, type NodeClient } from '../rabbit/failover-client.js';
import { nodeListProblems, splitNodeList } from '../model/node-list.js';
import { checkSameBroker } from '../rabbit/same-broker.js';
import { connectionRef } from './claims.js';

export interface ResolvedConnection {
  /** The batch's pooled client; `api.endpoint` identifies the broker for claims. */
  api: ManagementApi;
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
  /** The endpoint each connection reference resolved to last (claims compare endpoints). */
  private readonly endpoints = new Map<string, string>();

  constructor(
    private readonly core: SecretApi,
    private readonly defaultConnection: RabbitConnection,
    private readonly createClient: ClientFactory,
    /** Told about every Secret read (its resourceVersion, or '' when missing), so it can be watched. */
    private readonly onSecretRead: (namespace: string, name: string, version: string) => void = () => undefined,
  ) {
    this.secrets.add(defaultConnection.password);
  }

  async resolve(batch: RabbitQueueBatch): Promise<ResolvedConnection> {
    const { connection, source } = await this.connectionFor(batch);
    const id = this.idOf(connection);
    const api = this.client(connection, id);
    if (api instanceof FailoverManagementClient) await this.verifySameBroker(id, api, source);
    this.endpoints.set(connectionRef(batch), api.endpoint);
    return { api };
  }

  /** The broker endpoint of `batch` as last resolved; the default connection's is always known. */
  endpointOf(batch: RabbitQueueBatch): string | undefined {
    const ref = connectionRef(batch);
    return ref === 'default' ? this.defaultClient().endpoint : this.endpoints.get(ref);
  }

  /** The default connection's client (health checks, cache warming, the event stream). */
  defaultClient(): ManagementApi {
    return this.client(this.defaultConnection, this.idOf(this.defaultConnection));
  }

  allClients(): ManagementApi[] {
    return [...this.clients.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  private async connectionFor(batch: RabbitQueueBatch): Promise<{ connection: RabbitConnection; source: Source }> {
    const name = batch.spec.rabbitmq?.connectionSecret?.name;
    if (!name) return { connection: this.defaultConnection, source: { label: 'RABBITMQ_URL' } };
    const namespace = batch.metadata.namespace;
    let data: Record<string, string> | undefined;
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      data = secret.data;
      this.onSecretRead(namespace, name, secret.metadata?.resourceVersion ?? '');
    } catch (err) {
      const code = apiStatusCode(err);
      if (code === 404) this.onSecretRead(namespace, name, '');
      if (code === 404 || code === 403) {
        throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} (spec.rabbitmq.connectionSecret) ${code === 404 ? 'does not exist' : 'cannot be read by the operator'}`);
      }
      throw err;
    }
    const field = (key: string) => (data?.[key] ? Buffer.from(data[key], 'base64').toString('utf8') : undefined);
    const [uri, username, password, ca] = [field('uri'), field('username'), field('password'), field('ca.crt')];
    const missing = [['uri', uri], ['username', username], ['password', password]].filter(([, v]) => !v).map(([k]) => k);
    if (!uri || !username || !password) {
      throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} lacks ${missing.join(', ')} (needs uri, username, password; ca.crt optional)`);
    }
    this.secrets.add(password);
    const problems = nodeListProblems(splitNodeList(uri));
    if (problems.length > 0) {
      throw new ConfigError(Reason.SecretNotFound, `Secret ${namespace}/${name} key uri: ${problems.join('; ')}`);
    }
    return { connection: { url: uri, username, password, ...(ca ? { ca } : {}) }, source: { label: `Secret ${namespace}/${name} key uri` } };
  }

  private idOf(connection: RabbitConnection): string {
    return createHash('sha256').update(`${connection.url}\0${connection.username}\0${connection.password}\0${connection.ca ?? ''}`).digest('hex');
  }

  /** One client per connection; one per node behind a failover client when it lists several. */
  private client(connection: RabbitConnection, id: string): Client {
    let client = this.clients.get(id);
    if (!client) {
      const urls = splitNodeList(connection.url);
      client = urls.length > 1 ? new FailoverManagementClient(urls.map((url) => this.createClient({ ...connection, url }))) : this.createClient({ ...connection, url: urls[0] ?? connection.url });
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
