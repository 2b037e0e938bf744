/**
 * kubectl against the cluster the tests were given, run asynchronously (a synchronous child
 * process would freeze the test's own timers and watches while it runs).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { kubeconfigPath } from './kube.js';

const run = promisify(execFile);

export async function kubectl(args: string[], { input, allowFailure = false }: { input?: string; allowFailure?: boolean } = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  const child = run('kubectl', ['--kubeconfig', kubeconfigPath(), ...args], { maxBuffer: 256 * 1024 * 1024 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    if (!allowFailure) throw new Error(`kubectl ${args.join(' ')} failed (${e.code}): ${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : 1 };
  }
}

export async function kubectlJson<T = unknown>(args: string[]): Promise<T> {
  return JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as T;
}

/**
 * Follows the logs of every Pod matching `selector` in `namespace`, including Pods that appear
 * later (a rollout's new replicas), and keeps each line with the Pod's name: the logs of a deleted
 * Pod are gone from the API, so a test that needs them must read them while the Pod lives.
 */
export function followLogs(namespace: string, selector: string): { lines: { pod: string; line: string }[]; stop: () => void } {
  const lines: { pod: string; line: string }[] = [];
  const followed = new Map<string, ChildProcess>();
  let stopped = false;
  const poll = async () => {
    while (!stopped) {
      const pods = await kubectl(['get', 'pods', '-n', namespace, '-l', selector, '-o', 'jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\\n"}{end}'], { allowFailure: true });
      for (const pod of pods.stdout.split('\n').filter(Boolean)) {
        if (followed.has(pod)) continue;
        const child = spawn('kubectl', ['--kubeconfig', kubeconfigPath(), 'logs', '-f', '-n', namespace, pod], { stdio: ['ignore', 'pipe', 'ignore'] });
        let rest = '';
        child.stdout.on('data', (chunk: Buffer) => {
          const text = rest + chunk.toString('utf8');
          const parts = text.split('\n');
          rest = parts.pop() ?? '';
          for (const line of parts) if (line) lines.push({ pod, line });
        });
        followed.set(pod, child);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  void poll();
  return {
    lines,
    stop: () => {
      stopped = true;
      for (const child of followed.values()) child.kill();
    },
  };
}
