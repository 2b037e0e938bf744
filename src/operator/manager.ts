/**
 * The manager only wires: configuration → clients, cache, event stream, the batch controller,
 * probes, metrics, leader election or sharding, and graceful shutdown. Every piece is built and
 * tested on its own.
 */
import type { DestinationStream } from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, type RabbitQueueBatch } from '../api/schema.js';
import type { OperatorConfig } from '../config/config.js';
import { ConnectionResolver } from '../controllers/connections.js';
import { ownPodReporter } from '../controllers/own-pod-report.js';
import type { Controller } from '../controllers/controller.js';
import { leaseApi, secretApi } from '../kube/core-apis.js';
import { EventRecorder } from '../kube/events.js';
import { loadKubeConfig } from '../kube/kubeconfig.js';
import { LeaderElector } from '../kube/leader-election.js';
import { createLogger } from '../log/logger.js';
import { addressOf, listen, metricsHandler, probesHandler } from '../metrics/server.js';
import { ManagementClient } from '../rabbit/management-client.js';
import { SecretWatch } from '../kube/secret-watch.js';
import { brokerReadiness } from '../metrics/broker-readiness.js';
import { Membership } from '../sharding/membership.js';
import { Sharder } from '../sharding/sharder.js';
import { createBatchController } from './batch-controller.js';
import { startRabbitSide } from './rabbit-side.js';

export interface Operator {
  readonly registry: Registry;
  readonly controller: Controller<RabbitQueueBatch>;
  readonly metricsAddress: string | undefined;
  readonly probeAddress: string | undefined;
  /** Graceful: stop taking work, finish reconciles in flight, release the Lease, close pools. */
  stop(): Promise<void>;
}

export interface ManagerOptions {
  /** Where logs go. Defaults to stdout. */
  logDestination?: DestinationStream;
  /** Called when leadership is lost; the process must stop reconciling. Defaults to exiting. */
  onLostLeadership?: () => void;
}

/** The process entry point: start, then stop gracefully on SIGTERM/SIGINT. */
export async function runManager(config: Readonly<OperatorConfig>): Promise<void> {
  const operator = await startManager(config);
  const shutdown = async (signal: string) => {
    await operator.stop();
    process.stderr.write(`rabbitbatch operator stopped (${signal})\n`);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

export async function startManager(config: Readonly<OperatorConfig>, options: ManagerOptions = {}): Promise<Operator> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const kc = await loadKubeConfig(config.flags.kubeconfig, config.kubernetesService);
  // A changed (or newly created) connection Secret re-reconciles the batches naming it at once.
  const secretWatch: { current?: SecretWatch } = {};
  const connections = new ConnectionResolver(
    secretApi(kc),
    config.rabbit,
    (c) => new ManagementClient({ ...c, minSize: config.httpPool.minSize, maxSize: config.httpPool.maxSize, idleTimeoutMs: config.httpPool.idleTimeoutMs, registry }),
    (namespace, name, version) => secretWatch.current?.ensure(namespace, name, version),
    (namespace, name) => secretWatch.current?.current(namespace, name),
  );
  const log = createLogger({ level: config.logLevel, secrets: () => connections.secrets, ...(options.logDestination ? { destination: options.logDestination } : {}) });
  secretWatch.current = new SecretWatch({
    kubeConfig: kc,
    log,
    onChange: (namespace, name) => {
      for (const key of batchesNaming(namespace, name)) controller.enqueue(key);
    },
  });
  const rabbit = await startRabbitSide(config, log, registry);
  const events = new EventRecorder({ kubeConfig: kc, component: 'rabbitbatch', instance: config.identity, logger: log });
  const reportOnPod = ownPodReporter(events, config.namespace, config.pod);
  const path = config.watchNamespace ? `/apis/${GROUP}/${VERSION}/namespaces/${config.watchNamespace}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`;
  const sharding = config.flags.sharding === true;
  const { controller, rabbitHooks, batchesNaming } = createBatchController({ config, kubeConfig: kc, path, registry, log, connections, rabbit, events });

  const defaultBroker: { current?: string; stopped?: boolean } = {};
  const pinDefaultBroker = async () => {
    for (let delay = 500; !defaultBroker.stopped; delay = Math.min(delay * 2, 10_000)) {
      try {
        const { broker, events } = await connections.defaultBroker();
        defaultBroker.current = broker;
        rabbit.brokers.pin(broker, events);
        return;
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'default broker does not answer yet: its event stream waits');
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  };

  let elector: LeaderElector | undefined;
  const rabbitmqReady = brokerReadiness(() => connections.defaultClient(), log);
  void rabbitmqReady.check().catch(() => undefined); // says at start (in the log) when the broker is not there

  const metricsServer = await listen(config.flags.metricsBindAddress, metricsHandler(registry));
  const probeServer = await listen(
    config.flags.healthProbeBindAddress,
    probesHandler(
      [{ name: 'ping', check: () => undefined }],
      [
        {
          name: 'informer',
          check: () => {
            // A standby (not leading, no shard of its own) is ready to take over: that is its job.
            const standby = elector !== undefined && !elector.isLeader() && !sharding;
            if (standby || controller.hasSynced()) return;
            const why = controller.watchError();
            if (why && /HTTP 40[13]\b/.test(why)) reportOnPod('WatchForbidden', `${why} (check the RBAC of the operator's ServiceAccount)`);
            throw new Error(`the RabbitQueueBatch cache has not synced${why ? `: ${why}` : ''}`);
          },
        },
        rabbitmqReady,
        {
          name: 'events',
          check: () => {
            if (!config.events) return;
            const state = rabbit.brokers.state(defaultBroker.current);
            // A broker without the event exchange is served anyway (the status says so); a lost stream is not ready.
            if (state !== 'subscribed' && state !== 'no-event-exchange') throw new Error('not subscribed to RabbitMQ events of the default connection');
          },
        },
      ],
    ),
  );
  log.info({ metrics: addressOf(metricsServer), probes: addressOf(probeServer), leaderElect: config.flags.leaderElect }, 'rabbitbatch operator starting');

  const membership = sharding ? new Membership({ api: leaseApi(kc), namespace: config.namespace, identity: config.identity, log }) : undefined;
  const sharder = membership ? new Sharder({ kubeConfig: kc, membership, path, registry, log }) : undefined;
  const stop = async () => {
    log.info('shutting down: finishing reconciles in flight');
    await controller.stop();
    await sharder?.stop();
    await membership?.stop();
    await elector?.release();
    defaultBroker.stopped = true;
    await rabbit.stop();
    secretWatch.current?.stop();
    await connections.close();
    await kc.close();
    metricsServer?.close();
    probeServer?.close();
    log.flush();
  };

  // Without sharding, leader election decides who reconciles; with it, every replica reconciles
  // its shard and the election only decides who places resources.
  const leaderWork = sharder ? () => void sharder.start() : () => void controller.start();
  if (config.flags.leaderElect || sharder) {
    elector = new LeaderElector({
      api: leaseApi(kc),
      namespace: config.namespace,
      name: sharder ? 'rabbitbatch-sharder' : 'rabbitbatch-leader',
      identity: config.identity,
      log,
      registry,
      onStartedLeading: leaderWork,
      onStoppedLeading: () => {
        // controller-runtime exits: a replica without a valid Lease must not reconcile.
        log.flush();
        if (options.onLostLeadership) options.onLostLeadership();
        else process.exit(1);
      },
    });
  }
  if (membership) {
    await membership.start();
    await controller.start();
  }
  if (elector) elector.run();
  else await controller.start();
  await rabbit.start(rabbitHooks);
  // The default broker's stream runs from the start (readiness waits for it), once its name is known.
  void pinDefaultBroker();
  return { registry, controller, metricsAddress: addressOf(metricsServer), probeAddress: addressOf(probeServer), stop };
}
