/** Pool metrics: two pools share one registry, and each series reads the live pools. */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerChannelPoolMetrics, registerHttpPoolMetrics } from '../../src/metrics/pool-metrics.js';

const http = (active: number, socketsCreated: number) => () => ({ active, idle: 1, pending: 0, socketsCreated });

describe('pool metrics', () => {
  it('lets two HTTP pools share one registry, summing pools of the same endpoint', async () => {
    const registry = new Registry();
    const a = registerHttpPoolMetrics(registry, 'http://a:15672', http(2, 3));
    registerHttpPoolMetrics(registry, 'http://a:15672', http(1, 1));
    const b = registerHttpPoolMetrics(registry, 'http://b:15672', http(0, 5));
    a.requestDone('GET', 200);
    a.requestDone('PUT', 'error');
    b.requestDone('GET', 200);
    b.requestDone('GET', 200, 'keepalive');
    const text = await registry.metrics();
    expect(text).toContain('rabbitbatch_http_pool_connections{endpoint="http://a:15672",state="active"} 3');
    expect(text).toContain('rabbitbatch_http_pool_connections{endpoint="http://a:15672",state="idle"} 2');
    expect(text).toContain('rabbitbatch_http_pool_connections_created_total{endpoint="http://a:15672"} 4');
    expect(text).toContain('rabbitbatch_http_pool_connections_created_total{endpoint="http://b:15672"} 5');
    expect(text).toContain('rabbitbatch_http_requests_total{endpoint="http://a:15672",method="PUT",code="error",purpose="work"} 1');
    expect(text).toContain('rabbitbatch_http_requests_total{endpoint="http://b:15672",method="GET",code="200",purpose="work"} 1');
    expect(text).toContain('rabbitbatch_http_requests_total{endpoint="http://b:15672",method="GET",code="200",purpose="keepalive"} 1');
    b.unregister();
    expect(await registry.metrics()).not.toContain('rabbitbatch_http_pool_connections{endpoint="http://b:15672"');
  });

  it('reports AMQP channel pools by name, with counters at zero from the start', async () => {
    const registry = new Registry();
    const events = registerChannelPoolMetrics(registry, 'events', () => ({ active: 1, idle: 2, pending: 0 }));
    registerChannelPoolMetrics(registry, 'publish', () => ({ active: 0, idle: 0, pending: 4 }));
    events.created();
    events.exhausted();
    events.waited(0.002);
    const text = await registry.metrics();
    expect(text).toContain('rabbitbatch_amqp_channels{pool="events",state="idle"} 2');
    expect(text).toContain('rabbitbatch_amqp_channels{pool="publish",state="pending"} 4');
    expect(text).toContain('rabbitbatch_amqp_channels_created_total{pool="events"} 1');
    expect(text).toContain('rabbitbatch_amqp_channels_destroyed_total{pool="publish"} 0');
    expect(text).toContain('rabbitbatch_amqp_pool_exhausted_total{pool="events"} 1');
    expect(text).toContain('rabbitbatch_amqp_pool_wait_seconds_count{pool="events"} 1');
  });
});
