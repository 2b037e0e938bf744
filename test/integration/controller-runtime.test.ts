/**
 * The generic controller runtime against a real kube-apiserver, on a CRD of its own
 * (`gadgets.runtime-test.rabbitbatch.io`) so nothing here depends on the RabbitQueueBatch API.
 * Network outages are real too: the watcher talks to the apiserver through a TCP relay that
 * the test can cut.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Controller, TerminalError, type ReconcileRequest } from '../../src/controllers/controller.js';
import { setCondition, type Condition } from '../../src/kube/conditions.js';
import { isNotFound } from '../../src/kube/custom-object.js';
import { EventRecorder } from '../../src/kube/events.js';
import { addFinalizerPersisted, isFinalizerConflict, removeFinalizerPersisted } from '../../src/kube/finalizer.js';
import { Reflector, type ReflectedEvent } from '../../src/kube/reflector.js';
import type { KubeObject } from '../../src/kube/store.js';
import { patchStatus, writeStatusIfChanged } from '../../src/kube/status.js';
import { isGone } from '../../src/kube/watcher.js';
import { createTestNamespace, loadKubeConfig } from '../support/kube.js';

const GROUP = 'runtime-test.rabbitbatch.io';
const VERSION = 'v1';
const PLURAL = 'gadgets';
const API_VERSION = `${GROUP}/${VERSION}`;

interface Gadget extends KubeObject {
  spec?: { value?: number };
  status?: { conditions?: Condition[]; seen?: number; note?: string };
}

const CRD: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    scope: 'Namespaced',
    names: { plural: PLURAL, singular: 'gadget', kind: 'Gadget', listKind: 'GadgetList' },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
              status: { type: 'object', x_kubernetes_preserve_unknown_fields: true },
            },
          },
        },
      },
    ],
  },
};

/** Waits for an eventually consistent outcome; fails with the last assertion error. */
const eventually = <T>(fn: () => T | Promise<T>) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });

let kc: KubeConfig;
let objects: CustomObjectsApi;
let ns: string;
let cleanupNamespace: (() => Promise<void>) | undefined;

const gadgetsPath = () => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`;
const ref = (name: string) => ({ group: GROUP, version: VERSION, plural: PLURAL, namespace: ns, name });

async function createGadget(name: string, value = 1, finalizers?: string[]): Promise<Gadget> {
  const body = { apiVersion: API_VERSION, kind: 'Gadget', metadata: { name, namespace: ns, ...(finalizers ? { finalizers } : {}) }, spec: { value } };
  return (await objects.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, body })) as Gadget;
}

async function getGadget(name: string): Promise<Gadget> {
  return (await objects.getNamespacedCustomObject({ ...ref(name) })) as Gadget;
}

async function mergePatch(name: string, body: object): Promise<Gadget> {
  return (await objects.patchNamespacedCustomObject({ ...ref(name), body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))) as Gadget;
}

async function deleteGadget(name: string): Promise<void> {
  await objects.deleteNamespacedCustomObject({ ...ref(name) });
}

async function installCrd(): Promise<void> {
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  try {
    await ext.createCustomResourceDefinition({ body: CRD });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await eventually(async () => {
    const crd = await ext.readCustomResourceDefinition({ name: CRD.metadata!.name! });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
  });
}

interface Relay {
  kubeConfig: KubeConfig;
  /** Drops every connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  /** Silences the connections open now without closing them (a half-open TCP link); new ones work. */
  freeze(): void;
  close(): Promise<void>;
}

/** A TCP relay in front of the apiserver, to make real network failures. */
async function startRelay(target: URL): Promise<Relay> {
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) return void client.destroy();
    const upstream = connect(Number(target.port || 443), target.hostname);
    sockets.add(client).add(upstream);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const cleanup = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) s.on('error', cleanup).on('close', cleanup);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const relayed = new KubeConfig();
  relayed.loadFromString(kc.exportConfig());
  const current = relayed.getCurrentCluster()!;
  const server2 = new URL(current.server);
  server2.port = String(port);
  relayed.clusters = relayed.clusters.map((c) => (c.name === current.name ? { ...c, server: server2.origin } : c));
  return {
    kubeConfig: relayed,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      pairs.clear();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = await registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val) && !('metricName' in v && String(v.metricName).endsWith('_bucket')))?.value;
}

beforeAll(async () => {
  kc = loadKubeConfig();
  objects = kc.makeApiClient(CustomObjectsApi);
  await installCrd();
  const namespace = await createTestNamespace('runtime');
  ns = namespace.name;
  cleanupNamespace = namespace.cleanup;
  // The CRD's REST endpoint can lag behind Established by a moment.
  await eventually(() => objects.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL }));
});

afterAll(async () => {
  await cleanupNamespace?.();
});

describe('Controller', () => {
  let controller: Controller<Gadget> | undefined;
  afterAll(async () => {
    await controller?.stop();
  });

  it('syncs existing objects, then reconciles creates, updates and deletes from the store (level-based)', async () => {
    await createGadget('a', 1);
    await createGadget('b', 1);
    const registry = new Registry();
    // What the store held for each key when its reconcile ran: the only truth a reconcile uses.
    const seen: Array<{ key: string; value: number | 'absent' }> = [];
    controller = new Controller<Gadget>({
      name: 'gadgets',
      kubeConfig: kc,
      path: gadgetsPath(),
      registry,
      reconcile: async (req: ReconcileRequest, ctx) => {
        const obj = ctx.store.get(`${req.namespace}/${req.name}`);
        seen.push({ key: req.name, value: obj?.spec?.value ?? 'absent' });
        expect(ctx.reconcileID).toMatch(/^[0-9a-f-]{36}$/);
        return {};
      },
    });
    await controller.start();
    expect(controller.hasSynced()).toBe(true);
    expect(controller.store.keys().sort()).toEqual([`${ns}/a`, `${ns}/b`]);
    await eventually(() => expect(seen).toEqual(expect.arrayContaining([{ key: 'a', value: 1 }, { key: 'b', value: 1 }])));

    await createGadget('c', 7);
    await eventually(() => expect(seen).toContainEqual({ key: 'c', value: 7 }));
    await mergePatch('a', { spec: { value: 2 } });
    await eventually(() => expect(seen).toContainEqual({ key: 'a', value: 2 }));
    await deleteGadget('b');
    await eventually(() => expect(seen).toContainEqual({ key: 'b', value: 'absent' }));
    expect(controller.store.get(`${ns}/b`)).toBeUndefined();

    // Every label combination exists, and the successes were counted.
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) {
      expect(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'gadgets', result })).toBeDefined();
    }
    expect(await metricValue(registry, 'controller_runtime_reconcile_total', { controller: 'gadgets', result: 'success' })).toBeGreaterThanOrEqual(5);
    expect(await metricValue(registry, 'controller_runtime_max_concurrent_reconciles', { controller: 'gadgets' })).toBe(10);
    expect(await metricValue(registry, 'workqueue_adds_total', { name: 'gadgets', controller: 'gadgets' })).toBeGreaterThanOrEqual(5);
    await controller.stop();
  });

  it('retries errors with backoff, does not retry terminal errors, counts panics, and requeues after a delay', async () => {
    for (const name of ['flaky', 'terminal', 'panicky', 'periodic']) await createGadget(name);
    const registry = new Registry();
    const calls = new Map<string, number>();
    controller = new Controller<Gadget>({
      name: 'outcomes',
      kubeConfig: kc,
      path: gadgetsPath(),
      registry,
      fieldSelector: undefined,
      reconcile: async ({ name }) => {
        const n = (calls.get(name) ?? 0) + 1;
        calls.set(name, n);
        if (name === 'flaky' && n <= 2) throw new Error('broker unavailable');
        if (name === 'terminal') throw new TerminalError('spec can never work');
        if (name === 'panicky' && n === 1) (undefined as unknown as { boom(): void }).boom();
        if (name === 'periodic' && n <= 2) return { requeueAfterMs: 100 };
        return {};
      },
    });
    await controller.start();
    const m = (name: string, labels: Record<string, string> = {}) => metricValue(registry, name, { controller: 'outcomes', ...labels });
    await eventually(async () => {
      expect(calls.get('flaky')).toBe(3);
      expect(calls.get('panicky')).toBe(2);
      expect(calls.get('periodic')).toBe(3);
      expect(await m('controller_runtime_terminal_reconcile_errors_total')).toBe(1);
      // flaky ×2, terminal, panicky
      expect(await m('controller_runtime_reconcile_errors_total')).toBe(4);
      expect(await m('controller_runtime_reconcile_panics_total')).toBe(1);
      expect(await m('controller_runtime_reconcile_total', { result: 'requeue_after' })).toBe(2);
    });
    // Retries: flaky ×2 and panicky ×1 (rate-limited), periodic ×2 (requeueAfter); never the terminal one.
    expect(await metricValue(registry, 'workqueue_retries_total', { name: 'outcomes' })).toBe(5);
    expect(calls.get('terminal')).toBe(1);
    await controller.stop();
    for (const name of ['flaky', 'terminal', 'panicky', 'periodic']) await deleteGadget(name);
  });

  it('stop() waits for the reconcile in flight to finish', async () => {
    await createGadget('slow');
    const started = Promise.withResolvers<void>();
    // The reconcile ends by itself, well after stop() was called; the test never releases it.
    let finished = false;
    controller = new Controller<Gadget>({
      name: 'graceful',
      kubeConfig: kc,
      path: gadgetsPath(),
      reconcile: async ({ name }) => {
        if (name !== 'slow') return {};
        started.resolve();
        await new Promise((r) => setTimeout(r, 1500));
        finished = true;
        return {};
      },
    });
    await controller.start();
    await started.promise;
    // What the reconcile had done at the moment stop() resolved: a stop that did not wait sees false.
    const finishedWhenStopped = await controller.stop().then(() => finished);
    expect(finishedWhenStopped).toBe(true);
    await deleteGadget('slow');
  });
});

describe('Watcher and reflector through a connection that fails', () => {
  it('resumes a dropped watch from its last resourceVersion, and a forced relist drops objects deleted meanwhile', async () => {
    const cluster = kc.getCurrentCluster()!;
    const relay = await startRelay(new URL(cluster.server));
    const reflector = new Reflector<Gadget>({ kubeConfig: relay.kubeConfig, path: gadgetsPath(), backoff: { initialMs: 50, maxMs: 200 } });
    const events: ReflectedEvent<Gadget>[] = [];
    try {
      await createGadget('keep', 1);
      await createGadget('doomed', 1);
      reflector.start((e) => events.push(e));
      await reflector.store.waitForSync();
      expect(reflector.store.get(`${ns}/doomed`)).toBeDefined();
      // Once a change arrived, the watch stream is up.
      await mergePatch('keep', { spec: { value: 2 } });
      await eventually(() => expect(reflector.store.get(`${ns}/keep`)?.spec?.value).toBe(2));

      // Outage 1: the watch drops; a change made meanwhile arrives once it reconnects,
      // replayed from its resourceVersion rather than by a relist.
      relay.cut();
      await mergePatch('keep', { spec: { value: 3 } });
      relay.restore();
      await eventually(() => expect(reflector.store.get(`${ns}/keep`)?.spec?.value).toBe(3));
      expect(events.filter((e) => e.type === 'restarted')).toHaveLength(1);

      // Outage 2: an object is deleted while nothing is connected, then a full relist.
      relay.cut();
      await deleteGadget('doomed');
      reflector.restartWatch();
      relay.restore();
      await eventually(() => expect(events.filter((e) => e.type === 'restarted')).toHaveLength(2));
      const relist = events.filter((e) => e.type === 'restarted')[1] as Extract<ReflectedEvent<Gadget>, { type: 'restarted' }>;
      expect(reflector.store.get(`${ns}/doomed`)).toBeUndefined();
      expect(relist.vanished).toContain(`${ns}/doomed`);
      // No delete event was invented for it.
      expect(events.some((e) => e.type === 'deleted' && e.key === `${ns}/doomed`)).toBe(false);
    } finally {
      await reflector.stop();
      relay.cut();
      await relay.close();
    }
    await deleteGadget('keep');
  });

  it('a watchdog restarts a watch that went silent (half-open connection)', async () => {
    const relay = await startRelay(new URL(kc.getCurrentCluster()!.server));
    const logLines: Array<{ msg?: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logLines.push(JSON.parse(line) as { msg?: string }) });
    // A short server-side timeout keeps the watchdog short: 2 s + 0.5 s of silence.
    const reflector = new Reflector<Gadget>({ kubeConfig: relay.kubeConfig, path: gadgetsPath(), timeoutSeconds: 2, watchdogMarginMs: 500, backoff: { initialMs: 50, maxMs: 200 }, logger });
    try {
      await createGadget('quiet', 1);
      reflector.start(() => undefined);
      await reflector.store.waitForSync();
      // Once a change arrived, the watch connection exists: silence it.
      await mergePatch('quiet', { spec: { value: 2 } });
      await eventually(() => expect(reflector.store.get(`${ns}/quiet`)?.spec?.value).toBe(2));
      relay.freeze();
      await mergePatch('quiet', { spec: { value: 3 } });
      await eventually(() => expect(reflector.store.get(`${ns}/quiet`)?.spec?.value).toBe(3));
      expect(logLines.some((l) => JSON.stringify(l).includes('presumed dead'))).toBe(true);
    } finally {
      await reflector.stop();
      relay.cut();
      await relay.close();
    }
    await deleteGadget('quiet');
  });

  it('the apiserver reports a too-old resourceVersion as a 410 ERROR event that isGone recognises', async () => {
    const status = await new Promise<unknown>((resolve, reject) => {
      const watch = new Watch(kc);
      void watch
        .watch(gadgetsPath(), { resourceVersion: '1', allowWatchBookmarks: true }, (type, obj) => {
          if (type === 'ERROR') resolve(obj);
        }, (err) => (err ? reject(err as Error) : undefined))
        .then((ctl) => setTimeout(() => ctl.abort(), 20_000).unref());
    });
    expect(status).toMatchObject({ kind: 'Status', code: 410 });
    expect(isGone(status)).toBe(true);
  });
});

describe('status', () => {
  it('writes /status with a merge patch, and skips the write when nothing but condition times changed', async () => {
    const created = await createGadget('status-1');
    const first = { seen: 1, note: 'hello', conditions: setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ok', message: 'fine' }, 1, new Date('2025-01-01T00:00:00Z')) };
    expect(await writeStatusIfChanged(kc, ref('status-1'), created.status, first)).toBe(true);
    const afterFirst = await getGadget('status-1');
    expect(afterFirst.status).toEqual(first);
    expect(afterFirst.spec).toEqual({ value: 1 });

    // Same content, recomputed later: only lastTransitionTime would differ → no write.
    const again = { seen: 1, note: 'hello', conditions: [{ ...first.conditions[0]!, lastTransitionTime: '2025-06-01T00:00:00Z' }] };
    expect(await writeStatusIfChanged(kc, ref('status-1'), afterFirst.status, again)).toBe(false);
    expect((await getGadget('status-1')).metadata?.resourceVersion).toBe(afterFirst.metadata?.resourceVersion);

    // A real change is written, and a field the new status lacks is removed.
    expect(await writeStatusIfChanged(kc, ref('status-1'), afterFirst.status, { seen: 2, conditions: first.conditions })).toBe(true);
    expect((await getGadget('status-1')).status).toEqual({ seen: 2, conditions: first.conditions });

    // patchStatus alone merges: fields it does not mention stay.
    await patchStatus(kc, ref('status-1'), { note: 'direct' });
    expect((await getGadget('status-1')).status).toMatchObject({ seen: 2, note: 'direct' });
    await deleteGadget('status-1');
  });
});

describe('finalizers', () => {
  const OURS = 'runtime-test.rabbitbatch.io/cleanup';
  const THEIRS = 'other.example.com/protect';

  it('adds and removes only its own finalizer, and a concurrent change makes the write fail instead of clobbering', async () => {
    const stale = await createGadget('fin-1');
    const r = ref('fin-1');
    expect(await addFinalizerPersisted(kc, r, stale, OURS)).toBe(true);
    expect((await getGadget('fin-1')).metadata?.finalizers).toEqual([OURS]);

    // Someone else adds theirs; a write based on the stale copy (no finalizers) must fail.
    await mergePatch('fin-1', { metadata: { finalizers: [OURS, THEIRS] } });
    const error = await addFinalizerPersisted(kc, r, stale, OURS).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(isFinalizerConflict(error)).toBe(true);
    expect((await getGadget('fin-1')).metadata?.finalizers).toEqual([OURS, THEIRS]);

    // From a fresh read: already there → no write; removal keeps theirs.
    const fresh = await getGadget('fin-1');
    expect(await addFinalizerPersisted(kc, r, fresh, OURS)).toBe(false);
    expect(await removeFinalizerPersisted(kc, r, fresh, OURS)).toBe(true);
    expect((await getGadget('fin-1')).metadata?.finalizers).toEqual([THEIRS]);
    // Removing from the stale copy (which still lists ours) fails rather than dropping theirs.
    expect(isFinalizerConflict(await removeFinalizerPersisted(kc, r, fresh, OURS).catch((e: unknown) => e))).toBe(true);
    expect((await getGadget('fin-1')).metadata?.finalizers).toEqual([THEIRS]);

    // Their finalizer holds deletion until they release it.
    await deleteGadget('fin-1');
    const terminating = await getGadget('fin-1');
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    await mergePatch('fin-1', { metadata: { finalizers: null } });
    await eventually(async () => expect(isNotFound(await getGadget('fin-1').catch((e: unknown) => e))).toBe(true));
  });

  it('removing from an object that is already gone counts as done', async () => {
    const obj = await createGadget('fin-2', 1, [OURS]);
    await mergePatch('fin-2', { metadata: { finalizers: null } });
    await deleteGadget('fin-2');
    expect(await removeFinalizerPersisted(kc, ref('fin-2'), obj, OURS)).toBe(false);
  });
});

describe('EventRecorder', () => {
  it('creates Events and aggregates repeats into one with a count', async () => {
    const gadget = await createGadget('evented');
    const recorder = new EventRecorder({ kubeConfig: kc, instance: 'test-pod' });
    await recorder.record(gadget, 'Warning', 'Conflict', 'queue/q: x-message-ttl differs');
    await recorder.record(gadget, 'Warning', 'Conflict', 'queue/q: x-message-ttl differs');
    await Promise.all([recorder.record(gadget, 'Normal', 'Created', 'created 3 queues'), recorder.record(gadget, 'Normal', 'Created', 'created 3 queues')]);
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=evented` });
    const byReason = Object.fromEntries(list.items.map((e) => [e.reason, e]));
    expect(list.items).toHaveLength(2);
    expect(byReason.Conflict).toMatchObject({
      type: 'Warning',
      count: 2,
      message: 'queue/q: x-message-ttl differs',
      involvedObject: { apiVersion: API_VERSION, kind: 'Gadget', name: 'evented', namespace: ns, uid: gadget.metadata?.uid },
      source: { component: 'rabbitbatch', host: 'test-pod' },
      reportingComponent: 'rabbitbatch',
      reportingInstance: 'test-pod',
    });
    expect(byReason.Created?.count).toBe(2);
    expect(byReason.Conflict?.lastTimestamp?.getTime()).toBeGreaterThanOrEqual(byReason.Conflict?.firstTimestamp?.getTime() ?? Infinity);
    await deleteGadget('evented');
  });

  it('never throws when the Event cannot be written', async () => {
    const recorder = new EventRecorder({ kubeConfig: kc });
    await expect(recorder.record({ apiVersion: API_VERSION, kind: 'Gadget', metadata: { name: 'x', namespace: 'no-such-namespace-xyz' } }, 'Normal', 'R', 'm')).resolves.toBeUndefined();
  });
});
