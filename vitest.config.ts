import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Tests share one apiserver and one broker; each has its own namespace and vhost,
          // but keep file-level parallelism modest on a 2-core machine.
          maxWorkers: 2,
        },
      },
      {
        test: {
          // Tests that break shared servers (stop the broker, kill processes): one file at a time,
          // after the integration project, each restoring what it broke.
          name: 'reliability',
          include: ['test/reliability/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          // The image as a Pod on the real node of hack/cluster.sh (make e2e-cluster): one file at
          // a time, as the files share the one operator Deployment.
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          globalSetup: ['test/support/cluster-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 400_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
