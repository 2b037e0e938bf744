/**
 * `apply-ready`: what a user waits for, seen from the API server. One operator process
 * (`rabbitbatch operator`, default settings) and batches on a connection Secret, as users set
 * them up; every time runs from the API call until a watch event shows the status Ready for
 * that spec (`observedGeneration` caught up), never by polling:
 * - one 999-queue batch, create → Ready;
 * - one queue added to a large batch, from the moment the edit returns → Ready (three edits:
 *   997 → 998 → 999 → 1,000 queues, the median);
 * - 1,000 batches × 10 queues, first create → all Ready.
 * Baselines, measured in the same run on the same machine: the broker's own declare rate for
 * the same number of queues (50 parallel keep-alive PUTs into a fresh vhost: "the broker cap"),
 * the engine alone (planner + executor in this process, default concurrency) on the same 999
 * queues, and re-declaring every queue of the edited batch sequentially. Also counted at the
 * API server itself (its `apiserver_request_total`; this plane serves only this benchmark):
 * writes per new batch (status, Events; a finalizer only with deletionPolicy Delete). And the floor under an edit: one write of
 * the large batch object at the API server (a status patch of a copy no operator watches), against the same write of a
 * one-queue batch in the same run (an edit costs two status writes of the large object: the
 * write-ahead record and the result).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { BulkheadPolicy } from 'cockatiel';
import { GROUP, PLURAL, VERSION, specSchema, type RabbitQueueBatch } from '../src/api/schema.js';
import { executePlan } from '../src/batch/execute.js';
import { planBatch } from '../src/batch/plan.js';
import { loadEnv } from '../src/config/config.js';
import { ManagementClient } from '../src/rabbit/management-client.js';
import { observeVhost } from '../src/rabbit/observe.js';
import { MGMT, parallelPuts, sequentialPuts, timed, withVhost } from './lib/broker.js';
import { deleteBatchesAndNamespace } from './lib/cleanup.js';
import { KUBECONFIG, startReplicas, stopReplicas, type Replica } from './lib/operator-fleet.js';
import { readyForSpec, ReadyWatch } from './lib/ready-watch.js';
import { printTable, writeResult, type Row } from './lib/report.js';

const QUICK = process.env.QUICK === '1';
const BIG = QUICK ? 200 : 999;
const EDITS = 3;
const R = QUICK ? 20 : Number(process.env.APPLY_READY_RESOURCES ?? 1000);
const Q = QUICK ? 5 : 10;
const CAP_CONCURRENCY = 50;
const TIMEOUT_MS = 15 * 60_000;
const api = { group: GROUP, version: VERSION, plural: PLURAL };
const defaults = loadEnv({});

const kc = new KubeConfig();
kc.loadFromFile(KUBECONFIG);
const objects = kc.makeApiClient(CustomObjectsApi);
const ns = `bench-ready-${randomBytes(3).toString('hex')}`;
const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
/** Status writes timed per object for the edit's floor. */
const WRITES = 15;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** API-server writes of RabbitQueueBatches (spec/metadata and status patches, not the bench's creates) and of Events, so far. */
function apiServerWrites(): { batch: number; status: number; events: number } {
  const text = execFileSync('kubectl', ['--kubeconfig', KUBECONFIG, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const sum = (match: (l: string) => boolean) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('apiserver_request_total{') && match(l))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  const write = (l: string) => /verb="(PATCH|APPLY|PUT|UPDATE)"/.test(l);
  return {
    batch: sum((l) => l.includes('resource="rabbitqueuebatches"') && l.includes('subresource=""') && write(l)),
    status: sum((l) => l.includes('resource="rabbitqueuebatches"') && l.includes('subresource="status"') && write(l)),
    events: sum((l) => l.includes('resource="events"') && /verb="(POST|CREATE|PATCH)"/.test(l)),
  };
}

/** The engine alone, in this process, with the operator's default concurrency: what the operator adds is the rest. */
async function engineAlone(vhost: string, queues: string[]): Promise<number> {
  const client = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest', minSize: defaults.HTTP_POOL_MIN_SIZE, maxSize: defaults.HTTP_POOL_MAX_SIZE });
  try {
    await client.warm();
    return await timed(async () => {
      const spec = specSchema.parse({ vhost, queues: queues.map((name) => ({ name })) });
      const plan = planBatch({ spec, observed: await observeVhost(client, vhost) });
      const result = await executePlan(plan, client, { mode: spec.mode, concurrency: defaults.BATCH_CONCURRENCY });
      if (result.outcome !== 'Succeeded') throw new Error(`engine: ${result.outcome}`);
    });
  } finally {
    await client.close();
  }
}

const rows: Row[] = [];
const figures: Record<string, unknown> = {};
let replicas: Replica[] = [];
let watch: ReadyWatch | undefined;
await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
try {
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'broker' }, stringData: { uri: MGMT, username: 'guest', password: 'guest' } } });
  const rabbitmq = { connectionSecret: { name: 'broker' } };
  replicas = await startReplicas(kc, { entry: 'source', namespace: ns, identities: ['apply-ready-0'] });
  watch = await ReadyWatch.start(kc, ns);
  const w = watch;

  // A warm-up batch: the first reconcile of a process pays for compiling its code paths and
  // opening its connections, which is not what a user applying a batch to a running operator waits for.
  await withVhost('warm', async (vhost) => {
    await objects.createNamespacedCustomObject({ ...api, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: 'warm' }, spec: { vhost, rabbitmq, queues: names('w', 20).map((name) => ({ name })) } } });
    await w.until(() => readyForSpec(w.seen.get('warm')), TIMEOUT_MS, 'warm-up batch Ready');
    await objects.deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'warm' });
    await w.until(() => !w.seen.has('warm'), TIMEOUT_MS, 'warm-up batch gone');
  });

  console.log('apply-ready: one large batch, then edits');
  // 1. One large batch, create → Ready; the broker cap and the engine alone on the same queues.
  const big = names('q', BIG);
  const capBig = await withVhost('capbig', (vh) => parallelPuts(MGMT, vh, big, CAP_CONCURRENCY));
  const engine = await withVhost('engine', (vh) => engineAlone(vh, big));
  await withVhost('big', async (vhost) => {
    const before = apiServerWrites();
    const spec = (n: number) => ({ vhost, rabbitmq, queues: names('q', n).map((name) => ({ name })) });
    const first = BIG + 1 - EDITS; // the last edit reaches BIG + 1 (1,000: the most one batch may hold)
    let createCallSeconds = 0;
    const createSeconds = await timed(async () => {
      createCallSeconds = await timed(() => objects.createNamespacedCustomObject({ ...api, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: 'big' }, spec: spec(first) } }));
      await w.until(() => readyForSpec(w.seen.get('big')), TIMEOUT_MS, 'big batch Ready');
    });
    const afterCreate = apiServerWrites();
    // 2. One queue added, EDITS times: from the moment the edit returns until Ready for it.
    const edits: { callSeconds: number; readySeconds: number }[] = [];
    for (let n = first + 1; n <= first + EDITS; n++) {
      const t0 = performance.now();
      const patched = (await objects.patchNamespacedCustomObject({ ...api, namespace: ns, name: 'big', body: [{ op: 'add', path: '/spec/queues/-', value: { name: names('q', n).at(-1) } }] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch))) as { metadata: { generation: number } };
      const t1 = performance.now();
      await w.until(() => readyForSpec(w.seen.get('big'), patched.metadata.generation), TIMEOUT_MS, `edit to generation ${patched.metadata.generation} Ready`);
      edits.push({ callSeconds: (t1 - t0) / 1000, readySeconds: (performance.now() - t1) / 1000 });
    }
    const measured = apiServerWrites();
    // Not the operator's: the benchmark's own edits are patches of the batch too.
    const afterEdits = { ...measured, batch: measured.batch - EDITS };
    const finalQueues = first + EDITS;
    const sequentialAll = await sequentialPuts(MGMT, vhost, names('q', finalQueues));
    // The floor under an edit: what one write of this object costs the API server, against the
    // same write of a one-queue batch. Copies of both, made as the benchmark made them (the same
    // creator, hence the same managed fields) and given the status the operator wrote, in a
    // namespace no operator watches: a status patch there is exactly the write an edit waits for
    // twice (the write-ahead record, the result), and nothing reconciles after it.
    await objects.createNamespacedCustomObject({ ...api, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: 'tiny' }, spec: { vhost, rabbitmq, queues: [{ name: 'tiny' }] } } });
    await w.until(() => readyForSpec(w.seen.get('tiny')), TIMEOUT_MS, 'one-queue batch Ready');
    const writeTimes = await statusWriteTimes(['big', 'tiny'], vhost, rabbitmq);
    await objects.deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'tiny' });
    await w.until(() => !w.seen.has('tiny'), TIMEOUT_MS, 'one-queue batch gone');
    Object.assign(figures, { writeTimes, capBigSeconds: capBig, engineSeconds: engine, createSeconds, createCallSeconds, edits, sequentialAllSeconds: sequentialAll, writesCreate: diff(afterCreate, before), writesPerEdit: scale(diff(afterEdits, afterCreate), 1 / EDITS) });
    const editReady = median(edits.map((e) => e.readySeconds));
    const editTotal = median(edits.map((e) => e.callSeconds + e.readySeconds));
    const createRate = first / createSeconds;
    const capRate = BIG / capBig;
    const write = median(writeTimes.big);
    const floorCreate = first / capRate + createCallSeconds + 2 * write;
    rows.push(
      { name: `broker cap: ${BIG} durable queues, ${CAP_CONCURRENCY} parallel keep-alive PUTs`, value: capRate, unit: 'queues/s' },
      { name: `engine alone: ${BIG} queues, planner + executor in-process (BATCH_CONCURRENCY default ${defaults.BATCH_CONCURRENCY})`, value: BIG / engine, unit: 'queues/s', baseline: 'vs broker cap', ratio: BIG / engine / capRate },
      { name: `one ${first}-queue batch: create → Ready (watch)`, value: createRate, unit: 'queues/s', baseline: 'vs broker cap', ratio: createRate / capRate, goal: '>= 0.8 of broker cap', met: createRate / capRate >= 0.8 },
      { name: `one queue added to a ${first}–${finalQueues - 1}-queue batch: edit returned → Ready (watch), median of ${EDITS}`, value: editReady, unit: 's', baseline: `vs re-declaring all ${finalQueues} queues sequentially (${sequentialAll.toFixed(2)} s)`, ratio: sequentialAll / editReady, goal: '<= 0.3 s', met: editReady <= 0.3 },
      { name: 'one queue added: incl. the edit call itself, median', value: editTotal, unit: 's' },
      { name: `API-server writes for the new ${first}-queue batch (batch patches + status patches + Events)`, value: sum(diff(afterCreate, before)), unit: 'writes' },
      { name: 'API-server writes per one-queue edit (the edit itself not counted)', value: sum(diff(afterEdits, afterCreate)) / EDITS, unit: 'writes' },
      { name: `one status write of the ${finalQueues}-queue batch at the API server (a status patch), median of ${WRITES}`, value: write, unit: 's', baseline: `vs the same write of a one-queue batch (${(median(writeTimes.tiny) * 1000).toFixed(0)} ms)`, ratio: write / median(writeTimes.tiny) },
      // What the guarantees leave when the operator itself took no time: measured, not assumed.
      { name: 'floor under edit → Ready: the two status writes of the object every edit waits for (write-ahead record, result)', value: 2 * write, unit: 's', baseline: 'the median edit → Ready as a multiple of it', ratio: editReady / (2 * write) },
      {
        name: `floor under create → Ready: the broker cap for ${first} queues + the create call + two status writes (write-ahead record, result)`,
        value: first / floorCreate,
        unit: 'queues/s',
        baseline: 'vs broker cap',
        ratio: first / floorCreate / capRate,
      },
    );
    await objects.deleteNamespacedCustomObject({ ...api, namespace: ns, name: 'big' });
    await w.until(() => !w.seen.has('big'), TIMEOUT_MS, 'big batch gone');
  });

  // APPLY_READY_RESOURCES=0 leaves the fleet out (e.g. to measure an older tree's single batch quickly).
  if (R > 0) console.log(`apply-ready: ${R} batches × ${Q} queues`);
  // 3. R batches × Q queues, first create → all Ready; the cap on the same number of queues.
  if (R > 0) await fleet();
  async function fleet(): Promise<void> {
  const fleetNames = Array.from({ length: R }, (_, r) => `r${String(r).padStart(4, '0')}`);
  const capFleet = await withVhost('capfleet', (vh) => parallelPuts(MGMT, vh, fleetNames.flatMap((r) => names(`${r}.q`, Q)), CAP_CONCURRENCY));
  await withVhost('fleet', async (vhost) => {
    const before = apiServerWrites();
    let createsSeconds = 0;
    const started = performance.now();
    const seconds = await timed(async () => {
      const queue = [...fleetNames];
      const creating = Promise.all(
        Array.from({ length: 10 }, async () => {
          for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
            await objects.createNamespacedCustomObject({ ...api, namespace: ns, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: n }, spec: { vhost, rabbitmq, queues: names(`${n}.q`, Q).map((name) => ({ name })) } } });
          }
        }),
      ).then(() => (createsSeconds = (performance.now() - started) / 1000));
      await creating;
      await w.until(() => fleetNames.every((n) => readyForSpec(w.seen.get(n))), TIMEOUT_MS, `${R} batches Ready`);
    });
    const writes = diff(apiServerWrites(), before);
    const queues = R * Q;
    const rate = queues / seconds;
    const capRate = queues / capFleet;
    const apiAlone = await fleetWritesAlone(fleetNames, vhost, rabbitmq);
    // Broker and API server can work at once, so the slower of the two alone is the floor.
    const floorSeconds = Math.max(capFleet, apiAlone);
    Object.assign(figures, { fleetSeconds: seconds, capFleetSeconds: capFleet, fleetWrites: writes, createsSeconds, fleetApiWritesAloneSeconds: apiAlone });
    rows.push(
      { name: `broker cap: ${queues} durable queues, ${CAP_CONCURRENCY} parallel keep-alive PUTs`, value: capRate, unit: 'queues/s' },
      { name: `${R} batches × ${Q} queues: first create → all Ready (watch)`, value: seconds, unit: 's', baseline: `vs broker cap (${rate.toFixed(0)} queues/s reached)`, ratio: rate / capRate, goal: '>= 0.5 of broker cap', met: rate / capRate >= 0.5 },
      { name: `the benchmark's own ${R} creates on the API server (10 at a time), inside that time`, value: createsSeconds, unit: 's', baseline: 'share of first create → all Ready', ratio: createsSeconds / seconds },
      {
        name: `the API server alone doing the fleet's writes (${R} creates, and per batch two status patches and an Event; 10 + 10 at a time, no operator, no broker)`,
        value: apiAlone,
        unit: 's',
        baseline: 'vs the broker cap for the same queues',
        ratio: capFleet / apiAlone,
      },
      { name: `floor under ${R} × ${Q} create → all Ready: the slower of the broker cap and the API server alone`, value: queues / floorSeconds, unit: 'queues/s', baseline: 'vs broker cap', ratio: capFleet / floorSeconds },
      { name: `API-server writes per new ${Q}-queue batch (batch patches + status patches + Events)`, value: sum(writes) / R, unit: 'writes' },
    );
  });
  }
} finally {
  watch?.stop();
  await stopReplicas(replicas);
  await deleteBatchesAndNamespace(kc, ns);
}

/**
 * Median-able times of status patches of copies of `names` (spec and status as the operator left
 * them) in a namespace of their own that no operator watches; alternating values of
 * `status.ready`, so each patch is a real write.
 */
async function statusWriteTimes<N extends string>(names: N[], vhost: string, rabbitmq: unknown): Promise<Record<N, number[]>> {
  return inUnwatchedNamespace('floor', async (floorNs) => {
    const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<N, number[]>;
    for (const name of names) {
      const original = (await objects.getNamespacedCustomObject({ ...api, namespace: ns, name })) as RabbitQueueBatch;
      await objects.createNamespacedCustomObject({ ...api, namespace: floorNs, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name }, spec: { ...original.spec, vhost, rabbitmq } } });
      await objects.patchNamespacedCustomObjectStatus({ ...api, namespace: floorNs, name, body: { status: original.status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    }
    for (let i = 0; i < WRITES; i++) {
      for (const name of names) {
        const t0 = performance.now();
        await objects.patchNamespacedCustomObjectStatus({ ...api, namespace: floorNs, name, body: { status: { ready: `write ${i}` } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
        times[name].push((performance.now() - t0) / 1000);
      }
    }
    return times;
  });
}

/**
 * The API server's part of a fleet alone: in a namespace no operator watches, the benchmark's
 * creates and, for each batch, the writes the operator makes for a new one (the write-ahead
 * status, the result status, one Event), with the fleet's concurrency.
 */
async function fleetWritesAlone(batchNames: string[], vhost: string, rabbitmq: unknown): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  // As in the fleet: 10 creators, and at most 10 batches written for at once (the operator's
  // MAX_CONCURRENT_RECONCILES), each as soon as it exists.
  const reconciles = new BulkheadPolicy(10, Number.MAX_SAFE_INTEGER);
  const writeFor = async (floorNs: string, n: string) => {
    const queues = names(`${n}.q`, Q);
    // No finalizer: the fleet's batches are deletionPolicy Retain (the default).
    await objects.patchNamespacedCustomObjectStatus({ ...api, namespace: floorNs, name: n, body: { status: { applying: queues.map((q) => `queue/${q}`) } } }, merge);
    const items = queues.map((q) => ({ resource: `queue/${q}`, status: 'Ready' }));
    await objects.patchNamespacedCustomObjectStatus({ ...api, namespace: floorNs, name: n, body: { status: { observedGeneration: 1, ready: `${Q}/${Q}`, applying: null, items, applied: { vhost, exchanges: [], queues, bindings: [] }, summary: { total: Q, ready: Q, failed: 0, conflicts: 0 } } } }, merge);
    await core.createNamespacedEvent({ namespace: floorNs, body: { metadata: { generateName: `${n}.` }, involvedObject: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', name: n, namespace: floorNs }, reason: 'Applied', message: `created ${Q} objects`, type: 'Normal', source: { component: 'rabbitbatch' } } });
  };
  return inUnwatchedNamespace('fleet-floor', (floorNs) =>
    timed(async () => {
      const toCreate = [...batchNames];
      const writes: Promise<void>[] = [];
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          for (let n = toCreate.shift(); n !== undefined; n = toCreate.shift()) {
            await objects.createNamespacedCustomObject({ ...api, namespace: floorNs, body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'RabbitQueueBatch', metadata: { name: n }, spec: { vhost, rabbitmq, queues: names(`${n}.q`, Q).map((name) => ({ name })) } } });
            writes.push(reconciles.execute(() => writeFor(floorNs, n)));
          }
        }),
      );
      await Promise.all(writes);
    }),
  );
}

/** `work` in a namespace of its own (`<ns>-<suffix>`) that no operator watches; removed afterwards. */
async function inUnwatchedNamespace<T>(suffix: string, work: (namespace: string) => Promise<T>): Promise<T> {
  const namespace = `${ns}-${suffix}`;
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  try {
    return await work(namespace);
  } finally {
    await deleteBatchesAndNamespace(kc, namespace);
  }
}

function diff(a: ReturnType<typeof apiServerWrites>, b: ReturnType<typeof apiServerWrites>) {
  return { batch: a.batch - b.batch, status: a.status - b.status, events: a.events - b.events };
}
function scale(a: ReturnType<typeof apiServerWrites>, f: number) {
  return { batch: a.batch * f, status: a.status * f, events: a.events * f };
}
function sum(a: ReturnType<typeof apiServerWrites>): number {
  return a.batch + a.status + a.events;
}

printTable('apply-ready: kubectl apply → Ready, seen through a watch', rows);
console.log(
  `wrote ${writeResult('apply-ready', {
    rows,
    figures,
    notes: [
      'One operator process from source with default settings; batches name a connection Secret. Times end at the watch event that shows Ready with observedGeneration caught up.',
      'The broker cap is measured in the same run: the same number of durable queues, 50 parallel keep-alive PUTs, in a fresh vhost. The broker, the API server, etcd and the operator share the 2 cores.',
      'API-server writes are counted by the API server (apiserver_request_total): PATCH/PUT of rabbitqueuebatches and their status, POST/PATCH of Events.',
    ],
  })}`,
);
process.exit(0);
