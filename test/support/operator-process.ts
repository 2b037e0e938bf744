/**
 * The operator as a separate process (as in a Deployment), for tests that kill it: leader
 * election, sharding, SIGKILL mid-batch. Logs (pino JSON) are kept for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { kubeconfigPath } from './kube.js';
import { eventually } from './wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface OperatorProcess {
  identity: string;
  child: ChildProcess;
  probePort: number;
  metricsPort: number;
  lines: () => Record<string, unknown>[];
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export async function spawnOperator(identity: string, namespace: string, args: string[] = [], env: Record<string, string> = {}): Promise<OperatorProcess> {
  const [probePort, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'operator', '--metrics-bind-address', `127.0.0.1:${metricsPort}`, '--health-probe-bind-address', `127.0.0.1:${probePort}`, '--log-level', 'debug', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), POD_NAME: identity, POD_NAMESPACE: namespace, WATCH_NAMESPACE: namespace, HTTP_POOL_MIN_SIZE: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const raw: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    raw.push(...parts.filter(Boolean));
  });
  child.stderr!.on('data', (d: Buffer) => raw.push(...d.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.stringify({ stderr: l }))));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: OperatorProcess = {
    identity,
    child,
    probePort,
    metricsPort,
    exited,
    lines: () =>
      raw.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    kill: async (signal) => {
      child.kill(signal);
      return exited;
    },
  };
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`operator ${identity} exited: ${raw.slice(-5).join('\n')}`);
      const res = await fetch(`http://127.0.0.1:${probePort}/healthz`);
      if (res.status !== 200) throw new Error('not live');
    },
    { timeoutMs: 60_000 },
  );
  return proc;
}
