/**
 * Resolves a batch's RabbitMQ connection: its `spec.rabbitmq.connectionSecret` (a Secret in the
 * batch's own namespace — never another one) or the operator's default connection. Clients are
 * shared per endpoint and credentials, so every batch on one broker uses one pooled client.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { RabbitQueueBatch } from '../api/schema.js';
import type { RabbitConnection } from '../config/config.js';
import type { ManagementApi } from '../model/broker.js';
import { apiStatusCode } from '../kube/custom-object.js';
import { ConfigError } from '../model/errors.js';
import { Reason } from '../model/reason.js';
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

export type ClientFactory = (connection: RabbitConnection) => ManagementApi & { close(): Promise<void> };

export class ConnectionResolver {
  private readonly clients = new Map<string, ManagementApi & { close(): Promise<void> }>();
  /** Passwords read from Secrets, so the logger can scrub them from any text. */
  readonly secrets = new Set<string>();
  /** The endpoint each connection reference resolved to last (claims compare endpoints). */
  private readonly endpoints = new Map<string, string>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly defaultConnection: RabbitConnection,
    private readonly createClient: ClientFactory,
    /** Told about every Secret read (its resourceVersion, or '' when missing), so it can be watched. */
    private readonly onSecretRead: (namespace: string, name: string, version: string) => void = () => undefined,
  ) {
    this.secrets.add(defaultConnection.password);
  }

  async resolve(batch: RabbitQueueBatch): Promise<ResolvedConnection> {
    const connection = await this.connectionFor(batch);
    const api = this.client(connection);
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
    return this.client(this.defaultConnection);
  }

  allClients(): ManagementApi[] {
    return [...this.clients.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }

  private async connectionFor(batch: RabbitQueueBatch): Promise<RabbitConnection> {
    const name = batch.spec.rabbitmq?.connectionSecret?.name;
    if (!name) return this.defaultConnection;
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
    return { url: uri, username, password, ...(ca ? { ca } : {}) };
  }

  private client(connection: RabbitConnection): ManagementApi {
    const id = createHash('sha256').update(`${connection.url}\0${connection.username}\0${connection.password}\0${connection.ca ?? ''}`).digest('hex');
    let client = this.clients.get(id);
    if (!client) this.clients.set(id, (client = this.createClient(connection)));
    return client;
  }
}
