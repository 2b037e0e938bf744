/**
 * A private control plane (its own etcd + kube-apiserver, PKI, ports and kubeconfig in a temp
 * dir, started by hack/control-plane.sh) for tests that break the API server: the shared plane
 * the other tests use is never touched. crds/ are installed; `stop()` removes everything.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { installCrds } from './global-setup.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);

export interface PrivatePlane {
  dir: string;
  kubeconfigPath: string;
  /** Stops only kube-apiserver (etcd and its data stay): SIGTERM for a graceful stop, SIGKILL for a crash. */
  stopApiserver(signal?: 'TERM' | 'KILL'): Promise<void>;
  /** Starts kube-apiserver again on the same port and etcd; resolves once /readyz answers. */
  startApiserver(): Promise<void>;
  /** etcd's client port (plain HTTP on loopback). */
  etcdPort(): number;
  /** Stops etcd and kube-apiserver by their PID files and deletes the directory. */
  stop(): Promise<void>;
}

// Async, not execFileSync: the test process must keep draining the operator's log pipes while
// a plane starts (a full pipe would block the operator).
async function controlPlane(env: Record<string, string>, ...args: string[]): Promise<void> {
  try {
    await run('bash', [`${ROOT}hack/control-plane.sh`, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`hack/control-plane.sh ${args.join(' ')} failed: ${e.stderr || e.message}`, { cause: err });
  }
}

/** `apiserverArgs`: further kube-apiserver flags (APISERVER_EXTRA_ARGS), e.g. `--watch-cache=false`. */
export async function startPrivatePlane(prefix: string, apiserverArgs: string[] = []): Promise<PrivatePlane> {
  const env: Record<string, string> = apiserverArgs.length > 0 ? { APISERVER_EXTRA_ARGS: apiserverArgs.join(' ') } : {};
  const dir = mkdtempSync(join(tmpdir(), `rabbitbatch-plane-${prefix}-`));
  const plane: PrivatePlane = {
    dir,
    kubeconfigPath: join(dir, 'kubeconfig'),
    etcdPort: () => Number(readFileSync(join(dir, 'etcd-port'), 'utf8').trim()),
    stopApiserver: (signal = 'TERM') => controlPlane(env, 'stop-apiserver', dir, signal),
    startApiserver: () => controlPlane(env, 'start-apiserver', dir),
    stop: async () => {
      await controlPlane(env, 'stop', dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await controlPlane(env, 'start', dir);
    await installCrds(plane.kubeconfigPath);
  } catch (err) {
    await plane.stop().catch(() => undefined);
    throw err;
  }
  return plane;
}
