/** `rabbitbatch operator`: controller-runtime's flags, then the manager does the wiring. */
import type { Command } from 'commander';
import { loadOperatorConfig } from '../config/config.js';

export function registerOperatorCommand(program: Command): void {
  program
    .command('operator')
    .description('run the RabbitQueueBatch operator against the cluster in $KUBECONFIG (or in-cluster)')
    .option('--metrics-bind-address <address>', 'where /metrics is served; "0" disables it', ':8080')
    .option('--health-probe-bind-address <address>', 'where /healthz and /readyz are served; "0" disables them', ':8081')
    .option('--leader-elect', 'elect a leader on a Lease so only one replica reconciles', false)
    .option('--sharding', 'spread resources over all replicas (each watches its own shard; the elected sharder assigns them)', false)
    .option('--kubeconfig <path>', 'kubeconfig file (defaults to $KUBECONFIG, then in-cluster)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace (defaults to $LOG_LEVEL or info)')
    .action(async (opts: { metricsBindAddress: string; healthProbeBindAddress: string; leaderElect: boolean; sharding: boolean; kubeconfig?: string; logLevel?: string }) => {
      const config = loadOperatorConfig({
        metricsBindAddress: opts.metricsBindAddress,
        healthProbeBindAddress: opts.healthProbeBindAddress,
        leaderElect: opts.leaderElect,
        sharding: opts.sharding,
        ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : process.env.KUBECONFIG ? { kubeconfig: process.env.KUBECONFIG } : {}),
        ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
      });
      // Loaded on demand: the batch and publish commands do not pay for the Kubernetes client.
      const { runManager } = await import('../operator/manager.js');
      await runManager(config);
    });
}
