/**
 * The RabbitQueueBatch controller as the operator runs it: the generic controller (watch, store,
 * work queue) around the batch reconciler, with the claims index, the generation predicate,
 * the sharding hand-over and RabbitMQ's drift events wired in. Only wiring: every piece is
 * built and tested on its own.
 */
import type { KubeAccess } from '../kube/api-request.js';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION, type RabbitQueueBatch, type RabbitQueueBatchStatus } from '../api/schema.js';
import type { OperatorConfig } from '../config/config.js';
import { CLAIMS_INDEX, Claims, claimsIndex, keyOf } from '../controllers/claims.js';
import { SECRETS_INDEX, secretOf, type ConnectionResolver } from '../controllers/connections.js';
import { Controller, type Reconciler } from '../controllers/controller.js';
import { FINALIZER, RabbitQueueBatchReconciler } from '../controllers/rabbitqueuebatch-reconciler.js';
import type { EventRecorder } from '../kube/events.js';
import { addFinalizerPersisted, removeFinalizerPersisted } from '../kube/finalizer.js';
import { StatusWriter } from '../kube/status.js';
import { createBatchMetrics } from '../metrics/batch-metrics.js';
import { withHandOver } from '../sharding/hand-over.js';
import { SHARD_LABEL } from '../sharding/sharder.js';
import { driftRepairOf } from '../controllers/drift-repair-condition.js';
import type { RabbitHooks, RabbitSide } from './rabbit-side.js';

export const CONTROLLER_NAME = 'rabbitqueuebatch';

export interface BatchControllerOptions {
  config: Readonly<OperatorConfig>;
  kubeConfig: KubeAccess;
  /** List/watch path of the watched RabbitQueueBatch objects. */
  path: string;
  registry: Registry;
  log: Logger;
  connections: ConnectionResolver;
  rabbit: RabbitSide;
  events: EventRecorder;
}

export interface BatchController {
  controller: Controller<RabbitQueueBatch>;
  /** For `RabbitSide.start`: drift enqueues the batches that claim the object; a full re-list, every batch. */
  rabbitHooks: RabbitHooks;
  /** The batches naming a connection Secret: re-reconciled at once when it changes. */
  batchesNaming(namespace: string, name: string): string[];
}

export function createBatchController(o: BatchControllerOptions): BatchController {
  const { config, kubeConfig: kc } = o;
  const coords = { group: GROUP, version: VERSION, plural: PLURAL };
  const ref = (b: RabbitQueueBatch) => ({ ...coords, namespace: b.metadata.namespace, name: b.metadata.name });
  const itemCounts = () => {
    const counts: Record<string, number> = {};
    for (const b of controller.store.list()) for (const i of b.status?.items ?? []) counts[i.status] = (counts[i.status] ?? 0) + 1;
    return counts;
  };
  // Each status write a patch of what changed since this process's last write of it.
  const statusWriter = new StatusWriter(kc);
  const reconciler = new RabbitQueueBatchReconciler({
    connect: async (b) => {
      const resolved = await o.connections.resolve(b);
      // The batch's broker gets its event stream (shared with every other batch on that broker).
      if (resolved.broker !== undefined && resolved.events) o.rabbit.brokers.use(keyOf(b), resolved.broker, resolved.events);
      return resolved;
    },
    endpointOf: (b) => o.connections.brokerOf(b),
    driftRepair: (b) => {
      const broker = o.connections.brokerOf(b);
      return driftRepairOf(o.rabbit.brokers.state(broker), broker, nextResync(), o.connections.eventsProblemOf(b));
    },
    observed: o.rabbit.cache,
    writeStatus: (b, status: RabbitQueueBatchStatus) => statusWriter.write(ref(b), b, status).then(() => undefined),
    forgotten: (key) => statusWriter.forget(key),
    ensureFinalizer: (b) => addFinalizerPersisted(kc, ref(b), b, FINALIZER).then(() => undefined),
    removeFinalizer: (b) => removeFinalizerPersisted(kc, ref(b), b, FINALIZER).then(() => undefined),
    event: (b, type, reason, message) => o.events.record({ apiVersion: API_VERSION, kind: KIND, metadata: b.metadata }, type, reason, message),
    metrics: createBatchMetrics(o.registry, itemCounts),
    audit: (entry) => o.log.info({ audit: entry }, 'audit'),
    settings: { maxItems: config.maxItems, batchConcurrency: config.batchConcurrency, resyncIntervalMs: config.resyncIntervalMs, conflictRequeueMs: 60_000 },
  });

  const sharding = config.flags.sharding === true;
  const reconcile: Reconciler<RabbitQueueBatch> = sharding ? withHandOver(reconciler.reconcile, { kubeConfig: kc, forget: (key) => reconciler.forget(key) }) : reconciler.reconcile;
  const controller: Controller<RabbitQueueBatch> = new Controller<RabbitQueueBatch>({
    name: CONTROLLER_NAME,
    kubeConfig: kc,
    path: o.path,
    // With sharding each replica watches only the resources assigned to it.
    ...(sharding ? { labelSelector: `${SHARD_LABEL}=${config.identity}` } : {}),
    maxConcurrentReconciles: config.maxConcurrentReconciles,
    registry: o.registry,
    logger: o.log,
    reconcile: async (req, ctx) => {
      const started = Date.now();
      const key = `${req.namespace}/${req.name}`;
      // Not in this replica's store (deleted, or moved to another shard): the reconcile only
      // forgets the key, touching neither RabbitMQ nor the API server.
      const held = ctx.store.get(key) !== undefined;
      try {
        return await reconcile(req, ctx);
      } finally {
        // Gone (deleted, finalized, or moved to another replica's shard): its broker's stream and
        // clients are kept only while some batch still uses them.
        if (!ctx.store.get(key)) await release(key);
        // start/end per key, and whether the batch was held: the overlap detector of the sharding tests reads these.
        ctx.log.debug({ reconcileStart: started, reconcileEnd: Date.now(), identity: config.identity, held }, 'reconcile finished');
      }
    },
    // Our own status writes must not trigger another reconcile (GenerationChangedPredicate).
    predicate: (old, obj) =>
      !old ||
      old.metadata.generation !== obj.metadata.generation ||
      Boolean(old.metadata.deletionTimestamp) !== Boolean(obj.metadata.deletionTimestamp) ||
      JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(obj.metadata.labels ?? {}),
  });
  controller.store.addIndex(CLAIMS_INDEX, claimsIndex(config.maxItems));
  controller.store.addIndex(SECRETS_INDEX, secretOf);

  const claims = new Claims(controller.store, (b) => o.connections.brokerOf(b));
  const release = async (key: string) => {
    await o.rabbit.brokers.release(key);
    await o.connections.release(key);
  };
  // A batch is re-verified at the latest one RESYNC_INTERVAL after its last run (nextRun) or at the next full re-list.
  const nextResync = () => new Date(Math.min(Date.now() + config.resyncIntervalMs, o.rabbit.nextFullResync().getTime()));
  const onBroker = (broker: string) => controller.store.list().filter((b) => o.connections.brokerOf(b) === broker || o.connections.brokerOf(b) === undefined);
  const rabbitHooks: RabbitHooks = {
    onDrift: (broker, event) => {
      for (const key of claims.concernedBy(broker, event)) controller.enqueue(key);
    },
    onResync: (broker) => {
      for (const b of broker === undefined ? controller.store.list() : onBroker(broker)) controller.enqueue(keyOf(b));
    },
    onEventStateChanged: (broker) => {
      for (const b of onBroker(broker)) controller.enqueue(keyOf(b));
    },
  };
  const batchesNaming = (namespace: string, name: string) => controller.store.byIndex(SECRETS_INDEX, `${namespace}/${name}`).map(keyOf);
  return { controller, rabbitHooks, batchesNaming };
}
