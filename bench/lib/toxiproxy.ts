/**
 * A loopback latency proxy for realistic round trips: toxiproxy (built and cached by
 * hack/build-toxiproxy.sh), started on free ports, one proxy per upstream, with a latency toxic.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class Toxiproxy {
  private constructor(
    private readonly child: ChildProcess,
    private readonly api: string,
  ) {}

  static async start(): Promise<Toxiproxy> {
    const bin = execFileSync('bash', [new URL('../../hack/build-toxiproxy.sh', import.meta.url).pathname], { encoding: 'utf8' }).trim().split('\n').pop()!;
    const port = await freePort();
    const child = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], { stdio: 'ignore' });
    const proxy = new Toxiproxy(child, `http://127.0.0.1:${port}`);
    for (let i = 0; i < 100; i++) {
      try {
        await fetch(`${proxy.api}/version`);
        return proxy;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    child.kill();
    throw new Error('toxiproxy did not start');
  }

  /** A proxy to `upstream` (host:port) with `latencyMs` added each way; returns its URL host:port. */
  async proxy(name: string, upstream: string, latencyMs: number): Promise<string> {
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    await this.call('POST', '/proxies', { name, listen, upstream, enabled: true });
    if (latencyMs > 0) {
      // Half the round trip each way, so one request/response pays `latencyMs` in total.
      for (const stream of ['upstream', 'downstream']) {
        await this.call('POST', `/proxies/${name}/toxics`, { name: `latency-${stream}`, type: 'latency', stream, attributes: { latency: latencyMs / 2, jitter: 0 } });
      }
    }
    return listen;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const res = await fetch(`${this.api}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  }

  /** The toxiproxy process, for its CPU use. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  stop(): void {
    this.child.kill();
  }
}
