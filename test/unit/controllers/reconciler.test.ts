/**
 * The batch reconciler's decisions, on fakes of its injected interfaces (an in-memory broker
 * behind `ManagementApi`, a store with the claims index): what it writes to the status, what it
 * returns to the controller, and what it remembers per key. The real servers are covered by the
 * integration tests (operator.test.ts, ha.test.ts).
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { BindingSpec, ExchangeSpec, QueueSpec, RabbitQueueBatch, RabbitQueueBatchSpecInput, RabbitQueueBatchStatus } from '../../../src/api/schema.js';
import { CLAIMS_INDEX, claimsIndex, keyOf } from '../../../src/controllers/claims.js';
import { TerminalError, type ReconcileContext } from '../../../src/controllers/controller.js';
import { FINALIZER, RabbitQueueBatchReconciler, type ReconcilerDeps } from '../../../src/controllers/rabbitqueuebatch-reconciler.js';
import type { Store } from '../../../src/kube/store.js';
import type { ManagementApi } from '../../../src/model/broker.js';
import { BrokerUnavailableError, ConfigError, ManagementError } from '../../../src/model/errors.js';
import type { ObservedBinding, ObservedExchange, ObservedQueue } from '../../../src/model/observed.js';
import { queueArguments } from '../../../src/model/queue-arguments.js';
import { observeVhost } from '../../../src/rabbit/observe.js';

/** A broker in memory: one vhost `/`, every call counted. */
class FakeBroker implements ManagementApi {
  readonly exchanges = new Map<string, ObservedExchange>();
  readonly queues = new Map<string, ObservedQueue>();
  bindings: ObservedBinding[] = [];
  readonly calls: string[] = [];
  /** Thrown by the next listing (observe). */
  failObserve: unknown;
  /** Called before every write; may abort or throw. */
  beforeWrite: (what: string) => void = () => undefined;
  constructor(readonly endpoint = 'http://fake:15672') {}
  async vhostExists(vhost: string) {
    return vhost === '/';
  }
  async listExchanges() {
    if (this.failObserve) throw this.failObserve;
    return [...this.exchanges.values()];
  }
  async listQueues() {
    return [...this.queues.values()];
  }
  async listBindings() {
    return [...this.bindings];
  }
  async getQueue(_v: string, name: string) {
    const q = this.queues.get(name);
    return q && { ...q, messages: 0, consumers: 0 };
  }
  async getExchange(_v: string, name: string) {
    return this.exchanges.get(name);
  }
  async putExchange(_v: string, e: ExchangeSpec) {
    this.write(`putExchange ${e.name}`);
    this.exchanges.set(e.name, { name: e.name, type: e.type, durable: e.durable, autoDelete: e.autoDelete, internal: e.internal, arguments: e.arguments });
  }
  async putQueue(_v: string, q: QueueSpec) {
    this.write(`putQueue ${q.name}`);
    this.queues.set(q.name, { name: q.name, type: q.type, durable: q.durable, autoDelete: q.autoDelete, arguments: queueArguments(q) });
  }
  async postBinding(_v: string, b: BindingSpec) {
    this.write(`postBinding ${b.source}->${b.destination}`);
    this.bindings.push({ ...b, propertiesKey: b.routingKey || '~' });
    return b.routingKey || '~';
  }
  async deleteExchange(_v: string, name: string) {
    this.write(`deleteExchange ${name}`);
    return this.exchanges.delete(name);
  }
  async deleteQueue(_v: string, name: string) {
    this.write(`deleteQueue ${name}`);
    return this.queues.delete(name);
  }
  async deleteBinding(_v: string, b: Pick<ObservedBinding, 'source' | 'destination' | 'destinationType' | 'propertiesKey'>) {
    this.write(`deleteBinding ${b.source}->${b.destination}`);
    const before = this.bindings.length;
    this.bindings = this.bindings.filter((x) => !(x.source === b.source && x.destination === b.destination && x.destinationType === b.destinationType && x.propertiesKey === b.propertiesKey));
    return this.bindings.length < before;
  }
  async listPolicies() {
    return [];
  }
  async putPolicy(_v: string, kind: string, p: { name: string }) {
    this.write(`putPolicy ${kind} ${p.name}`);
  }
  async deletePolicy(_v: string, kind: string, name: string) {
    this.write(`deletePolicy ${kind} ${name}`);
    return true;
  }
  async putVhost(vhost: string) {
    this.write(`putVhost ${vhost}`);
  }
  private write(what: string) {
    this.beforeWrite(what);
    this.calls.push(what);
  }
}

let created = 0;
function batch(name: string, spec: RabbitQueueBatchSpecInput, status?: RabbitQueueBatchStatus): RabbitQueueBatch {
  created++;
  return {
    apiVersion: 'rabbitbatch.io/v1alpha1',
    kind: 'RabbitQueueBatch',
    // A new object each time, as the API server gives it (a spec is validated once per uid and generation).
    metadata: { namespace: 'ns', name, uid: `uid-${name}-${created}`, generation: 1, finalizers: [FINALIZER], creationTimestamp: `2026-01-01T00:00:${String(created).padStart(2, '0')}Z` },
    spec: spec as RabbitQueueBatch['spec'],
    ...(status ? { status } : {}),
  };
}

function harness(options: { broker?: FakeBroker; connect?: ReconcilerDeps['connect']; endpointOf?: ReconcilerDeps['endpointOf']; ensureFinalizer?: ReconcilerDeps['ensureFinalizer'] } = {}) {
  const broker = options.broker ?? new FakeBroker();
  const objects = new Map<string, RabbitQueueBatch>();
  const index = claimsIndex(1000);
  const store = {
    get: (k: string) => objects.get(k),
    list: () => [...objects.values()],
    byIndex: (i: string, v: string) => (i === CLAIMS_INDEX ? [...objects.values()].filter((b) => index(b).includes(v)) : []),
  } as unknown as Store<RabbitQueueBatch>;
  const statuses: RabbitQueueBatchStatus[] = [];
  const events: string[] = [];
  const reconciler = new RabbitQueueBatchReconciler({
    connect: options.connect ?? (async () => ({ api: broker })),
    endpointOf: options.endpointOf ?? (() => broker.endpoint),
    observed: { observe: (api, vhost) => observeVhost(api, vhost), recordWrite: () => undefined, invalidate: () => undefined },
    writeStatus: async (b, status) => {
      statuses.push(structuredClone(status));
      objects.set(keyOf(b), { ...b, status });
    },
    ensureFinalizer: options.ensureFinalizer ?? (async () => undefined),
    removeFinalizer: async () => undefined,
    event: (_b, type, reason) => events.push(`${type} ${reason}`),
    metrics: { onOperation: () => undefined, onBatch: () => undefined, onDriftRepaired: () => undefined },
    audit: () => undefined,
    settings: { maxItems: 1000, batchConcurrency: 1, resyncIntervalMs: 600_000, conflictRequeueMs: 60_000 },
    now: () => new Date('2026-01-01T00:00:00Z'),
  });
  const abort = new AbortController();
  const ctx: ReconcileContext<RabbitQueueBatch> = { signal: abort.signal, log: pino({ enabled: false }), reconcileID: 'test', store };
  const run = (b: RabbitQueueBatch) => reconciler.reconcile({ namespace: b.metadata.namespace!, name: b.metadata.name }, ctx);
  const put = (b: RabbitQueueBatch) => objects.set(keyOf(b), b);
  const current = (b: RabbitQueueBatch) => objects.get(keyOf(b))!;
  const reason = (b: RabbitQueueBatch) => current(b).status?.conditions?.find((c) => c.type === 'Ready')?.reason;
  return { broker, reconciler, run, put, current, reason, statuses, events, abort, objects };
}

describe('RabbitQueueBatchReconciler', () => {
  it('creates nothing before the finalizer is on the server, though it writes it while planning', async () => {
    let queuesWhenFinalized = -1;
    const broker = new FakeBroker();
    const h = harness({
      broker,
      ensureFinalizer: async () => {
        await new Promise((r) => setTimeout(r, 50));
        queuesWhenFinalized = broker.queues.size;
      },
    });
    const b = batch('new', { deletionPolicy: 'Delete', queues: [{ name: 'q1' }, { name: 'q2' }] });
    const fresh = { ...b, metadata: { ...b.metadata, finalizers: [] } };
    h.put(fresh);
    await h.run(fresh);
    expect(queuesWhenFinalized, 'queues in RabbitMQ when the finalizer write returned').toBe(0);
    expect(broker.queues.size).toBe(2);
    expect(h.statuses[0]?.applying).toEqual(['queue/q1', 'queue/q2']);
  });

  it('writes no finalizer for a Retain batch: deleting it needs nothing from the operator', async () => {
    let finalizerWrites = 0;
    const h = harness({ ensureFinalizer: async () => void finalizerWrites++ });
    const b = batch('kept', { deletionPolicy: 'Retain', queues: [{ name: 'q1' }] });
    const fresh = { ...b, metadata: { ...b.metadata, finalizers: [] } };
    h.put(fresh);
    await h.run(fresh);
    expect(h.reason(fresh)).toBe('Reconciled');
    expect(finalizerWrites).toBe(0);
  });

  it('applies a batch: write-ahead record first, then Ready with exactly what it created, and a periodic requeue', async () => {
    const h = harness();
    const b = batch('orders', { queues: [{ name: 'q1' }, { name: 'q2' }] });
    h.put(b);
    expect(await h.run(b)).toEqual({ requeueAfterMs: 600_000 });
    expect(h.statuses[0]?.applying).toEqual(['queue/q1', 'queue/q2']);
    expect(h.reason(b)).toBe('Reconciled');
    expect(h.current(b).status?.applied).toEqual({ vhost: '/', exchanges: [], queues: ['q1', 'q2'], bindings: [] });
    expect(h.current(b).status?.applying).toEqual([]);
  });

  it('an invalid spec: InvalidSpec in the status, a Warning event, and a TerminalError (not retried)', async () => {
    const h = harness();
    const b = batch('bad', { queues: [{ name: 'amq.reserved' }] });
    h.put(b);
    await expect(h.run(b)).rejects.toBeInstanceOf(TerminalError);
    expect(h.reason(b)).toBe('InvalidSpec');
    expect(h.events).toContain('Warning InvalidSpec');
    expect(h.broker.calls).toEqual([]);
  });

  it('a missing Secret: SecretNotFound, nothing applied, looked at again in a minute', async () => {
    const h = harness({ connect: async () => Promise.reject(new ConfigError('SecretNotFound', 'Secret ns/x does not exist')) });
    const b = batch('nosecret', { queues: [{ name: 'q1' }] });
    h.put(b);
    expect(await h.run(b)).toEqual({ requeueAfterMs: 60_000 });
    expect(h.reason(b)).toBe('SecretNotFound');
  });

  it('credentials refused (401): Unauthorized naming the endpoint and vhost, looked at again in a minute', async () => {
    const broker = new FakeBroker();
    broker.failObserve = new ManagementError(401, 'Unauthorized', 'GET', '/api/exchanges/%2F');
    const h = harness({ broker });
    const b = batch('auth', { queues: [{ name: 'q1' }] });
    h.put(b);
    expect(await h.run(b)).toEqual({ requeueAfterMs: 60_000 });
    expect(h.reason(b)).toBe('Unauthorized');
    expect(h.current(b).status?.conditions?.[0]?.message).toContain(`RabbitMQ at ${broker.endpoint} refused the operator's default credentials (RABBITMQ_USERNAME / RABBITMQ_PASSWORD)`);
    expect(h.events).toContain('Warning Unauthorized');
  });

  it('an unreachable broker: BrokerUnavailable in the status, and the error goes back to the work queue (backoff)', async () => {
    const broker = new FakeBroker();
    broker.failObserve = new BrokerUnavailableError('connect ECONNREFUSED');
    const h = harness({ broker });
    const b = batch('down', { queues: [{ name: 'q1' }] });
    h.put(b);
    await expect(h.run(b)).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(h.reason(b)).toBe('BrokerUnavailable');
  });

  it('a request RabbitMQ refuses (400): rolled back, and it waits for the resync instead of retrying hot', async () => {
    const broker = new FakeBroker();
    broker.beforeWrite = (what) => {
      if (what === 'putQueue q2') throw new ManagementError(400, 'invalid arg', 'PUT', '/api/queues/%2F/q2');
    };
    const h = harness({ broker });
    const b = batch('refused', { queues: [{ name: 'q1' }, { name: 'q2' }] });
    h.put(b);
    expect(await h.run(b)).toEqual({ requeueAfterMs: 600_000 });
    expect(h.reason(b)).toBe('RolledBack');
    expect([...broker.queues.keys()]).toEqual([]);
  });

  it('a broker going down mid-run: what it may have made stays in status.applying, and the next run owns what is there', async () => {
    const broker = new FakeBroker();
    // As RabbitMQ answers while it stops: the next PUT gets 404 (vhost not found) and the rollback's
    // DELETE of q1 finds nothing, though the durable queue is there again once it starts.
    broker.beforeWrite = (what) => {
      if (what === 'putQueue q2') throw new ManagementError(404, 'Not Found', 'PUT', '/api/queues/%2F/q2');
    };
    const deleteQueue = broker.deleteQueue.bind(broker);
    broker.deleteQueue = async () => false;
    const h = harness({ broker });
    const b = batch('stopped', { queues: [{ name: 'q1' }, { name: 'q2' }, { name: 'q3' }] });
    h.put(b);
    await expect(h.run(b)).rejects.toThrow(/404/);
    expect(h.reason(b)).toBe('RolledBack');
    expect(h.current(b).status?.applying).toEqual(['queue/q1', 'queue/q2']);
    broker.beforeWrite = () => undefined;
    broker.deleteQueue = deleteQueue;
    await h.run(h.current(b));
    expect(h.reason(b)).toBe('Reconciled');
    expect(h.current(b).status?.applied?.queues).toEqual(['q1', 'q2', 'q3']);
    expect(h.current(b).status?.applying).toEqual([]);
  });

  it('an object claimed by an older batch on the same broker is a Conflict; on another broker it is not', async () => {
    const h = harness({ endpointOf: (b) => (b.metadata.name === 'elsewhere' ? 'http://other:15672' : 'http://fake:15672') });
    const older = batch('older', { queues: [{ name: 'shared' }] });
    const elsewhere = batch('elsewhere', { queues: [{ name: 'shared' }] });
    const newer = batch('newer', { queues: [{ name: 'shared' }] });
    for (const b of [older, elsewhere, newer]) h.put(b);
    await h.run(newer);
    expect(h.current(newer).status?.items).toEqual([expect.objectContaining({ resource: 'queue/shared', status: 'Conflict', error: expect.stringContaining('ns/older') })]);
    h.objects.delete(keyOf(older));
    await h.run(newer);
    expect(h.current(newer).status?.items).toEqual([{ resource: 'queue/shared', status: 'Ready' }]);
  });

  it('forgets a key: after a hand-over it trusts status.applied as the other replica left it', async () => {
    const h = harness();
    const b = batch('moved', { queues: [{ name: 'q1' }, { name: 'q2' }] });
    h.put(b);
    await h.run(b);
    // Another replica changed the batch meanwhile: q2 pruned, q3 created (its status says so).
    h.broker.queues.delete('q2');
    await h.broker.putQueue('/', { name: 'q3', type: 'classic', durable: true, autoDelete: false, arguments: {} } as QueueSpec);
    const current = h.current(b);
    const elsewhere = { ...current, metadata: { ...current.metadata, generation: 2 }, spec: { ...b.spec, queues: [{ name: 'q1' }, { name: 'q3' }] } as RabbitQueueBatch['spec'] };
    elsewhere.status = { ...elsewhere.status, applied: { vhost: '/', exchanges: [], queues: ['q1', 'q3'], bindings: [] } };
    h.reconciler.forget(keyOf(b));
    h.put(elsewhere);
    await h.run(elsewhere);
    expect(h.current(b).status?.applied?.queues).toEqual(['q1', 'q3']);
  });

  it('a missing object forgets the key (it left this replica)', async () => {
    const h = harness();
    const b = batch('gone', { queues: [{ name: 'q1' }] });
    h.put(b);
    await h.run(b);
    const applied = h.current(b).status!.applied!;
    h.objects.delete(keyOf(b));
    expect(await h.run(b)).toEqual({});
    // Back with a status another writer set: that status is read, not this process's memory.
    h.put({ ...b, status: { applied: { ...applied, queues: ['q1', 'q9'] } } });
    h.broker.queues.set('q9', { name: 'q9', type: 'classic', durable: true, autoDelete: false, arguments: {} });
    await h.run(b);
    expect(h.current(b).status?.applied?.queues).toEqual(['q1']);
    expect(h.broker.queues.has('q9')).toBe(false); // owned, no longer declared: pruned
  });

  it('shutdown (signal aborted mid-run): no new operation starts and an AllOrNothing batch is rolled back', async () => {
    const h = harness();
    h.broker.beforeWrite = (what) => {
      if (what === 'putQueue q2') h.abort.abort(new Error('stopping'));
    };
    const b = batch('stopping', { queues: [{ name: 'q1' }, { name: 'q2' }, { name: 'q3' }, { name: 'q4' }] });
    h.put(b);
    await expect(h.run(b)).rejects.toThrow(/shutting down/);
    expect(h.broker.calls.filter((c) => c.startsWith('putQueue'))).toEqual(['putQueue q1', 'putQueue q2']);
    expect([...h.broker.queues.keys()]).toEqual([]);
    expect(h.reason(b)).toBe('RolledBack');
    expect(h.statuses[0]?.applying).toEqual(['queue/q1', 'queue/q2', 'queue/q3', 'queue/q4']);
  });
});
