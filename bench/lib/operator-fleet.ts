/**
 * Operator replicas as separate processes for the benchmarks, started the way a Deployment runs
 * them (`rabbitbatch operator`, with `--sharding` for more than one), from source or from the
 * compiled output; their /metrics summed over replicas; their peak RSS. Mirrors
 * test/support/operator-process.ts, which depends on vitest and cannot be imported here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { peakRssMb, rabbitbatchArgs, ROOT, rssMb, type Entry } from './processes.js';
import { freePort } from './toxiproxy.js';

export const KUBECONFIG = `${ROOT}.local/kubeconfig`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Replica {
  identity: string;
  child: ChildProcess;
  metricsPort: number;
  exited: Promise<number | null>;
  /** The last lines the process wrote, for error messages. */
  tail: () => string;
}

export interface ReplicaOptions {
  entry: Entry;
  namespace: string;
  identities: string[];
  env?: Record<string, string>;
  /** Node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
}

/**
 * Starts every replica at once and waits until each answers /readyz (and, sharded, holds its
 * membership Lease, then `settleMs` so the sharder has every member in its ring before work arrives).
 */
export async function startReplicas(kc: KubeConfig, o: ReplicaOptions, settleMs = 3000): Promise<Replica[]> {
  const sharding = o.identities.length > 1;
  const replicas = await Promise.all(o.identities.map((id) => startReplica(id, o, sharding)));
  if (sharding) {
    const leases = kc.makeApiClient(CoordinationV1Api);
    for (let i = 0; ; i++) {
      const list = await leases.listNamespacedLease({ namespace: o.namespace });
      const members = list.items.filter((l) => l.metadata?.name?.startsWith('rabbitbatch-member-') && l.spec?.holderIdentity);
      if (members.length >= o.identities.length) break;
      if (i > 600) throw new Error(`only ${members.length} of ${o.identities.length} membership Leases after 60 s`);
      await sleep(100);
    }
    await sleep(settleMs); // the sharder re-reads members every 2 s
  }
  return replicas;
}

async function startReplica(identity: string, o: ReplicaOptions, sharding: boolean): Promise<Replica> {
  const [metricsPort, probePort] = [await freePort(), await freePort()];
  const args = ['operator', '--metrics-bind-address', `127.0.0.1:${metricsPort}`, '--health-probe-bind-address', `127.0.0.1:${probePort}`, '--log-level', process.env.BENCH_OPERATOR_LOG_LEVEL ?? 'warn', ...(sharding ? ['--sharding'] : [])];
  const child = spawn(process.execPath, rabbitbatchArgs(o.entry, args, o.nodeFlags), {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG, POD_NAME: identity, POD_NAMESPACE: o.namespace, WATCH_NAMESPACE: o.namespace, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString('utf8')).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // BENCH_OPERATOR_LOG=<dir>: every replica's whole output kept, to see why one stopped or where
  // its time went (with BENCH_OPERATOR_LOG_LEVEL=debug: every reconcile's start and end).
  if (process.env.BENCH_OPERATOR_LOG) {
    const file = createWriteStream(join(process.env.BENCH_OPERATOR_LOG, `${identity}.log`), { flags: 'a' });
    child.stdout!.pipe(file);
    child.stderr!.pipe(file);
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const replica: Replica = { identity, child, metricsPort, exited, tail: () => out };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`operator ${identity} exited (${child.exitCode}): ${out}`);
    const ok = await fetch(`http://127.0.0.1:${probePort}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return replica;
    if (i > 600) {
      // Not left running: nobody else holds it to stop it later.
      child.kill('SIGKILL');
      throw new Error(`operator ${identity} not ready after 60 s: ${out}`);
    }
    await sleep(100);
  }
}

/** SIGTERM (graceful: in-flight reconciles finish, Leases released, a --cpu-prof profile is written), SIGKILL after 40 s. */
export async function stopReplicas(replicas: Replica[]): Promise<void> {
  await Promise.all(
    replicas.map(async (r) => {
      if (r.child.exitCode !== null) return;
      r.child.kill('SIGTERM');
      const timer = setTimeout(() => r.child.kill('SIGKILL'), 40_000);
      await r.exited;
      clearTimeout(timer);
    }),
  );
}

export const scrapeAll = (replicas: Replica[]) => Promise.all(replicas.map(async (r) => (await fetch(`http://127.0.0.1:${r.metricsPort}/metrics`)).text()));

/** Peak RSS (VmHWM) of each replica so far, in MB. */
export const peakRss = (replicas: Replica[]) => replicas.map((r) => peakRssMb(r.child.pid!) ?? NaN);

/** Current RSS (VmRSS) of each replica, in MB. */
export const currentRss = (replicas: Replica[]) => replicas.map((r) => rssMb(r.child.pid!) ?? NaN);

/** Sum of every sample whose line matches `re`, over all replicas' scrapes. */
export function metricSum(texts: string[], re: RegExp): number {
  return texts.flatMap((t) => t.split('\n')).filter((l) => re.test(l)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/**
 * Prometheus' histogram_quantile over the buckets of `metric` whose labels contain `labels`,
 * summed across replicas: linear interpolation inside the bucket holding the q-th observation.
 */
export function histogramQuantile(texts: string[], metric: string, labels: string, q: number): number {
  const counts = new Map<number, number>();
  for (const line of texts.flatMap((t) => t.split('\n'))) {
    if (!line.startsWith(`${metric}_bucket{`) || !line.includes(labels)) continue;
    const le = /le="([^"]+)"/.exec(line)![1]!;
    const bound = le === '+Inf' ? Infinity : Number(le);
    counts.set(bound, (counts.get(bound) ?? 0) + Number(line.split(' ').pop()));
  }
  const buckets = [...counts.entries()].sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  const rank = q * total;
  let [lower, below] = [0, 0];
  for (const [bound, cumulative] of buckets) {
    if (cumulative >= rank) {
      if (bound === Infinity) return lower; // as Prometheus: the highest finite bound
      return lower + ((bound - lower) * (rank - below)) / Math.max(1, cumulative - below);
    }
    [lower, below] = [bound, cumulative];
  }
  return lower;
}
