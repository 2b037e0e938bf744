import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { Controller, TerminalError, isTerminal } from '../../../src/controllers/controller.js';

/** A kubeconfig whose apiserver refuses connections (port 1 on loopback). */
function unreachable(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

const options = (extra: object = {}) => ({
  name: 'unit',
  kubeConfig: unreachable(),
  path: '/apis/example.com/v1/things',
  reconcile: async () => ({}),
  watch: { backoff: { initialMs: 10, maxMs: 20 } },
  ...extra,
});

describe('TerminalError', () => {
  it('is recognised directly and through a cause chain', () => {
    expect(isTerminal(new TerminalError('bad spec'))).toBe(true);
    expect(isTerminal(new Error('wrapped', { cause: new TerminalError('bad spec') }))).toBe(true);
    expect(isTerminal(new Error('transient'))).toBe(false);
    expect(isTerminal('a string')).toBe(false);
  });
});

describe('Controller without an apiserver', () => {
  it('rejects start() when the cache does not sync in time, and is stopped afterwards', async () => {
    const controller = new Controller(options({ cacheSyncTimeoutMs: 200 }));
    await expect(controller.start()).rejects.toThrow(/cache did not sync/);
    expect(controller.hasSynced()).toBe(false);
    await controller.stop();
  });

  it('resolves start() quietly when stopped while waiting for the cache', async () => {
    const controller = new Controller(options());
    const starting = controller.start();
    await controller.stop();
    await expect(starting).resolves.toBeUndefined();
  });

  it('creates every metric label combination at zero on start', async () => {
    const registry = new Registry();
    const controller = new Controller(options({ registry, maxConcurrentReconciles: 3 }));
    const starting = controller.start();
    const text = await registry.metrics();
    for (const result of ['success', 'error', 'requeue', 'requeue_after']) expect(text).toContain(`controller_runtime_reconcile_total{controller="unit",result="${result}"} 0`);
    for (const name of ['reconcile_errors_total', 'terminal_reconcile_errors_total', 'reconcile_panics_total', 'active_workers']) expect(text).toContain(`controller_runtime_${name}{controller="unit"} 0`);
    expect(text).toContain('controller_runtime_max_concurrent_reconciles{controller="unit"} 3');
    expect(text).toContain('controller_runtime_reconcile_time_seconds_count{controller="unit"} 0');
    expect(text).toContain('workqueue_depth{name="unit",controller="unit"} 0');
    await controller.stop();
    await starting;
  });

  it('lets two controllers share one registry', () => {
    const registry = new Registry();
    expect(() => [new Controller(options({ registry, name: 'one' })), new Controller(options({ registry, name: 'two' }))]).not.toThrow();
  });
});
