/**
 * The scenario `scale` and `memory` share: R RabbitQueueBatch resources × Q queues created in a
 * namespace and vhost of their own, reconciled by N operator processes until every item is Ready;
 * optionally every replica is then stopped and a cold set started to re-verify everything.
 * Returns wall times, management requests, reconcile p95 (from the operators' own histogram) and
 * peak RSS per replica, at start and at the end. Cleans up: replicas stopped, finalizers
 * stripped and custom objects deleted before the namespace (the local plane has no garbage
 * collector; the namespace itself never finishes terminating there), vhost deleted.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../../src/api/schema.js';
import { withVhost } from './broker.js';
import { deleteBatchesAndNamespace } from './cleanup.js';
import { currentRss, histogramQuantile, KUBECONFIG, metricSum, peakRss, scrapeAll, startReplicas, stopReplicas, type Replica, type ReplicaOptions } from './operator-fleet.js';
import { startCpuUse, type CpuUse } from './cpu-use.js';
import { rssKinds, type Entry } from './processes.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const api = { group: GROUP, version: VERSION, plural: PLURAL };
const OURS = 'controller="rabbitqueuebatch"';

export interface FleetOptions {
  prefix: string;
  entry: Entry;
  replicas: number;
  resources: number;
  queuesPerResource: number;
  /** Stop every replica once all is Ready and time a cold set re-verifying everything. */
  restart: boolean;
  nodeFlags?: string[];
  env?: Record<string, string>;
  /** How long the replicas sit idle before their idle RSS is read. Defaults to 1000 ms. */
  idleMs?: number;
  /** Called with the vhost once every item is Ready, before the restart (e.g. to measure planning on it). */
  whileReady?: (vhost: string) => Promise<void>;
  timeoutMs?: number;
  /** Called with the figures as soon as they are taken, before the clean-up (which can take minutes on a busy broker). */
  onFigures?: (f: FleetFigures) => void;
  /** Further processes whose CPU use the reconcile phase reports (e.g. a toxiproxy), by name. */
  cpuPids?: Record<string, number[]>;
}

export interface PhaseFigures {
  /** From the first create (or the restart) until every item is Ready, checked on the API server too. */
  seconds: number;
  /** The first create, in ms since the epoch (to line the phase up with the operators' logs). */
  startedAt?: number;
  /** Until the operators' metrics said every item is Ready (the API server's list comes after). */
  readySeconds?: number;
  /** CPU used over the phase, per process and for the whole machine. */
  cpu?: CpuUse;
  /** Per replica: reconciles, items Ready in its store, management requests (purpose="work"). */
  perReplica?: { identity: string; reconciles: number; readyItems: number; managementRequests: number }[];
  managementRequests: number;
  reconciles: number;
  /** Reconciles by result (success, error, requeue, requeue_after), summed over replicas. */
  reconcileResults: Record<string, number>;
  reconcileP95Seconds: number;
  reconcileSumSeconds: number;
  /** Time inside reconciles spent observing, planning and executing against RabbitMQ. */
  batchSumSeconds: number;
  peakRssMb: number[];
  /** RSS (VmRSS) per replica at the end of the phase. */
  endRssMb: number[];
  /** V8 heap in use per replica at the end (nodejs_heap_size_used_bytes): how much of the RSS is JavaScript objects. */
  heapUsedMb: number[];
  /** V8 heap in use per space (old, large_object, new, code, ...) per replica at the end: what the heap is made of. */
  heapSpacesMb: Record<string, number>[];
}

export interface FleetFigures {
  replicas: number;
  resources: number;
  queuesPerResource: number;
  createSeconds: number;
  /** Peak RSS of each replica once ready with nothing to do: the process at start. */
  startRssMb: number[];
  /** RSS (VmRSS) of each replica after `idleMs` ready with nothing to do. */
  idleRssMb: number[];
  /** The idle RSS of each replica split into anonymous and file-backed pages (smaps_rollup). */
  idleRssKinds: ({ anonymousMb: number; fileMb: number } | undefined)[];
  /** V8 heap in use per space of each replica when idle. */
  idleHeapSpacesMb: Record<string, number>[];
  reconcile: PhaseFigures;
  reverify?: PhaseFigures;
  /** Clean-up that failed after the figures were taken (they stand; what was left is named here). */
  cleanupError?: string;
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A call to the API server, again after a reset connection, a 429 or a 5xx: on this shared
 * machine the API server is sometimes too busy to answer, and one lost call must not lose a
 * run of many minutes. `alreadyDone`: a status that means an earlier attempt got through (409
 * for a create whose answer was lost).
 */
async function patiently<T>(what: string, call: () => Promise<T>, alreadyDone?: number): Promise<T | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number' && code === alreadyDone) return undefined;
      const transient = typeof code !== 'number' || code === 429 || code >= 500;
      if (!transient || attempt >= 8) throw new Error(`${what}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      await sleepMs(500 * attempt);
    }
  }
}

export async function runFleet(o: FleetOptions): Promise<FleetFigures> {
  const kc = new KubeConfig();
  kc.loadFromFile(KUBECONFIG);
  const objects = kc.makeApiClient(CustomObjectsApi);
  const ns = `bench-${o.prefix}-${randomBytes(3).toString('hex')}`;
  await patiently(`create namespace ${ns}`, () => kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } }));
  const identities = Array.from({ length: o.replicas }, (_, i) => `${o.prefix}-${i}`);
  const replicaOptions: ReplicaOptions = { entry: o.entry, namespace: ns, identities, ...(o.nodeFlags ? { nodeFlags: o.nodeFlags } : {}), ...(o.env ? { env: o.env } : {}) };
  const { resources: R, queuesPerResource: Q } = o;
  const timeoutMs = o.timeoutMs ?? 15 * 60_000;
  let running: Replica[] = [];
  let taken: FleetFigures | undefined;
  try {
    return await withVhost(o.prefix, async (vhost) => {
      try {
        running = await startReplicas(kc, replicaOptions);
        await sleep(o.idleMs ?? 1000);
        const startRssMb = peakRss(running);
        const idleRssMb = currentRss(running);
        const idleRssKinds = running.map((r) => rssKinds(r.child.pid!));
        const idleHeapSpacesMb = heapSpaces(await scrapeAll(running));

        const started = performance.now();
        const startedAt = Date.now();
        const cpu = startCpuUse(() => ({ operators: running.map((r) => r.child.pid!), ...o.cpuPids }));
        const names = Array.from({ length: R }, (_, r) => `r${r}`);
        const queue = [...names];
        await Promise.all(
          Array.from({ length: 10 }, async () => {
            for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
              const spec = { vhost, queues: Array.from({ length: Q }, (_, q) => ({ name: `${n}.q${q}` })) };
              await patiently(`create ${n}`, () => objects.createNamespacedCustomObject({ ...api, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: n }, spec } }), 409);
            }
          }),
        );
        const createSeconds = (performance.now() - started) / 1000;
        await waitUntil(running, timeoutMs, (t) => metricSum(t, /^rabbitbatch_items\{status="Ready"\}/) >= R * Q);
        const readySeconds = (performance.now() - started) / 1000;
        await assertAllReady(objects, ns, R);
        const reconcile = { ...(await phase(running, started, R)), readySeconds, startedAt, cpu: cpu.stop() };
        await o.whileReady?.(vhost);
        if (!o.restart) {
          taken = { replicas: o.replicas, resources: R, queuesPerResource: Q, createSeconds, startRssMb, idleRssMb, idleRssKinds, idleHeapSpacesMb, reconcile };
          o.onFigures?.(taken);
          return taken;
        }

        await stopReplicas(running);
        const restarted = performance.now();
        // No settling: the resources keep their shard labels, each replica serves its own at once.
        running = await startReplicas(kc, replicaOptions, 0);
        await waitUntil(running, timeoutMs, (t) => idle(t) && metricSum(t, new RegExp(`^controller_runtime_reconcile_total\\{${OURS},result="(success|requeue_after)"\\}`)) >= R);
        const reverify = await phase(running, restarted, R);
        taken = { replicas: o.replicas, resources: R, queuesPerResource: Q, createSeconds, startRssMb, idleRssMb, idleRssKinds, idleHeapSpacesMb, reconcile, reverify };
        o.onFigures?.(taken);
        return taken;
      } finally {
        // Before the vhost goes: running replicas would take its deletion for drift.
        await stopReplicas(running);
      }
    });
  } catch (err) {
    // The figures are in: a clean-up that failed (a busy broker dropping the connection while it
    // deletes 10,000 queues) is reported beside them rather than throwing them away.
    if (!taken) throw err;
    console.error(`clean-up after ${o.prefix}: ${(err as Error).message}`);
    return { ...taken, cleanupError: (err as Error).message };
  } finally {
    await stopReplicas(running);
    await deleteBatchesAndNamespace(kc, ns).catch((err: Error) => console.error(`clean-up of ${ns}: ${err.message}`));
  }
}

/** Nothing queued, nothing running, in any replica. */
function idle(texts: string[]): boolean {
  return metricSum(texts, /^workqueue_depth\{[^}]*name="rabbitqueuebatch"/) === 0 && metricSum(texts, new RegExp(`^controller_runtime_active_workers\\{${OURS}\\}`)) === 0;
}

async function phase(replicas: Replica[], since: number, resources: number): Promise<PhaseFigures> {
  const seconds = (performance.now() - since) / 1000;
  const texts = await scrapeAll(replicas);
  const reconciles = metricSum(texts, new RegExp(`^controller_runtime_reconcile_total\\{${OURS}`));
  if (reconciles < resources) throw new Error(`only ${reconciles} reconciles for ${resources} resources`);
  return {
    seconds,
    perReplica: replicas.map((r, i) => ({
      identity: r.identity,
      reconciles: metricSum([texts[i]!], new RegExp(`^controller_runtime_reconcile_total\\{${OURS}`)),
      readyItems: metricSum([texts[i]!], /^rabbitbatch_items\{status="Ready"\}/),
      managementRequests: metricSum([texts[i]!], /^rabbitbatch_http_requests_total\{.*purpose="work"/),
    })),
    managementRequests: metricSum(texts, /^rabbitbatch_http_requests_total\{.*purpose="work"/),
    reconciles,
    reconcileResults: Object.fromEntries(['success', 'error', 'requeue', 'requeue_after'].map((r) => [r, metricSum(texts, new RegExp(`^controller_runtime_reconcile_total\\{${OURS},result="${r}"\\}`))])),
    reconcileP95Seconds: histogramQuantile(texts, 'controller_runtime_reconcile_time_seconds', OURS, 0.95),
    reconcileSumSeconds: metricSum(texts, new RegExp(`^controller_runtime_reconcile_time_seconds_sum\\{${OURS}\\}`)),
    batchSumSeconds: metricSum(texts, /^rabbitbatch_batch_duration_seconds_sum\{/),
    peakRssMb: peakRss(replicas),
    endRssMb: currentRss(replicas),
    heapUsedMb: texts.map((t) => metricSum([t], /^nodejs_heap_size_used_bytes /) / 2 ** 20),
    heapSpacesMb: heapSpaces(texts),
  };
}

/** nodejs_heap_space_size_used_bytes of each scrape, in MB, spaces in use only. */
const heapSpaces = (texts: string[]) => texts.map((t) => Object.fromEntries([...t.matchAll(/^nodejs_heap_space_size_used_bytes\{space="(\w+)"\} (\d+)/gm)].map((m) => [m[1]!, Math.round((Number(m[2]) / 2 ** 20) * 10) / 10] as const).filter(([, mb]) => mb > 0)));

async function waitUntil(replicas: Replica[], timeoutMs: number, done: (texts: string[]) => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = replicas.find((r) => r.child.exitCode !== null);
    if (dead) throw new Error(`operator ${dead.identity} exited (${dead.child.exitCode}): ${dead.tail()}`);
    if (done(await scrapeAll(replicas))) return;
    if (Date.now() > deadline) throw new Error(`not done after ${timeoutMs} ms; last output: ${replicas.map((r) => r.tail()).join('\n')}`);
    await sleep(200);
  }
}

/** Every resource says Ready on the API server; the last status writes may land a moment after the items metric (up to 60 s). */
async function assertAllReady(objects: CustomObjectsApi, namespace: string, expected: number): Promise<void> {
  for (let i = 0; ; i++) {
    const list = (await patiently('list', () => objects.listNamespacedCustomObject({ ...api, namespace })))! as { items: RabbitQueueBatch[] };
    const ready = list.items.filter((b) => b.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    if (ready === expected) return;
    if (i >= 60) throw new Error(`${ready} of ${expected} resources Ready`);
    await sleep(1000);
  }
}
