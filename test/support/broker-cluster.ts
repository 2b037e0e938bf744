/**
 * The three-node RabbitMQ cluster of hack/broker-cluster.sh and its standalone node without the
 * event-exchange plugin (beside the machine's broker, which it never touches): started or reused
 * by `ensureBrokerCluster()`, one node stopped and started again, and direct management API /
 * AMQP access to a chosen node, so tests assert what the cluster holds.
 *
 * Every call into the script is asynchronous: rabbitmqctl takes seconds, and a synchronous child
 * process would freeze the operator running in the test process meanwhile.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { publishPersistent } from './rabbit.js';

const run = promisify(execFile);
const SCRIPT = new URL('../../hack/broker-cluster.sh', import.meta.url).pathname;

export interface ClusterNode {
  /** Erlang node name, e.g. rabbitbatch-1@localhost (what the management API calls `node`). */
  name: string;
  amqpPort: number;
  managementPort: number;
  managementUrl: string;
  /** Without credentials or vhost. */
  amqpUrl: string;
}

export interface BrokerCluster {
  clusterName: string;
  username: string;
  password: string;
  nodes: ClusterNode[];
  /** The standalone node beside the cluster: a broker of its own, without rabbitmq_event_exchange. */
  plain: { clusterName: string; node: ClusterNode };
  /** True when this call started it: the caller stops it again (`brokerClusterDown`) when done. */
  startedHere: boolean;
}

interface ScriptInfo {
  clusterName: string;
  username: string;
  password: string;
  nodes: ScriptNode[];
  plain: { clusterName: string; node: ScriptNode };
}

interface ScriptNode {
  name: string;
  amqpPort: number;
  managementPort: number;
}

const withUrls = (n: ScriptNode): ClusterNode => ({ ...n, managementUrl: `http://127.0.0.1:${n.managementPort}`, amqpUrl: `amqp://127.0.0.1:${n.amqpPort}` });

async function script(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { maxBuffer: 1 << 20, timeout: 300_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`hack/broker-cluster.sh ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function info(): Promise<Omit<BrokerCluster, 'startedHere'>> {
  const raw = JSON.parse(await script('info')) as ScriptInfo;
  return { ...raw, nodes: raw.nodes.map(withUrls), plain: { ...raw.plain, node: withUrls(raw.plain.node) } };
}

/** Starts the cluster and the standalone node (about a minute from nothing) or reuses the running ones (well under a second). */
export async function ensureBrokerCluster(): Promise<BrokerCluster> {
  const cluster = await info();
  const running = await runningNodes(cluster, cluster.nodes[0]!).catch(() => []);
  const plainRunning = await runningNodes(cluster, cluster.plain.node).catch(() => []);
  await script('up');
  return { ...cluster, startedHere: running.length < cluster.nodes.length || plainRunning.length === 0 };
}

/** Stops exactly the cluster's three nodes and the standalone node, and removes their state. */
export async function brokerClusterDown(): Promise<void> {
  await script('down');
}

/** Stops one node the way a lost node stops (its VM exits); the others keep the cluster. */
export async function stopNode(cluster: BrokerCluster, node: ClusterNode): Promise<void> {
  await script('stop-node', String(cluster.nodes.indexOf(node) + 1));
}

/** Starts a stopped node again: it rejoins from its own data; resolves when its management API answers. */
export async function startNode(cluster: BrokerCluster, node: ClusterNode): Promise<void> {
  await script('start-node', String(cluster.nodes.indexOf(node) + 1));
}

export async function clusterMgmt(
  cluster: Pick<BrokerCluster, 'username' | 'password'>,
  node: ClusterNode,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${node.managementUrl}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Basic ${Buffer.from(`${cluster.username}:${cluster.password}`).toString('base64')}`, 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Names of the nodes the management API of `node` sees running. */
export async function runningNodes(cluster: Pick<BrokerCluster, 'username' | 'password'>, node: ClusterNode): Promise<string[]> {
  const res = await clusterMgmt(cluster, node, '/api/nodes?columns=name,running');
  if (res.status !== 200) throw new Error(`${node.name}: /api/nodes answered ${res.status}`);
  return (res.json as { name: string; running: boolean }[]).filter((n) => n.running).map((n) => n.name).sort();
}

const v = encodeURIComponent;

/** A vhost of the test's own on the cluster (or on the broker of `node`), with the cluster user's permissions. */
export async function createClusterVhost(cluster: BrokerCluster, prefix: string, node = cluster.nodes[0]!): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const nodes = cluster.nodes.includes(node) ? cluster.nodes : [node];
  const name = `t-${prefix}-${randomBytes(3).toString('hex')}`;
  const created = await clusterMgmt(cluster, node, `/api/vhosts/${v(name)}`, { method: 'PUT', body: {} });
  if (created.status >= 300) throw new Error(`could not create vhost ${name} on ${node.name}: ${created.status} ${JSON.stringify(created.json)}`);
  await clusterMgmt(cluster, node, `/api/permissions/${v(name)}/${v(cluster.username)}`, { method: 'PUT', body: { configure: '.*', write: '.*', read: '.*' } });
  return {
    name,
    // Any running node will do: the test may have left one stopped.
    cleanup: async () => {
      for (const n of nodes) {
        const res = await clusterMgmt(cluster, n, `/api/vhosts/${v(name)}`, { method: 'DELETE' }).catch(() => undefined);
        if (res && res.status < 300) return;
      }
    },
  };
}

export interface ClusterQueue {
  name: string;
  type: string;
  durable: boolean;
  node?: string;
  leader?: string;
  members?: string[];
  online?: string[];
}

export async function listClusterQueues(cluster: BrokerCluster, node: ClusterNode, vhost: string): Promise<ClusterQueue[]> {
  const res = await clusterMgmt(cluster, node, `/api/queues/${v(vhost)}?disable_stats=true`);
  if (res.status !== 200) throw new Error(`${node.name}: listing queues of ${vhost} answered ${res.status}`);
  return res.json as ClusterQueue[];
}

export async function getClusterQueue(cluster: BrokerCluster, node: ClusterNode, vhost: string, name: string): Promise<ClusterQueue | undefined> {
  const res = await clusterMgmt(cluster, node, `/api/queues/${v(vhost)}/${v(name)}`);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`${node.name}: reading queue ${name} answered ${res.status}`);
  return res.json as ClusterQueue;
}

async function connect(cluster: BrokerCluster, node: ClusterNode, vhost: string) {
  return amqp.connect(`amqp://${v(cluster.username)}:${v(cluster.password)}@127.0.0.1:${node.amqpPort}/${v(vhost)}`);
}

/** Publishes persistent messages to `queue` through `node` and waits for every confirm. */
export async function publishTo(cluster: BrokerCluster, node: ClusterNode, vhost: string, queue: string, bodies: string[]): Promise<void> {
  await publishPersistent(await connect(cluster, node, vhost), queue, bodies);
}

/** Takes every message out of `queue` through `node` (acknowledged) and returns the bodies. */
export async function drain(cluster: BrokerCluster, node: ClusterNode, vhost: string, queue: string): Promise<string[]> {
  const conn = await connect(cluster, node, vhost);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const bodies: string[] = [];
    for (;;) {
      const msg = await ch.get(queue, { noAck: false });
      if (msg === false) return bodies;
      bodies.push(msg.content.toString('utf8'));
      ch.ack(msg);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Exact message count without waiting for stats: a passive declare through `node`. */
export async function clusterMessageCount(cluster: BrokerCluster, node: ClusterNode, vhost: string, queue: string): Promise<number> {
  const conn = await connect(cluster, node, vhost);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
