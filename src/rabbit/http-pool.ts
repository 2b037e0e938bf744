/**
 * One keep-alive undici `Pool` per management endpoint, shared by every reconcile and the CLI.
 *
 * Guarantees
 * - At most `maxSize` sockets. `warm()` opens `minSize` at once, and a timer (unref'd) touches
 *   them every half idle timeout, so they stay open: undici has no minimum of its own.
 * - Every response body is read to the end, so a socket always goes back to the pool.
 * - Keep-warm requests are counted apart: `rabbitbatch_http_requests_total{purpose="keepalive"}`,
 *   so `purpose="work"` is exactly what callers asked of RabbitMQ.
 * - Reuse is measured: `socketsCreated` counts the pool's own 'connect' events (the diagnostics
 *   channel is process-wide and would also see other clients).
 * - Neither `endpoint` nor any error message holds credentials: they travel in headers only.
 *
 * Failure modes
 * - RabbitMQ closes a keep-alive connection after 1,000 requests (it says `connection: close`,
 *   so undici opens a new socket: expected, not an error). A request that meets a socket closed
 *   under it (ECONNRESET, EPIPE, UND_ERR_SOCKET) is retried once when it is idempotent
 *   (GET, HEAD, PUT, DELETE); a POST is not, since it may have been applied.
 * - No answer (refused, reset twice, timeouts): rejected as `BrokerUnavailableError`. Any HTTP
 *   answer, whatever its status, resolves: the caller decides what a status means.
 * - A certificate that does not verify against `ca` (or the system roots), or a failed TLS
 *   handshake: rejected at once, without a retry, as `TlsError` saying which (tls-errors.ts).
 */
import { setImmediate } from 'node:timers/promises';
import type { Registry } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { registerHttpPoolMetrics, type HttpPoolMetrics, type RequestPurpose } from '../metrics/pool-metrics.js';
import { BrokerUnavailableError, isUnreachable } from '../model/errors.js';
import { describeCode } from './network-errors.js';
import { tlsFailure } from './tls-errors.js';

export interface HttpPoolOptions {
  /** Base URL, e.g. `http://127.0.0.1:15672` (a path prefix is kept; credentials are dropped). Required. */
  url: string;
  /** Sockets opened by `warm()` and kept open while idle. Defaults to 5. */
  minSize?: number;
  /** Most sockets open at once; further requests wait in the pool's queue. Defaults to 50. */
  maxSize?: number;
  /** How long an idle socket stays open (keep-alive). Defaults to 60000 ms. */
  idleTimeoutMs?: number;
  /** Longest wait for the response headers. Defaults to 10000 ms. */
  headersTimeoutMs?: number;
  /** Longest gap between two body chunks. Defaults to 30000 ms. */
  bodyTimeoutMs?: number;
  /** Longest TCP (and TLS) connect. Defaults to 5000 ms. */
  connectTimeoutMs?: number;
  /** PEM CA bundle for `https://`; certificates are always verified. Defaults to the system roots. */
  ca?: string;
  /** Where the `rabbitbatch_http_*` metrics go. Defaults to none. */
  registry?: Registry;
  /** The cheap request that opens and touches sockets. Defaults to `/api/overview?columns=rabbitmq_version`. */
  warmPath?: string;
  /** Headers of the warm-up requests (authorization). Defaults to none. */
  warmHeaders?: Record<string, string>;
}

export interface HttpPoolStats {
  /** Requests sent (retries and warm-up requests included). */
  requests: number;
  /** Sockets opened since the pool started. */
  socketsCreated: number;
  /**
   * Share of requests that reused an open socket: `1 - socketsCreated / requests`, so 0.99 means
   * 99 of 100 requests found a socket open (requests per socket = 1 / (1 - reuseRatio)).
   * 0 before the first request.
   */
  reuseRatio: number;
  /** Sockets running a request. */
  active: number;
  /** Sockets open and free. */
  idle: number;
  /** Requests waiting for a socket. */
  pending: number;
  /** Sockets open. */
  size: number;
  max: number;
}

export interface HttpResponse {
  status: number;
  text: string;
  /** The `Location` header, when present (RabbitMQ names a new binding's properties key there). */
  location?: string;
}

const SOCKET_CLOSED_UNDER_US = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

export class HttpPool {
  /** Origin plus path prefix, without credentials: for logs, metrics and status. */
  readonly endpoint: string;
  private readonly basePath: string;
  private readonly pool: Pool;
  private readonly minSize: number;
  private readonly maxSize: number;
  private readonly metrics: HttpPoolMetrics | undefined;
  private readonly keepWarm: NodeJS.Timeout;
  private requestsSent = 0;
  private socketsCreated = 0;
  private closed = false;

  constructor(private readonly o: HttpPoolOptions) {
    const url = new URL(o.url);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.endpoint = url.origin + this.basePath;
    this.minSize = o.minSize ?? 5;
    this.maxSize = Math.max(1, o.maxSize ?? 50);
    const idleMs = o.idleTimeoutMs ?? 60_000;
    this.pool = new Pool(url.origin, {
      connections: this.maxSize, // undici's default is unlimited
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
      headersTimeout: o.headersTimeoutMs ?? 10_000,
      bodyTimeout: o.bodyTimeoutMs ?? 30_000,
      connect: { timeout: o.connectTimeoutMs ?? 5_000, ...(o.ca ? { ca: o.ca } : {}) },
    });
    this.pool.on('connect', () => this.socketsCreated++);
    this.metrics = o.registry ? registerHttpPoolMetrics(o.registry, this.endpoint, () => this.stats()) : undefined;
    // Touch the minimum well before the idle timeout (ours or the server's) closes it.
    this.keepWarm = setInterval(() => void this.warm().catch(() => undefined), Math.max(100, idleMs / 2));
    this.keepWarm.unref();
  }

  /**
   * Opens (or touches) `minSize` sockets: that many concurrent requests each take a socket of
   * their own. Sockets busy with other requests are in use anyway and are not touched again.
   */
  async warm(): Promise<void> {
    if (this.closed) return;
    const n = Math.min(this.maxSize, Math.max(0, this.minSize - this.pool.stats.running));
    const path = this.o.warmPath ?? '/api/overview?columns=rabbitmq_version';
    await Promise.all(Array.from({ length: n }, () => this.send('GET', path, undefined, this.o.warmHeaders ?? {}, 'keepalive')));
  }

  /** Sends one request; resolves with any HTTP answer (see the failure modes above). */
  async request(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<HttpResponse> {
    return this.send(method, path, body, headers, 'work');
  }

  private async send(method: string, path: string, body: string | undefined, headers: Record<string, string>, purpose: RequestPurpose): Promise<HttpResponse> {
    for (let attempt = 1; ; attempt++) {
      this.requestsSent++;
      try {
        const res = await this.pool.request({ method: method as Dispatcher.HttpMethod, path: this.basePath + path, headers, ...(body === undefined ? {} : { body }) });
        // Read to the end even when the caller ignores it, or the socket never comes back.
        const text = await res.body.text();
        // undici hands a finished socket back only after a full event-loop turn (a setImmediate
        // queued when the response ended, against servers that close despite keep-alive). Wait
        // for it, or the caller's next request finds no free socket and opens another one.
        await setImmediate();
        this.metrics?.requestDone(method, res.statusCode, purpose);
        const location = res.headers.location;
        return typeof location === 'string' ? { status: res.statusCode, text, location } : { status: res.statusCode, text };
      } catch (err) {
        const tls = tlsFailure(err, { endpoint: this.endpoint, caGiven: this.o.ca !== undefined });
        if (tls) {
          this.metrics?.requestDone(method, 'error', purpose);
          throw tls;
        }
        const code = errorCode(err);
        const failure = new BrokerUnavailableError(`${method} ${this.endpoint}${path.split('?')[0]}: ${(code && describeCode(code)) || code || (err as Error).message}`, { cause: err });
        // A socket closed under a request that may be resent: once, at once (the broker did answer others).
        if (attempt === 1 && SOCKET_CLOSED_UNDER_US.has(code) && IDEMPOTENT.has(method) && isUnreachable(failure)) continue;
        this.metrics?.requestDone(method, 'error', purpose);
        throw failure;
      }
    }
  }

  stats(): HttpPoolStats {
    const s = this.pool.stats;
    return {
      requests: this.requestsSent,
      socketsCreated: this.socketsCreated,
      reuseRatio: this.requestsSent === 0 ? 0 : Math.max(0, 1 - this.socketsCreated / this.requestsSent),
      active: s.running,
      idle: s.free,
      pending: s.pending,
      size: s.connected,
      max: this.maxSize,
    };
  }

  /** Waits for requests in flight, then closes every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepWarm);
    this.metrics?.unregister();
    await this.pool.close();
  }
}

/** undici wraps socket errors; the system code (ECONNRESET) may sit on the cause. */
function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  if (typeof e.code === 'string' && e.code !== 'UND_ERR_SOCKET') return e.code;
  if (typeof e.cause?.code === 'string') return e.cause.code;
  return typeof e.code === 'string' ? e.code : '';
}
