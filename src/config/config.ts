/**
 * The one place that reads configuration: environment variables (and, for the operator, the
 * flags commander parsed) become a typed, frozen object. Nothing else reads `process.env`.
 * Every setting is listed in the README's configuration table.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { nodeListProblems, splitNodeList } from '../model/node-list.js';

const int = (def: number) => z.coerce.number().int().positive().default(def);
const seconds = (def: number) => z.coerce.number().positive().default(def);

const envSchema = z.object({
  // One management API URL, or several nodes of one cluster separated by commas.
  RABBITMQ_URL: z
    .string()
    .default('http://127.0.0.1:15672')
    .superRefine((text, ctx) => {
      for (const problem of nodeListProblems(splitNodeList(text))) ctx.addIssue({ code: 'custom', message: problem });
    }),
  RABBITMQ_USERNAME: z.string().default('guest'),
  RABBITMQ_PASSWORD: z.string().default('guest'),
  RABBITMQ_AMQP_URL: z.string().default('amqp://127.0.0.1:5672'),
  RABBITMQ_CA_FILE: z.string().optional(),
  HTTP_POOL_MIN_SIZE: int(5),
  HTTP_POOL_MAX_SIZE: int(100),
  HTTP_POOL_IDLE_TIMEOUT: seconds(60),
  AMQP_CHANNEL_POOL_SIZE: int(10),
  CONNECTION_POOL_TIMEOUT: seconds(10),
  POOL_EXHAUSTION_MODE: z.enum(['block', 'fail-fast', 'queue']).default('block'),
  CACHE_BACKEND: z.enum(['memory', 'redis']).default('memory'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  CACHE_TTL_LISTS: seconds(60),
  CACHE_TTL_METADATA: seconds(300),
  CACHE_MAX_SIZE: int(1000),
  RESYNC_INTERVAL: seconds(600),
  RABBITMQ_EVENTS: z.enum(['true', 'false']).default('true'),
  MAX_CONCURRENT_RECONCILES: int(10),
  // As many as the management pool holds sockets (HTTP_POOL_MAX_SIZE). A batch that waits on round
  // trips, not on the broker, is the slow case: at 10 ms of round trip 100 operations in flight
  // made a 100-operation batch 10.7-11.7x faster than sequential requests, 50 only 8.1-8.4x
  // (bench/batch.ts, medians of 5), while the broker declared no slower at 100 than at 50.
  BATCH_CONCURRENCY: int(100),
  MAX_ITEMS: int(1000),
  WATCH_NAMESPACE: z.string().optional(),
  POD_NAME: z.string().optional(),
  POD_UID: z.string().optional(),
  /** Set by the kubelet in every Pod: where the in-cluster API server is. */
  KUBERNETES_SERVICE_HOST: z.string().optional(),
  KUBERNETES_SERVICE_PORT: z.string().optional(),
  POD_NAMESPACE: z.string().default('rabbitbatch-system'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
});

export type Env = z.output<typeof envSchema>;

export interface RabbitConnection {
  /** Management API base URL, without credentials. */
  url: string;
  username: string;
  password: string;
  /** PEM CA bundle; TLS is verified against it (or the system roots). */
  ca?: string;
  /** AMQP addresses for the event stream (comma-separated); derived from `url` when absent. */
  amqpUri?: string;
}

export interface OperatorFlags {
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  /** Spread resources over replicas (membership Leases + consistent hashing). */
  sharding?: boolean;
  kubeconfig?: string;
  logLevel?: string;
}

export interface OperatorConfig {
  rabbit: RabbitConnection;
  amqpUrl: string;
  httpPool: { minSize: number; maxSize: number; idleTimeoutMs: number };
  amqpPool: { size: number; acquireTimeoutMs: number; exhaustion: 'block' | 'fail-fast' | 'queue' };
  cache: { backend: 'memory' | 'redis'; redisUrl: string; ttlListsMs: number; ttlMetadataMs: number; maxSize: number };
  resyncIntervalMs: number;
  /** Follow amq.rabbitmq.event (needs the rabbitmq_event_exchange plugin). */
  events: boolean;
  maxConcurrentReconciles: number;
  batchConcurrency: number;
  maxItems: number;
  watchNamespace?: string;
  identity: string;
  namespace: string;
  /** The operator's own Pod (downward API), to which it reports what blocks it. Absent outside a Pod. */
  pod?: { name: string; uid: string };
  /** The in-cluster API server (KUBERNETES_SERVICE_HOST/PORT), when running in a Pod. */
  kubernetesService?: { host: string; port: string };
  logLevel: string;
  flags: OperatorFlags;
}

/** Parses the environment; a bad value fails with the variable's name and the reason. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

export function defaultConnection(env: Env = loadEnv()): RabbitConnection {
  const ca = env.RABBITMQ_CA_FILE ? readFileSync(env.RABBITMQ_CA_FILE, 'utf8') : undefined;
  return { url: env.RABBITMQ_URL, username: env.RABBITMQ_USERNAME, password: env.RABBITMQ_PASSWORD, ...(ca ? { ca } : {}) };
}

export function loadOperatorConfig(flags: OperatorFlags, env: Env = loadEnv()): Readonly<OperatorConfig> {
  return Object.freeze({
    rabbit: { ...defaultConnection(env), amqpUri: env.RABBITMQ_AMQP_URL },
    amqpUrl: env.RABBITMQ_AMQP_URL,
    httpPool: { minSize: env.HTTP_POOL_MIN_SIZE, maxSize: env.HTTP_POOL_MAX_SIZE, idleTimeoutMs: env.HTTP_POOL_IDLE_TIMEOUT * 1000 },
    amqpPool: { size: env.AMQP_CHANNEL_POOL_SIZE, acquireTimeoutMs: env.CONNECTION_POOL_TIMEOUT * 1000, exhaustion: env.POOL_EXHAUSTION_MODE },
    cache: {
      backend: env.CACHE_BACKEND,
      redisUrl: env.REDIS_URL,
      ttlListsMs: env.CACHE_TTL_LISTS * 1000,
      ttlMetadataMs: env.CACHE_TTL_METADATA * 1000,
      maxSize: env.CACHE_MAX_SIZE,
    },
    resyncIntervalMs: env.RESYNC_INTERVAL * 1000,
    events: env.RABBITMQ_EVENTS === 'true',
    maxConcurrentReconciles: env.MAX_CONCURRENT_RECONCILES,
    batchConcurrency: env.BATCH_CONCURRENCY,
    maxItems: env.MAX_ITEMS,
    ...(env.WATCH_NAMESPACE ? { watchNamespace: env.WATCH_NAMESPACE } : {}),
    identity: env.POD_NAME ?? `rabbitbatch-${process.pid}`,
    namespace: env.POD_NAMESPACE,
    ...(env.POD_NAME && env.POD_UID ? { pod: { name: env.POD_NAME, uid: env.POD_UID } } : {}),
    ...(env.KUBERNETES_SERVICE_HOST ? { kubernetesService: { host: env.KUBERNETES_SERVICE_HOST, port: env.KUBERNETES_SERVICE_PORT ?? '443' } } : {}),
    logLevel: flags.logLevel ?? env.LOG_LEVEL,
    flags,
  });
}
