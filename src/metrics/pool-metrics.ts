/**
 * HTTP and AMQP pool metrics on a given Registry, never the global one.
 *
 * Several pools may share one registry (an operator with two endpoints, tests): every metric is
 * created once per registry (get-or-create by name) and labelled by `endpoint` (HTTP) or `pool`
 * (AMQP). Gauges and the socket counter read the live pools at scrape time, summed per label
 * value, so two pools on one endpoint add up instead of overwriting each other.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { getOrCreate } from './registry.js';

/** What a pool reports at scrape time. */
export interface PoolGaugeStats {
  /** Sockets running a request / channels borrowed. */
  active: number;
  /** Sockets or channels open and free. */
  idle: number;
  /** Requests or acquires waiting for a socket or channel. */
  pending: number;
}

export interface HttpPoolGaugeStats extends PoolGaugeStats {
  /** Sockets opened since the pool started. */
  socketsCreated: number;
}

/** Why a management request was sent: `rabbitbatch_http_requests_total{purpose}`. */
export type RequestPurpose = 'work' | 'keepalive';

export interface HttpPoolMetrics {
  /** Counts one finished request: `code` is the HTTP status, or `error` when no answer came. */
  /** `purpose`: `work` for callers' requests, `keepalive` for the pool's own touches of idle sockets. */
  requestDone(method: string, code: number | 'error', purpose?: RequestPurpose): void;
  /** Stops reporting this pool (its gauges disappear at the next scrape). */
  unregister(): void;
}

export interface ChannelPoolMetrics {
  created(): void;
  destroyed(): void;
  exhausted(): void;
  /** Time one acquire waited, whatever its outcome. */
  waited(seconds: number): void;
  unregister(): void;
}

interface Registered<S> {
  label: string;
  stats: () => S;
}

/** Live pools per registry, read by the gauges' collect(). */
const httpPools = new WeakMap<Registry, Set<Registered<HttpPoolGaugeStats>>>();
const channelPools = new WeakMap<Registry, Set<Registered<PoolGaugeStats>>>();


function poolsOf<S>(map: WeakMap<Registry, Set<Registered<S>>>, registry: Registry): Set<Registered<S>> {
  let set = map.get(registry);
  if (!set) map.set(registry, (set = new Set()));
  return set;
}

/** Sums each pool's stats per label value (two pools on one endpoint are one series). */
function sumByLabel<S>(pools: Iterable<Registered<S>>, pick: (s: S) => number): Map<string, number> {
  const sums = new Map<string, number>();
  for (const p of pools) sums.set(p.label, (sums.get(p.label) ?? 0) + pick(p.stats()));
  return sums;
}

const STATES = ['active', 'idle', 'pending'] as const;

/**
 * Registers one management-API pool: `rabbitbatch_http_pool_connections{endpoint,state}`,
 * `rabbitbatch_http_pool_connections_created_total{endpoint}` and
 * `rabbitbatch_http_requests_total{endpoint,method,code,purpose}` (`purpose` is `work` or
 * `keepalive`: the pool's touches of idle sockets are no work a reconcile asked for).
 */
export function registerHttpPoolMetrics(registry: Registry, endpoint: string, stats: () => HttpPoolGaugeStats): HttpPoolMetrics {
  const pools = poolsOf(httpPools, registry);
  const me: Registered<HttpPoolGaugeStats> = { label: endpoint, stats };
  pools.add(me);
  const registers = [registry];
  getOrCreate(
    registry,
    'rabbitbatch_http_pool_connections',
    () =>
      new Gauge({
        name: 'rabbitbatch_http_pool_connections',
        help: 'Management API sockets by state (active = running a request, idle = open and free, pending = requests waiting for a socket).',
        labelNames: ['endpoint', 'state'],
        registers,
        collect() {
          this.reset();
          for (const state of STATES) for (const [ep, n] of sumByLabel(pools, (s) => s[state])) this.set({ endpoint: ep, state }, n);
        },
      }),
  );
  getOrCreate(
    registry,
    'rabbitbatch_http_pool_connections_created_total',
    () =>
      new Counter({
        name: 'rabbitbatch_http_pool_connections_created_total',
        help: 'Sockets opened to the management API (RabbitMQ closes one after 1,000 requests, so expect one per 1,000).',
        labelNames: ['endpoint'],
        registers,
        collect() {
          // The pool counts its own sockets; mirror that count at scrape time.
          this.reset();
          for (const [ep, n] of sumByLabel(pools, (s) => s.socketsCreated)) this.inc({ endpoint: ep }, n);
        },
      }),
  );
  const requests = getOrCreate(
    registry,
    'rabbitbatch_http_requests_total',
    () =>
      new Counter({
        name: 'rabbitbatch_http_requests_total',
        help: 'Management API requests by endpoint, method, HTTP status ("error" when no answer came) and purpose ("work", or "keepalive" for the pool touching its idle sockets).',
        labelNames: ['endpoint', 'method', 'code', 'purpose'],
        registers,
      }),
  );
  return {
    requestDone: (method, code, purpose = 'work') => requests.inc({ endpoint, method, code: String(code), purpose }),
    unregister: () => void pools.delete(me),
  };
}

/**
 * Registers one AMQP channel pool: `rabbitbatch_amqp_channels{pool,state}`,
 * `rabbitbatch_amqp_channels_created_total`, `rabbitbatch_amqp_channels_destroyed_total`,
 * `rabbitbatch_amqp_pool_exhausted_total` and the `rabbitbatch_amqp_pool_wait_seconds`
 * histogram, all labelled `{pool}`. Counters start at zero so dashboards see the series at once.
 */
export function registerChannelPoolMetrics(registry: Registry, pool: string, stats: () => PoolGaugeStats): ChannelPoolMetrics {
  const pools = poolsOf(channelPools, registry);
  const me: Registered<PoolGaugeStats> = { label: pool, stats };
  pools.add(me);
  const registers = [registry];
  getOrCreate(
    registry,
    'rabbitbatch_amqp_channels',
    () =>
      new Gauge({
        name: 'rabbitbatch_amqp_channels',
        help: 'AMQP channels by pool and state (active = borrowed, idle = open and free, pending = callers waiting).',
        labelNames: ['pool', 'state'],
        registers,
        collect() {
          this.reset();
          for (const state of STATES) for (const [name, n] of sumByLabel(pools, (s) => s[state])) this.set({ pool: name, state }, n);
        },
      }),
  );
  const counter = (name: string, help: string) => getOrCreate(registry, name, () => new Counter({ name, help, labelNames: ['pool'], registers }));
  const created = counter('rabbitbatch_amqp_channels_created_total', 'AMQP channels opened.');
  const destroyed = counter('rabbitbatch_amqp_channels_destroyed_total', 'AMQP channels closed, or dropped after a failure closed them.');
  const exhausted = counter('rabbitbatch_amqp_pool_exhausted_total', 'Acquires refused or timed out because every channel was in use.');
  const wait = getOrCreate(
    registry,
    'rabbitbatch_amqp_pool_wait_seconds',
    () =>
      new Histogram({
        name: 'rabbitbatch_amqp_pool_wait_seconds',
        help: 'Time an acquire waited for an AMQP channel, whatever its outcome.',
        labelNames: ['pool'],
        buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
        registers,
      }),
  );
  for (const c of [created, destroyed, exhausted]) c.inc({ pool }, 0);
  return {
    created: () => created.inc({ pool }),
    destroyed: () => destroyed.inc({ pool }),
    exhausted: () => exhausted.inc({ pool }),
    waited: (seconds) => wait.observe({ pool }, seconds),
    unregister: () => void pools.delete(me),
  };
}
