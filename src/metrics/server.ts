/**
 * The operator's HTTP endpoints, as controller-runtime serves them: `/metrics` on the metrics
 * address, `/healthz` and `/readyz` on the health-probe address (both may be the same port).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Check {
  name: string;
  check: () => Promise<void> | void;
}

/** `:8080` → port 8080 on every interface; `127.0.0.1:0` → a free loopback port; `0` disables. */
export function parseBindAddress(address: string): { host?: string; port: number } | undefined {
  if (address === '0') return undefined;
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i);
  const port = Number(address.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0) throw new Error(`invalid bind address "${address}": expected [host]:port`);
  return host ? { host, port } : { port };
}

export async function listen(address: string, handler: Parameters<typeof createServer>[1]): Promise<Server | undefined> {
  const bind = parseBindAddress(address);
  if (!bind) return undefined;
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`cannot listen on ${address}: the port is in use (pass another address, e.g. --metrics-bind-address :0)`) : err),
    );
    server.listen(bind.port, bind.host, resolve);
  });
  return server;
}

export function metricsHandler(registry: Registry): Parameters<typeof createServer>[1] {
  return (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  };
}

export function probesHandler(liveness: Check[], readiness: Check[]): Parameters<typeof createServer>[1] {
  return (req, res) => {
    const checks = req.url?.startsWith('/healthz') ? liveness : req.url?.startsWith('/readyz') ? readiness : undefined;
    if (!checks) {
      res.writeHead(404).end();
      return;
    }
    Promise.all(checks.map(async (c) => [c.name, await c.check()] as const)).then(
      () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'),
      (err: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${err.message}`),
    );
  };
}

export function addressOf(server: Server | undefined): string | undefined {
  const a = server?.address();
  return a && typeof a === 'object' ? `${a.address}:${a.port}` : undefined;
}
