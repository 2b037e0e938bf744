/**
 * The integration suite's operator as users run it (`make e2e` against the real node of
 * hack/cluster.sh, RABBITBATCH_OPERATOR=pod): the image from `make image` as a Pod in the test's
 * namespace, under a ServiceAccount bound to deploy/'s ClusterRole by a RoleBinding in that
 * namespace only (the narrowing deploy/default/rbac.yaml describes), with deploy/'s container as
 * it is (securityContext, probes, limits) and only the image, the arguments and the environment
 * changed. Logs come from `kubectl logs -f`, metrics and probes from the Pod's address, which the
 * host reaches over the node's bridge.
 *
 * Failure modes: a Pod that does not become Ready within 90 s fails the test with its status and
 * last log lines; a Pod that exits is not restarted (restartPolicy Never), so a crash fails the
 * test that caused it instead of being hidden by a restart.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { kubeconfigPath } from './kube.js';
import { kubectl, kubectlJson } from './kubectl.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** Where a Pod on the node reaches the machine's services (hack/cluster.sh forwards them there). */
export const NODE_IP = '10.244.0.1';
export const IMAGE = process.env.RABBITBATCH_IMAGE ?? 'localhost/rabbitbatch:dev';

/** Loopback addresses of the machine's broker, as the Pod reaches them. */
export function forPod(value: string): string {
  return value
    .replace(/\/\/(127\.0\.0\.1|localhost):15672\b/g, `//${NODE_IP}:15673`)
    .replace(/\/\/(127\.0\.0\.1|localhost):5672\b/g, `//${NODE_IP}:5672`);
}

export interface PodOperator {
  pod: string;
  logs: string[];
  metricsAddress: string;
  probeAddress: string;
  stop(): Promise<void>;
}

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: unknown;
  [key: string]: unknown;
}

/** deploy/default's Pod template and RBAC, read from the files users apply. */
function deployed(): { podSpec: { containers: Container[]; [key: string]: unknown }; clusterRole: unknown; leaseRole: { rules: unknown } } {
  const deployment = parseAllDocuments(readFileSync(`${ROOT}deploy/default/deployment.yaml`, 'utf8'))[0]!.toJSON() as { spec: { template: { spec: { containers: Container[] } } } };
  const rbac = parseAllDocuments(readFileSync(`${ROOT}deploy/default/rbac.yaml`, 'utf8')).map((d) => d.toJSON() as { kind: string; metadata: { name: string }; rules: unknown });
  const clusterRole = rbac.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'rabbitbatch-operator');
  const leaseRole = rbac.find((d) => d.kind === 'Role' && d.metadata.name === 'rabbitbatch-leases');
  if (!clusterRole || !leaseRole) throw new Error('deploy/default/rbac.yaml lost its rabbitbatch-operator ClusterRole or rabbitbatch-leases Role');
  return { podSpec: deployment.spec.template.spec, clusterRole, leaseRole };
}

async function apply(objects: unknown[]): Promise<void> {
  await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager', 'rabbitbatch-tests', '-f', '-'], { input: objects.map((o) => JSON.stringify(o)).join('\n') });
}

/** The ServiceAccount and bindings of `namespace`'s test operators (idempotent). */
async function ensureRbac(namespace: string): Promise<void> {
  const { clusterRole, leaseRole } = deployed();
  const sa = { kind: 'ServiceAccount', name: 'rabbitbatch', namespace };
  await apply([
    clusterRole,
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'rabbitbatch', namespace } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'rabbitbatch-operator', namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rabbitbatch-operator' }, subjects: [sa] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'rabbitbatch-leases', namespace }, rules: leaseRole.rules },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'rabbitbatch-leases', namespace }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'rabbitbatch-leases' }, subjects: [sa] },
  ]);
}

interface PodStatus {
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { state?: Record<string, { reason?: string; message?: string }> }[] };
}

export async function startOperatorPod(namespace: string, env: Record<string, string>, flags: { sharding?: boolean }): Promise<PodOperator> {
  await ensureRbac(namespace);
  const { podSpec } = deployed();
  const template = podSpec.containers[0]!;
  const pod = `rabbitbatch-${randomBytes(3).toString('hex')}`;
  const overrides: Record<string, string> = {
    RABBITMQ_URL: forPod(process.env.RABBITMQ_URL ?? 'http://127.0.0.1:15672'),
    RABBITMQ_AMQP_URL: forPod(process.env.RABBITMQ_AMQP_URL ?? 'amqp://127.0.0.1:5672'),
    RABBITMQ_USERNAME: 'guest',
    RABBITMQ_PASSWORD: 'guest',
    WATCH_NAMESPACE: namespace,
    LOG_LEVEL: 'debug',
    HTTP_POOL_MIN_SIZE: '2',
    ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, forPod(v)])),
  };
  // deploy/'s downward-API entries stay unless the test sets that variable itself.
  const kept = (template.env ?? []).filter((e) => !(e.name in overrides));
  const container: Container = {
    ...template,
    image: IMAGE,
    imagePullPolicy: 'Never',
    args: ['operator', '--metrics-bind-address=:8080', '--health-probe-bind-address=:8081', ...(flags.sharding ? ['--sharding'] : [])],
    env: [...kept, ...Object.entries(overrides).map(([name, value]) => ({ name, value }))],
  };
  delete container.envFrom;
  // Readiness every 2 s (deploy/ says 10 s): tests wait for it, users' kubelets need not hurry.
  container.readinessProbe = { ...(template.readinessProbe as object), initialDelaySeconds: 1, periodSeconds: 2 };
  await apply([
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod, namespace, labels: { 'app.kubernetes.io/name': 'rabbitbatch', 'app.kubernetes.io/component': 'test-operator' } },
      spec: { ...podSpec, serviceAccountName: 'rabbitbatch', restartPolicy: 'Never', terminationGracePeriodSeconds: 30, containers: [container] },
    },
  ]);

  const logs: string[] = [];
  let follower: ChildProcess | undefined;
  const status = () => kubectlJson<PodStatus>(['get', 'pod', '-n', namespace, pod]);
  const deadline = Date.now() + 90_000;
  let ip: string | undefined;
  for (;;) {
    const s = (await status()).status;
    if (s?.phase === 'Running' && !follower) follower = followPodLogs(namespace, pod, logs);
    if (s?.phase === 'Failed' || s?.phase === 'Succeeded') {
      const last = (await kubectl(['logs', '-n', namespace, pod], { allowFailure: true })).stdout.trim().split('\n').slice(-8).join('\n');
      throw new Error(`operator Pod ${namespace}/${pod} exited (${s.phase}); its last log lines:\n${last}`);
    }
    if (s?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
      ip = s.podIP!;
      break;
    }
    if (Date.now() > deadline) {
      const waiting = s?.containerStatuses?.[0]?.state?.waiting;
      throw new Error(`operator Pod ${namespace}/${pod} not Ready after 90 s (${s?.phase}${waiting ? `, ${waiting.reason}: ${waiting.message}` : ''}); last log: ${logs.slice(-3).join(' | ')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  let stopped: Promise<void> | undefined;
  return {
    pod,
    logs,
    metricsAddress: `${ip}:8080`,
    probeAddress: `${ip}:8081`,
    // Graceful, as the kubelet stops it: SIGTERM, reconciles in flight finish, then it exits.
    stop: () =>
      (stopped ??= (async () => {
        await kubectl(['delete', 'pod', '-n', namespace, pod, '--wait=true', '--timeout=60s'], { allowFailure: true });
        follower?.kill();
      })()),
  };
}

function followPodLogs(namespace: string, pod: string, into: string[]): ChildProcess {
  const child = spawn('kubectl', ['--kubeconfig', kubeconfigPath(), 'logs', '-f', '-n', namespace, pod], { stdio: ['ignore', 'pipe', 'ignore'] });
  let rest = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    into.push(...parts.filter(Boolean));
  });
  return child;
}
