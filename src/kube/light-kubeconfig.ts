/**
 * The operator's kubeconfig without `@kubernetes/client-node`'s (which loads all of the
 * library's generated clients): the in-cluster service account, or a kubeconfig file whose
 * current context uses a server URL, a CA, client certificates, a token or token file, or basic
 * auth. Anything else (exec plugins, auth providers, proxies) is left to client-node's
 * `KubeConfig`, which ./kubeconfig.ts loads only then. Every request shares one keep-alive
 * connection pool per API server, as src/kube/api-server-pool.ts does for client-node.
 *
 * Guarantees
 * - Same authentication as client-node for what it supports: a bearer token, a token file
 *   re-read when older than {@link RELOAD_MS} (the in-cluster token rotates), client
 *   certificate and key, basic auth, `as` impersonation; TLS verified against the CA (or the
 *   system's) unless `insecure-skip-tls-verify`; `tls-server-name` as SNI.
 * - CA, certificate and key files are re-read every {@link RELOAD_MS}: when their content
 *   changed, new requests get a new pool and the old one closes after its requests (including
 *   open watches) finish.
 * - Idle sockets are kept for {@link KEEP_ALIVE_MS}; HTTP/2 connections are PINGed every
 *   {@link PING_INTERVAL_MS} and replaced when a PING goes unanswered.
 *
 * Failure modes
 * - A plain `http://` server without `insecure-skip-tls-verify` is refused, as client-node does.
 * - A missing token, CA or certificate file fails the request that needs it (readable error).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import type { KubeAccess, RequestSetup } from './api-request.js';

/** How long an idle API-server socket is kept (undici's default is 4 s). */
export const KEEP_ALIVE_MS = 30_000;
/** HTTP/2 liveness PING period (undici's default is 60 s). */
export const PING_INTERVAL_MS = 15_000;
/** How often token, CA and certificate files are re-read (client-go re-reads tokens every minute). */
export const RELOAD_MS = 60_000;

export const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A file, or inline (base64) data, as kubeconfig gives either. */
interface Source {
  file?: string;
  data?: string;
}

export interface LightCluster {
  server: string;
  ca?: Source;
  skipTLSVerify?: boolean;
  tlsServerName?: string;
}

export interface LightUser {
  token?: string;
  tokenFile?: string;
  cert?: Source;
  key?: Source;
  username?: string;
  password?: string;
  impersonate?: string;
}

export class LightKubeConfig implements KubeAccess {
  #agent: Agent | undefined;
  #tlsFingerprint = '';
  #tlsCheckedAt = -Infinity;
  #token: { value: string; at: number } | undefined;
  #connectionsOpened = 0;

  constructor(
    readonly cluster: LightCluster,
    readonly user: LightUser,
    /** The context's namespace, if any. */
    readonly namespace?: string,
  ) {
    if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) throw new Error('HTTP protocol is not allowed when skipTLSVerify is not set or false');
  }

  getCurrentCluster(): { server: string } {
    return { server: this.cluster.server };
  }

  /** New connections the pool has opened to the API server (undici `connect` events). */
  get connectionsOpened(): number {
    return this.#connectionsOpened;
  }

  async applySecurityAuthentication(context: RequestSetup): Promise<void> {
    const { user } = this;
    if (user.username !== undefined) context.setHeaderParam('Authorization', `Basic ${Buffer.from(`${user.username}:${user.password ?? ''}`).toString('base64')}`);
    const token = user.token ?? (user.tokenFile ? this.#fileToken(user.tokenFile) : undefined);
    if (token) context.setHeaderParam('Authorization', `Bearer ${token}`);
    if (user.impersonate) context.setHeaderParam('Impersonate-User', user.impersonate);
    context.setDispatcher(this.#dispatcher());
  }

  /** Closes the pool, after the requests in flight. */
  async close(): Promise<void> {
    const agent = this.#agent;
    this.#agent = undefined;
    await agent?.close();
  }

  #fileToken(file: string): string {
    const now = Date.now();
    if (!this.#token || now - this.#token.at >= RELOAD_MS) this.#token = { value: readFileSync(file, 'utf8').trim(), at: now };
    return this.#token.value;
  }

  #dispatcher(): Dispatcher {
    const now = Date.now();
    if (this.#agent && now - this.#tlsCheckedAt < RELOAD_MS) return this.#agent;
    this.#tlsCheckedAt = now;
    const tls = {
      ...(this.cluster.ca ? { ca: read(this.cluster.ca) } : {}),
      ...(this.user.cert ? { cert: read(this.user.cert) } : {}),
      ...(this.user.key ? { key: read(this.user.key) } : {}),
      ...(this.cluster.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      ...(this.cluster.tlsServerName ? { servername: this.cluster.tlsServerName } : {}),
    };
    const fingerprint = createHash('sha256').update(JSON.stringify([tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername].map((v) => (Buffer.isBuffer(v) ? v.toString('base64') : v)))).digest('base64');
    if (this.#agent && fingerprint === this.#tlsFingerprint) return this.#agent;
    const previous = this.#agent;
    // keepAliveInitialDelay 30 s: under common load balancers' 60 s idle timeout (client-go's value).
    this.#agent = new Agent({ connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000 }, keepAliveTimeout: KEEP_ALIVE_MS, h2Options: { pingInterval: PING_INTERVAL_MS } });
    this.#agent.on('connect', () => this.#connectionsOpened++);
    this.#tlsFingerprint = fingerprint;
    void previous?.close().catch(() => undefined);
    return this.#agent;
  }
}

function read(s: Source): Buffer {
  return s.file ? readFileSync(s.file) : Buffer.from(s.data ?? '', 'base64');
}

/** The in-cluster service account, as client-node's `loadFromCluster` reads it (host and port: KUBERNETES_SERVICE_HOST/PORT). */
export function inClusterConfig(service: { host: string; port: string }, root = SERVICE_ACCOUNT): LightKubeConfig {
  const { host, port } = service;
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return new LightKubeConfig({ server, ca: { file: `${root}/ca.crt` }, skipTLSVerify: scheme === 'http' }, { tokenFile: `${root}/token` });
}

type Entry<K extends string> = { name?: string } & { [key in K]?: Record<string, unknown> };

/**
 * The current context of a parsed kubeconfig, if it uses only what {@link LightKubeConfig}
 * supports; otherwise the reason it does not (the caller then uses client-node).
 */
export function fromKubeconfig(doc: unknown, file: string): LightKubeConfig | { unsupported: string } {
  const d = (doc ?? {}) as { 'current-context'?: string; contexts?: Entry<'context'>[]; clusters?: Entry<'cluster'>[]; users?: Entry<'user'>[] };
  const context = d.contexts?.find((c) => c.name === d['current-context'])?.context;
  if (!context) return { unsupported: 'no current context' };
  const cluster = d.clusters?.find((c) => c.name === context.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') return { unsupported: 'no cluster server' };
  const user = d.users?.find((u) => u.name === context.user)?.user ?? {};
  const known = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'username', 'password', 'as']);
  const other = Object.keys(user).find((k) => !known.has(k));
  if (other) return { unsupported: `user.${other}` };
  if (cluster['proxy-url']) return { unsupported: 'cluster.proxy-url' };
  const dir = dirname(file);
  const abs = (p: unknown) => (typeof p === 'string' ? (isAbsolute(p) ? p : join(dir, p)) : undefined);
  const src = (f: unknown, data: unknown): Source | undefined => (typeof f === 'string' ? { file: abs(f)! } : typeof data === 'string' ? { data } : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const c: LightCluster = { server: cluster.server.replace(/\/$/, '') };
  const ca = src(cluster['certificate-authority'], cluster['certificate-authority-data']);
  if (ca) c.ca = ca;
  if (cluster['insecure-skip-tls-verify'] === true) c.skipTLSVerify = true;
  if (str(cluster['tls-server-name'])) c.tlsServerName = str(cluster['tls-server-name'])!;
  const u: LightUser = {};
  const cert = src(user['client-certificate'], user['client-certificate-data']);
  const key = src(user['client-key'], user['client-key-data']);
  if (cert) u.cert = cert;
  if (key) u.key = key;
  for (const [k, v] of [['token', 'token'], ['tokenFile', 'tokenFile'], ['username', 'username'], ['password', 'password'], ['as', 'impersonate']] as const) {
    const value = k === 'tokenFile' ? abs(user[k]) : str(user[k]);
    if (value !== undefined) u[v] = value;
  }
  return new LightKubeConfig(c, u, str(context.namespace));
}
