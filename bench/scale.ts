/**
 * `scale`: 1,000 resources × 10 queues reconciled by 1 operator process and by 3
 * sharded replicas (`rabbitbatch operator --sharding`, from source), then every replica stopped
 * and a cold set started to re-verify everything. Figures: wall time against the broker's own
 * declare rate measured in the same run (the broker shares this machine's 2 cores and caps the
 * rate), the RabbitMQ-independent part (planning 1,000 specs in-process; reconcile time outside
 * RabbitMQ work, i.e. finalizer, validation and status writes to the API server; the bench's own
 * creates), operator peak RSS (VmHWM, goal ≤ 300 MB) and reconcile p95 from the operators'
 * `controller_runtime_reconcile_time_seconds` (goal ≤ 2 s).
 *
 * SCALE_REPLICAS=1 runs only the single-replica scenario (with PROFILE=1 too).
 * SCALE_RESOURCES=N creates N resources instead of 1,000 (e.g. `SCALE_REPLICAS=3 SCALE_RESOURCES=200`).
 * SCALE_LATENCY_MS=L puts a toxiproxy with L ms of round trip between the operators and the
 * management API, and MAX_CONCURRENT_RECONCILES=SCALE_RECONCILES (default 1) in every replica,
 * so that one replica is bound by latency, not by CPU or the broker: then 1 and 2 sharded
 * replicas (`SCALE_REPLICAS` defaults to `1,2`) show what a second replica adds. A new batch's
 * reconcile makes one management round trip (its PUTs in parallel) between API-server writes,
 * so the latency must be large against those writes: at 20 ms a reconcile took ~330 ms on this
 * machine (API server and broker under load), at 200 ms ~280 ms of which 200 ms waiting. The run
 * reports the machine's CPU busy share and each process's CPU use, to show whether CPU bound it.
 * No restart phase and no blind-redeclare baseline in that mode; written as
 * scale-latency-<L>ms-r<resources>.json.
 * PROFILE=1 runs the single replica with `node --cpu-prof` into bench/results/ and prints the
 * functions with the most self time (written as scale-profile.json: profiling slows everything,
 * so those timings are not the benchmark's).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { specSchema } from '../src/api/schema.js';
import { planBatch } from '../src/batch/plan.js';
import { ManagementClient } from '../src/rabbit/management-client.js';
import { observeVhost } from '../src/rabbit/observe.js';
import { blindRedeclare, declareCap, MGMT } from './lib/broker.js';
import { topSelfTime, type SelfTime } from './lib/cpu-profile.js';
import { runFleet, type FleetFigures } from './lib/fleet-scenario.js';
import { printTable, RESULTS_DIR, writeResult, type Row } from './lib/report.js';
import { Toxiproxy } from './lib/toxiproxy.js';

const QUICK = process.env.QUICK === '1';
const PROFILE = process.env.PROFILE === '1';
const R = process.env.SCALE_RESOURCES ? Number(process.env.SCALE_RESOURCES) : QUICK ? 20 : 1000;
const Q = QUICK ? 5 : 10;
/** SCALE_REPLICAS=1 (or any list, e.g. `1,3`) runs only those scenarios: the 3-replica part takes ~6 of the ~10 minutes. */
const LATENCY_MS = process.env.SCALE_LATENCY_MS ? Number(process.env.SCALE_LATENCY_MS) : undefined;
const RECONCILES = process.env.SCALE_RECONCILES ?? '1';
const REPLICAS = process.env.SCALE_REPLICAS ? process.env.SCALE_REPLICAS.split(',').map(Number) : LATENCY_MS !== undefined || QUICK ? [1, 2] : PROFILE ? [1] : [1, 3];
const PROFILE_DIR = join(RESULTS_DIR.pathname, `profile-${Date.now()}`);

const cap = await declareCap(QUICK ? 100 : 1000);

/** Planning (validation + plan) of every spec against the real observed vhost, in this process. */
let planningMs = NaN;
async function measurePlanning(vhost: string): Promise<void> {
  const api = new ManagementClient({ url: MGMT, username: 'guest', password: 'guest' });
  try {
    const observed = await observeVhost(api, vhost);
    const started = performance.now();
    for (let r = 0; r < R; r++) {
      const spec = specSchema.parse({ vhost, queues: Array.from({ length: Q }, (_, q) => ({ name: `r${r}.q${q}` })) });
      const plan = planBatch({ spec, observed });
      if (plan.items.some((i) => i.decision !== 'unchanged')) throw new Error(`r${r}: plan is not all unchanged`);
    }
    planningMs = performance.now() - started;
  } finally {
    await api.close();
  }
}

/** The restart baseline on the first fleet's queues, all in place: every queue re-declared blindly. */
let blind: Awaited<ReturnType<typeof blindRedeclare>> | undefined;
async function measureBlind(vhost: string): Promise<void> {
  blind = await blindRedeclare(vhost, Array.from({ length: R * Q }, (_, i) => `r${Math.floor(i / Q)}.q${i % Q}`));
}

const tox = LATENCY_MS !== undefined ? await Toxiproxy.start() : undefined;
const slowEnv = tox ? { RABBITMQ_URL: `http://${await tox.proxy('scale-mgmt', new URL(MGMT).host, LATENCY_MS!)}`, MAX_CONCURRENT_RECONCILES: RECONCILES } : undefined;
const fleets: FleetFigures[] = [];
for (const [index, replicas] of REPLICAS.entries()) {
  const whileReady = async (vhost: string) => {
    if (slowEnv) return;
    if (replicas === 1) await measurePlanning(vhost);
    if (index === 0) await measureBlind(vhost);
  };
  if (PROFILE) mkdirSync(PROFILE_DIR, { recursive: true });
  fleets.push(
    await runFleet({
      prefix: `scale${replicas}`,
      entry: 'source',
      replicas,
      resources: R,
      queuesPerResource: Q,
      restart: !slowEnv,
      ...(slowEnv ? { env: slowEnv } : {}),
      ...(tox?.pid ? { cpuPids: { toxiproxy: [tox.pid] } } : {}),
      ...(PROFILE ? { nodeFlags: ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] } : {}),
      whileReady,
    }),
  );
}

tox?.stop();
const rows: Row[] = [
  { name: `broker cap: durable queue declarations (best of ${Object.keys(cap.sweep).join(', ')})`, value: cap.perSecond, unit: 'queues/s', baseline: cap.how },
  ...(blind ? [{ name: `blind re-declare of all ${R * Q} queues (restart baseline, PUT x${blind.concurrency} keep-alive)`, value: blind.seconds, unit: 's' }] : []),
  ...(slowEnv ? [] : [{ name: `planning ${R} specs × ${Q} queues against the observed vhost (in-process, no I/O)`, value: planningMs, unit: 'ms' }]),
];
const rateOf = (f: FleetFigures) => (f.resources * f.queuesPerResource) / f.reconcile.seconds;
const busy = (f: FleetFigures) => (f.reconcile.cpu ? `${(f.reconcile.cpu.machineBusyShare * 100).toFixed(0)}%` : 'not measured');
const [one, two] = [fleets.find((f) => f.replicas === 1), fleets.find((f) => f.replicas === 2)];
if (slowEnv && one && two) {
  rows.push({
    name: `2 sharded replicas vs 1, ${LATENCY_MS} ms injected RTT to the management API, ${RECONCILES} concurrent reconciles per replica: queues Ready per second`,
    value: rateOf(two),
    unit: 'queues/s',
    baseline: `vs 1 replica (${rateOf(one).toFixed(0)} queues/s, same run; machine CPU busy ${busy(one)} with 1 replica, ${busy(two)} with 2)`,
    ratio: rateOf(two) / rateOf(one),
    goal: '>= 1.7×',
    met: rateOf(two) / rateOf(one) >= 1.7,
  });
}
if (slowEnv && one && two && one.reconcile.cpu && two.reconcile.perReplica) {
  // What held the ratio below 2, each part measured in this run: the larger shard sets the end,
  // and every reconcile waits longer on what the replicas share (API server, broker, CPU).
  const split = two.reconcile.perReplica;
  const larger = Math.max(...split.map((p) => p.readyItems)) / split.reduce((n, p) => n + p.readyItems, 0);
  const mean = (f: FleetFigures) => f.reconcile.reconcileSumSeconds / f.reconcile.reconciles;
  rows.push(
    { name: `2 sharded replicas: the larger shard's share of the resources (hashing ${R} names)`, value: larger * 100, unit: '%', baseline: 'ceiling of the 2-vs-1 ratio from this split alone', ratio: 1 / larger },
    { name: '2 sharded replicas: reconcile time, mean, against 1 replica\'s (same workload)', value: mean(two) * 1000, unit: 'ms/reconcile', baseline: `vs 1 replica (${(mean(one) * 1000).toFixed(0)} ms): time added by the shared API server, broker and CPU`, ratio: mean(two) / mean(one) },
  );
}
for (const f of fleets) {
  const label = `${f.replicas} replica${f.replicas > 1 ? 's (--sharding)' : ''}`;
  const queues = f.resources * f.queuesPerResource;
  const rate = queues / f.reconcile.seconds;
  const outside = (f.reconcile.reconcileSumSeconds - f.reconcile.batchSumSeconds) / f.reconcile.reconciles;
  rows.push(
    { name: `${label}: ${f.resources} × ${f.queuesPerResource} created → all Ready`, value: f.reconcile.seconds, unit: 's', baseline: `vs the broker alone at its cap (${(queues / cap.perSecond).toFixed(1)} s)`, ratio: queues / cap.perSecond / f.reconcile.seconds },
    { name: `${label}: declare rate reached`, value: rate, unit: 'queues/s', baseline: 'fraction of broker cap', ratio: rate / cap.perSecond },
    { name: `${label}: the bench's ${f.resources} creates on the API server (concurrency 10)`, value: f.createSeconds, unit: 's' },
    { name: `${label}: reconcile time outside RabbitMQ work (finalizer, validation, status writes), mean`, value: outside * 1000, unit: 'ms/reconcile', baseline: 'share of reconcile time', ratio: (f.reconcile.reconcileSumSeconds - f.reconcile.batchSumSeconds) / f.reconcile.reconcileSumSeconds },
    { name: `${label}: reconcile p95 (${f.reconcile.reconciles} reconciles)`, value: f.reconcile.reconcileP95Seconds, unit: 's', goal: '<= 2 s', met: f.reconcile.reconcileP95Seconds <= 2 },
    { name: `${label}: operator peak RSS (max over replicas)`, value: Math.max(...f.reconcile.peakRssMb), unit: 'MB', baseline: `vs at start (${Math.max(...f.startRssMb).toFixed(0)} MB)`, ratio: Math.max(...f.reconcile.peakRssMb) / Math.max(...f.startRssMb), goal: '<= 300 MB', met: Math.max(...f.reconcile.peakRssMb) <= 300 },
  );
  const cpu = f.reconcile.cpu;
  if (slowEnv && cpu) {
    // Whether one replica was bound by the injected latency, or by what every replica shares.
    const meanReconcile = f.reconcile.reconcileSumSeconds / f.reconcile.reconciles;
    const ours = Object.entries(cpu.processSeconds).reduce((sum, [, s]) => sum + s, 0);
    rows.push(
      { name: `${label}: reconcile time, mean`, value: meanReconcile * 1000, unit: 'ms/reconcile', baseline: `vs the injected round trip (${LATENCY_MS} ms)`, ratio: meanReconcile / (LATENCY_MS! / 1000) },
      { name: `${label}: management requests per reconcile (one parallel wave of PUTs per new batch)`, value: f.reconcile.managementRequests / f.reconcile.reconciles, unit: 'requests' },
      { name: `${label}: machine CPU busy over the run (2 cores, every session on the machine)`, value: cpu.machineBusyShare * 100, unit: '%' },
      { name: `${label}: CPU used by this run's processes (operators, API server, etcd, broker, toxiproxy, bench)`, value: ours / cpu.seconds, unit: 'cores', baseline: `of ${cpu.cores} cores; operators ${(cpu.processSeconds.operators! / cpu.seconds).toFixed(2)}, API server ${((cpu.processSeconds['kube-apiserver'] ?? 0) / cpu.seconds).toFixed(2)}, broker ${((cpu.processSeconds.rabbitmq ?? 0) / cpu.seconds).toFixed(2)}` },
    );
  }
  if (f.reverify) {
    rows.push(
      { name: `${label}: cold restart, all ${f.resources} re-verified (incl. process start)`, value: f.reverify.seconds, unit: 's', baseline: `vs re-declaring ${queues} queues at the broker cap`, ratio: queues / cap.perSecond / f.reverify.seconds },
      { name: `${label}: management requests for that re-verification (purpose="work")`, value: f.reverify.managementRequests, unit: 'requests', baseline: `vs ${blind!.requests} requests of the blind re-declare (same run)`, ratio: blind!.requests / Math.max(1, f.reverify.managementRequests) },
      { name: `${label}: cold restart re-verification time`, value: f.reverify.seconds, unit: 's', baseline: `vs blind re-declare, PUT x${blind!.concurrency} keep-alive (${blind!.seconds.toFixed(1)} s, same run)`, ratio: blind!.seconds / f.reverify.seconds },
      { name: `${label}: re-verification reconcile p95`, value: f.reverify.reconcileP95Seconds, unit: 's', goal: '<= 2 s', met: f.reverify.reconcileP95Seconds <= 2 },
    );
  }
}

let profile: { file: string; top: SelfTime[] }[] = [];
if (PROFILE) {
  // One profile per operator process, in the order they exited: reconcile, then re-verification.
  const files = readdirSync(PROFILE_DIR).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(PROFILE_DIR, f));
  files.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  profile = files.map((file) => ({ file, top: topSelfTime(file) }));
  for (const [i, p] of profile.entries()) {
    console.log(`\n${i === 0 ? 'reconcile' : 're-verification'} phase, top self time (${p.file}):`);
    for (const t of p.top) console.log(`  ${t.ms.toFixed(0).padStart(7)} ms  ${(t.share * 100).toFixed(1).padStart(5)}%  ${t.name}`);
  }
}

printTable(`scale: ${R} resources × ${Q} queues, ${REPLICAS.join(' and ')} replica(s)`, rows);
// A partial run (SCALE_REPLICAS) gets its own file so it never replaces the full scale.json.
const name = PROFILE ? 'scale-profile' : LATENCY_MS !== undefined ? `scale-latency-${LATENCY_MS}ms-r${R}` : process.env.SCALE_REPLICAS || process.env.SCALE_RESOURCES ? `scale-replicas-${REPLICAS.join('-')}-r${R}` : 'scale';
console.log(
  `wrote ${writeResult(name, {
    rows,
    figures: { cap, planningMs, blind, fleets },
    ...(PROFILE ? { profile } : {}),
    notes: [
      'The broker runs on the same 2 cores as the API server, the operators and this bench: declarations are capped by it, so the ratios to its cap are the figure that travels.',
      'RabbitMQ-independent part: planning is timed in-process on the real observed vhost; "outside RabbitMQ work" is controller_runtime_reconcile_time_seconds minus rabbitbatch_batch_duration_seconds (observe + plan + execute).',
      'Re-verification after a cold restart includes starting the processes (tsx) and the API list; RabbitMQ is asked only for vhost listings.',
      ...(PROFILE ? ['PROFILE=1: timings are slowed by the profiler and are not benchmark figures.'] : []),
      ...(slowEnv ? [`Latency mode: every replica reaches the management API through toxiproxy with ${LATENCY_MS} ms of round trip and runs ${RECONCILES} reconciles at once, so one replica is bound by latency; API server, broker, toxiproxy and all replicas share the same 2 cores, so this shows that work spreads over replicas, not that replicas on separate machines add capacity.`] : []),
    ],
  })}`,
);
process.exit(0);
