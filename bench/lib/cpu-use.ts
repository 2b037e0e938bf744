/**
 * CPU used over a phase, per process and for the whole machine, from /proc: what tells whether
 * CPU bound a run (the machine's busy share near 1 on its 2 cores) and who used it (operators,
 * API server, etcd, the broker, toxiproxy, the bench itself). Other sessions share the machine:
 * the broker's figure includes their work, and the machine's busy share includes everything.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.js';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const HZ = 100;

/** utime + stime of a live process in seconds; undefined once it has exited. */
function cpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command (which may hold spaces) start after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / HZ;
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far, busy and total, in seconds summed over its cores. */
function machineSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  const idle = (t[3] ?? 0) + (t[4] ?? 0); // idle + iowait
  return { busy: (total - idle) / HZ, total: total / HZ };
}

/** The local control plane's processes (hack/control-plane.sh writes their PID files). */
function planePids(): Record<string, number> {
  const pids: Record<string, number> = {};
  for (const name of ['kube-apiserver', 'etcd']) {
    try {
      pids[name] = Number(readFileSync(join(process.env.RABBITBATCH_LOCAL_DIR ?? join(ROOT, '.local'), 'run', `${name}.pid`), 'utf8').trim());
    } catch {
      // not started by env-up (an e2e cluster): not counted
    }
  }
  return pids;
}

/** The machine's RabbitMQ (beam.smp), shared by every session. */
function brokerPid(): number | undefined {
  try {
    return Number(execFileSync('pgrep', ['-o', 'beam.smp'], { encoding: 'utf8' }).trim().split('\n')[0]) || undefined;
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  seconds: number;
  /** CPU seconds per process (or group of processes) over the phase. */
  processSeconds: Record<string, number>;
  /** Of the machine's whole CPU capacity over the phase (all cores), the busy share: 1 = every core busy all the time. */
  machineBusyShare: number;
  cores: number;
}

/**
 * Starts counting; `stop()` returns the CPU used since. `groups`: named sets of pids (e.g. the
 * operator replicas), read at stop as well, so a group may grow meanwhile.
 */
export function startCpuUse(groups: () => Record<string, number[]>): { stop: () => CpuUse } {
  const pidsOf = () => {
    const broker = brokerPid();
    const fixed = { ...planePids(), bench: process.pid, ...(broker ? { rabbitmq: broker } : {}) };
    return { ...Object.fromEntries(Object.entries(fixed).map(([k, v]) => [k, [v]])), ...groups() };
  };
  const sample = () => Object.fromEntries(Object.entries(pidsOf()).map(([k, pids]) => [k, pids.map((p) => [p, cpuSeconds(p)] as const)]));
  const before = sample();
  const machineBefore = machineSeconds();
  const started = performance.now();
  return {
    stop: () => {
      const after = sample();
      const machine = machineSeconds();
      const processSeconds: Record<string, number> = {};
      for (const [name, pids] of Object.entries(after)) {
        const base = new Map(before[name] ?? []);
        // A process started during the phase counts from 0.
        processSeconds[name] = pids.reduce((sum, [pid, s]) => sum + Math.max(0, (s ?? 0) - (base.get(pid) ?? 0)), 0);
      }
      return {
        seconds: (performance.now() - started) / 1000,
        processSeconds,
        machineBusyShare: (machine.busy - machineBefore.busy) / Math.max(1e-9, machine.total - machineBefore.total),
        cores: cpus().length,
      };
    },
  };
}
