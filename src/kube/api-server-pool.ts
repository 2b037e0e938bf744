/**
 * A KubeConfig whose API clients and `Watch` streams share one keep-alive connection pool per
 * API server, instead of one new TLS connection per call. The operator uses it only for
 * kubeconfigs the light ./light-kubeconfig.ts does not support (exec plugins, auth providers,
 * proxies); it keeps client-node's authentication for those.
 *
 * Why: `@kubernetes/client-node` 2.0.1 builds a new undici `Agent` in every
 * `applySecurityAuthentication` (its private `createDispatcher`), which every generated API call
 * and every `Watch` runs first; an Agent owns its sockets, so each status write, finalizer patch,
 * Event and Lease renewal paid for a TCP connection, a TLS handshake, a new SecureContext parsing
 * the CA and a certificate check. That was the operator's top CPU cost (~16 %) under load.
 *
 * Guarantees:
 * - Every request of a client from `makeApiClient` and every `Watch` built on this KubeConfig
 *   goes through one shared dispatcher per TLS set-up (server, proxy, CA, client certificate and
 *   key, verification, SNI); idle sockets are kept for {@link KEEP_ALIVE_MS} and reused. undici
 *   negotiates HTTP/2 with kube-apiserver (ALPN), so in practice one connection carries every call
 *   and the watch streams, as in client-go.
 * - Authentication is untouched: the library still computes the headers of every request (bearer
 *   token, exec plugin, in-cluster token file re-read every 60 s, basic auth, impersonation), so
 *   a rotated token is picked up exactly as before. Only the dispatcher is shared.
 * - TLS verification is untouched: the shared dispatcher is built from the options the library
 *   derived for that very request (`createDispatcherOptions`, with `rejectUnauthorized`, `ca`,
 *   `cert`, `key` as it computed them). The library re-reads CA and certificate files for every
 *   request; when their content changes, the next request gets a new pool and the old one closes
 *   once its requests (including open watches) have finished.
 *
 * Failure modes:
 * - A socket the server closed while idle fails the request that picks it, like any dropped
 *   connection (callers already retry). {@link KEEP_ALIVE_MS} stays under kube-apiserver's 90 s
 *   idle timeout and the 60 s of common load balancers to make that rare.
 * - One shared HTTP/2 connection that dies silently (a NAT or load balancer dropping it) would
 *   stall every call, not one: it is PINGed every {@link PING_INTERVAL_MS} and replaced when a
 *   PING goes unanswered until the next one (client-go: 30 s read-idle + 15 s ping timeout).
 * - Should a client-node upgrade drop `createDispatcher`, the constructor throws instead of
 *   silently going back to one connection per call.
 */
import { createHash } from 'node:crypto';
import type { AgentOptions } from 'node:https';
import { KubeConfig, type Cluster } from '@kubernetes/client-node';
import { Agent, type Dispatcher } from 'undici';

import { KEEP_ALIVE_MS, PING_INTERVAL_MS } from './light-kubeconfig.js';

export { KEEP_ALIVE_MS, PING_INTERVAL_MS };

/** The shape of client-node's private `KubeConfig.createDispatcher` (2.0.1). */
type CreateDispatcher = (cluster: Cluster | null, agentOptions: AgentOptions) => Dispatcher | undefined;

interface Pool {
  fingerprint: string;
  dispatcher: Dispatcher | undefined;
}

export class PooledKubeConfig extends KubeConfig {
  /** Per cluster and user: the pool for the TLS set-up last seen. */
  readonly #pools = new Map<string, Pool>();
  #connectionsOpened = 0;

  constructor() {
    super();
    // The hook is private in the typings but public at runtime; it is the one place every API
    // call and Watch gets its dispatcher from, after the library has computed the TLS options.
    const hooks = this as unknown as { createDispatcher?: CreateDispatcher };
    const build = hooks.createDispatcher;
    if (typeof build !== 'function') {
      throw new Error('@kubernetes/client-node has no KubeConfig.createDispatcher any more: revisit src/kube/api-server-pool.ts');
    }
    hooks.createDispatcher = (cluster, agentOptions) => this.#shared(cluster, agentOptions, build.bind(this));
  }

  /** New connections the shared pools have opened to the API server (undici `connect` events). */
  get connectionsOpened(): number {
    return this.#connectionsOpened;
  }

  /** Closes every pool, after the requests in flight. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.dispatcher?.close()));
  }

  #shared(cluster: Cluster | null, agentOptions: AgentOptions, build: CreateDispatcher): Dispatcher | undefined {
    const key = JSON.stringify([cluster?.name ?? '', cluster?.server ?? '', this.getCurrentUser()?.name ?? '']);
    const fingerprint = tlsFingerprint(cluster, agentOptions);
    const current = this.#pools.get(key);
    if (current?.fingerprint === fingerprint) return current.dispatcher;

    const options = this.createDispatcherOptions(cluster, agentOptions);
    // A direct TLS connection: the library's own Agent options plus a longer keep-alive and PING.
    // Proxies and plain HTTP keep the library's construction unchanged.
    const dispatcher = options.type === 'agent' ? new Agent({ connect: options.connect, keepAliveTimeout: KEEP_ALIVE_MS, h2Options: { pingInterval: PING_INTERVAL_MS } }) : build(cluster, agentOptions);
    dispatcher?.on('connect', () => this.#connectionsOpened++);
    this.#pools.set(key, { fingerprint, dispatcher });
    // Rotated CA or client certificate: finish what runs on the old pool, then let it go.
    void current?.dispatcher?.close().catch(() => undefined);
    return dispatcher;
  }
}

/** A digest of everything that decides how a connection to the API server is set up. */
function tlsFingerprint(cluster: Cluster | null, o: AgentOptions): string {
  const hash = createHash('sha256');
  const parts: unknown[] = [cluster?.server, cluster?.proxyUrl, cluster?.skipTLSVerify, o.rejectUnauthorized, o.servername, o.passphrase, o.ca, o.cert, o.key, o.pfx];
  for (const part of parts) {
    for (const p of Array.isArray(part) ? part : [part]) {
      hash.update(typeof p === 'string' || Buffer.isBuffer(p) ? p : String(p));
      hash.update('\0');
    }
  }
  return hash.digest('base64');
}
