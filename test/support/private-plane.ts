/**
 * A private control plane (its own etcd + kube-apiserver, PKI, ports and kubeconfig in a temp
 * dir, started by hack/control-plane.sh) for tests that break the API server: the shared plane
 * the other tests use is never touched. crds/ are installed; `stop()` removes everything.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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
  /** Stops etcd and kube-apiserver by their PID files and deletes the directory. */
  stop(): Promise<void>;
}

// Async, not execFileSync: the test process must keep draining the operator's log pipes while
// a plane starts (a full pipe would block the operator).
async function controlPlane(...args: string[]): Promise<void> {
  try {
    await run('bash', [`${ROOT}hack/control-plane.sh`, ...args], { cwd: ROOT });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`hack/control-plane.sh ${args.join(' ')} failed: ${e.stderr || e.message}`, { cause: err });
  }
}

export async function startPrivatePlane(prefix: string): Promise<PrivatePlane> {
  const dir = mkdtempSync(join(tmpdir(), `rabbitbatch-plane-${prefix}-`));
  const plane: PrivatePlane = {
    dir,
    kubeconfigPath: join(dir, 'kubeconfig'),
    stopApiserver: (signal = 'TERM') => controlPlane('stop-apiserver', dir, signal),
    startApiserver: () => controlPlane('start-apiserver', dir),
    stop: async () => {
      await controlPlane('stop', dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await controlPlane('start', dir);
    await installCrds(plane.kubeconfigPath);
  } catch (err) {
    await plane.stop().catch(() => undefined);
    throw err;
  }
  return plane;
}
