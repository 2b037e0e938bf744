/**
 * deploy/ against the real kube-apiserver that globalSetup brings up (.local/kubeconfig; with
 * make e2e, the cluster in $KUBECONFIG).
 *
 * - A copy of `kubectl kustomize deploy/default` is applied for real, with server-side apply,
 *   into a unique namespace (the cluster-scoped ClusterRoles and ClusterRoleBinding get a unique
 *   suffix; everything else is as rendered; the CRD is the shared one, applied with
 *   --dry-run=server so a concurrent test never sees it change). The Deployment's replicas are 0
 *   in that copy so that, on a cluster with controllers (make e2e), no pod tries to pull an image.
 * - Every overlay (prometheus, ha, networkpolicy, all) is applied the same way with
 *   --dry-run=server, with strict field validation: the API server checks every field of every
 *   object. monitoring.coreos.com has no CRDs on the local apiserver, so when they are missing the
 *   test installs stand-ins for ServiceMonitor and PrometheusRule whose schemas hold the fields
 *   of the real ones that deploy/ uses (unknown fields rejected), and removes them afterwards; on a
 *   cluster with the Prometheus Operator the real CRDs are used and left alone.
 * - The pod template passes the `restricted` Pod Security Standard that the namespace enforces
 *   (a Pod made from it is admitted by the real PodSecurity admission; a privileged one is not).
 * - Least privilege, as the operator's ServiceAccount (impersonation): `kubectl auth can-i`
 *   answers, and real requests succeed or are forbidden accordingly.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { loadEnv, loadOperatorConfig } from '../../src/config/config.js';
import { startManager } from '../../src/operator/manager.js';
import { kubeconfigPath } from '../support/kube.js';
import { createTestVhost, getQueue, rabbitUrl } from '../support/rabbit.js';
import { eventually } from '../support/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** From globalSetup (the local control plane's, or $KUBECONFIG with make e2e). */
let KUBECONFIG = '';
const ID = randomBytes(3).toString('hex');
const NS = `rb-deploy-${ID}`; // stands for rabbitbatch-system
const OTHER = `rb-deploy-${ID}-tenant`; // a namespace holding batches and their Secrets
const SA = `system:serviceaccount:${NS}:rabbitbatch`;
const MANAGER = 'rabbitbatch-deploy-test';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any }; [k: string]: any };

function kubectl(args: string[], input?: string): { status: number; out: string; err: string } {
  const res = spawnSync('kubectl', ['--kubeconfig', KUBECONFIG, ...args], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: res.status ?? -1, out: res.stdout ?? '', err: `${res.stderr ?? ''}${res.error ? String(res.error) : ''}` };
}
function ok(args: string[], input?: string): string {
  const res = kubectl(args, input);
  if (res.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${res.status}):\n${res.err}${res.out}`);
  return res.out;
}
const toYaml = (objs: Obj[]) => objs.map((o) => stringify(o)).join('---\n');

function render(dir: string): Obj[] {
  const res = spawnSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${res.stderr}`);
  return parseAllDocuments(res.stdout).map((d) => d.toJS() as Obj);
}

/** The rendered objects moved to the test's namespace, cluster-scoped RBAC names made unique. */
function relocate(objs: Obj[]): Obj[] {
  const copy = structuredClone(objs);
  for (const o of copy) {
    if (o.kind === 'Namespace') {
      o.metadata.name = NS;
      o.metadata.labels = { ...o.metadata.labels, 'rabbitbatch.io/test': 'true' };
    }
    if (o.metadata.namespace === 'rabbitbatch-system') o.metadata.namespace = NS;
    if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') o.metadata.name = `${o.metadata.name}-${ID}`;
    if (o.kind === 'ClusterRoleBinding' && o.roleRef.kind === 'ClusterRole') o.roleRef.name = `${o.roleRef.name}-${ID}`;
    if (o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding') {
      for (const s of o.subjects as any[]) if (s.namespace === 'rabbitbatch-system') s.namespace = NS;
    }
  }
  for (const o of copy) {
    expect([o.metadata.name, o.metadata.namespace]).not.toContain('rabbitbatch-system');
    for (const s of (o.subjects ?? []) as any[]) expect(s.namespace).not.toBe('rabbitbatch-system');
  }
  return copy;
}

const serverSideApply = (objs: Obj[], dryRun: boolean) =>
  kubectl(['apply', '--server-side', '--force-conflicts', `--field-manager=${MANAGER}`, '--validate=strict', ...(dryRun ? ['--dry-run=server'] : []), '-f', '-'], toYaml(objs));

// ---- stand-ins for the Prometheus Operator's CRDs ---------------------------------------------

const duration = { type: 'string', pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$' };
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const labelSelector = {
  type: 'object',
  properties: {
    matchLabels: stringMap,
    matchExpressions: {
      type: 'array',
      items: { type: 'object', required: ['key', 'operator'], properties: { key: { type: 'string' }, operator: { type: 'string' }, values: { type: 'array', items: { type: 'string' } } } },
    },
  },
};
const standInCrd = (plural: string, kind: string, spec: object): Obj => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.monitoring.coreos.com`, labels: { 'rabbitbatch.io/test-stand-in': 'true' } },
  spec: {
    group: 'monitoring.coreos.com',
    scope: 'Namespaced',
    names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
    versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', required: ['spec'], properties: { spec } } } }],
  },
});
/** The fields of monitoring.coreos.com/v1 that deploy/ may use, typed as in the real CRDs. */
const STAND_INS: Obj[] = [
  standInCrd('servicemonitors', 'ServiceMonitor', {
    type: 'object',
    required: ['selector'],
    properties: {
      selector: labelSelector,
      namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } } },
      jobLabel: { type: 'string' },
      targetLabels: { type: 'array', items: { type: 'string' } },
      podTargetLabels: { type: 'array', items: { type: 'string' } },
      sampleLimit: { type: 'integer', format: 'int64' },
      endpoints: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            port: { type: 'string' },
            targetPort: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
            path: { type: 'string' },
            scheme: { type: 'string', enum: ['http', 'https', 'HTTP', 'HTTPS'] },
            interval: duration,
            scrapeTimeout: duration,
            honorLabels: { type: 'boolean' },
            honorTimestamps: { type: 'boolean' },
            params: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
            relabelings: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
            metricRelabelings: { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
          },
        },
      },
    },
  }),
  standInCrd('prometheusrules', 'PrometheusRule', {
    type: 'object',
    properties: {
      groups: {
        type: 'array',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1 },
            interval: duration,
            limit: { type: 'integer' },
            labels: stringMap,
            rules: {
              type: 'array',
              items: {
                type: 'object',
                required: ['expr'],
                properties: {
                  alert: { type: 'string' },
                  record: { type: 'string' },
                  expr: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
                  for: duration,
                  keep_firing_for: duration,
                  labels: stringMap,
                  annotations: stringMap,
                },
              },
            },
          },
        },
      },
    },
  }),
];
const installedStandIns: string[] = [];

// ---- setup -------------------------------------------------------------------------------------

async function waitForApiserver(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (existsSync(KUBECONFIG)) {
      const res = kubectl(['get', '--raw', '/readyz']);
      if (res.status === 0 && res.out.trim() === 'ok') return;
      last = res.err || res.out;
    } else last = `${KUBECONFIG} does not exist yet (hack/env-up.sh writes it)`;
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(`the API server is not ready: ${last}`);
}

let defaultCopy: Obj[] = [];

beforeAll(async () => {
  KUBECONFIG = kubeconfigPath();
  await waitForApiserver(110_000);
  defaultCopy = relocate(render('deploy/default'));
  // The CRD: the shared one. Install it if nothing has yet, otherwise leave it to its owner.
  // A CRD the API server refuses fails the CRD test and the tests that need batches, not the rest.
  const crd = defaultCopy.find((o) => o.kind === 'CustomResourceDefinition')!;
  if (kubectl(['get', 'crd', crd.metadata.name]).status !== 0) {
    const res = kubectl(['apply', '--server-side', '--force-conflicts', `--field-manager=${MANAGER}`, '-f', '-'], toYaml([crd]));
    if (res.status === 0) ok(['wait', '--for=condition=Established', `crd/${crd.metadata.name}`, '--timeout=60s']);
  }
  for (const standIn of STAND_INS) {
    if (kubectl(['get', 'crd', standIn.metadata.name]).status === 0) continue;
    ok(['create', '-f', '-'], toYaml([standIn]));
    installedStandIns.push(standIn.metadata.name);
  }
  for (const name of installedStandIns) ok(['wait', '--for=condition=Established', `crd/${name}`, '--timeout=60s']);
  ok(['create', 'namespace', OTHER]);
  ok(['label', 'namespace', OTHER, 'rabbitbatch.io/test=true']);
  // The operator's namespace and ServiceAccount, so that each test below stands alone.
  const base = serverSideApply(defaultCopy.filter((o) => o.kind === 'Namespace' || o.kind === 'ServiceAccount'), false);
  if (base.status !== 0) throw new Error(base.err);
}, 180_000);

afterAll(() => {
  // Without kube-controller-manager (the local control plane) namespaces stay Terminating: fine.
  // An operator running for another test may have put its finalizer on the batch.
  kubectl(['patch', 'rabbitqueuebatches.rabbitbatch.io', 'orders', '-n', OTHER, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
  kubectl(['delete', 'rabbitqueuebatches.rabbitbatch.io', '--all', '-n', OTHER, '--wait=false']);
  kubectl(['delete', 'namespace', NS, OTHER, '--wait=false', '--ignore-not-found']);
  for (const o of defaultCopy.filter((x) => x.kind === 'ClusterRole' || x.kind === 'ClusterRoleBinding')) {
    kubectl(['delete', o.kind.toLowerCase(), o.metadata.name, '--ignore-not-found', '--wait=false']);
  }
  for (const name of installedStandIns) kubectl(['delete', 'crd', name, '--ignore-not-found', '--wait=false']);
});

// ---- tests -------------------------------------------------------------------------------------

describe('deploy/default applies to the API server', () => {
  it('the CRD passes a server-side apply dry run', () => {
    const crd = serverSideApply(defaultCopy.filter((o) => o.kind === 'CustomResourceDefinition'), true);
    expect(crd.status, crd.err).toBe(0);
    expect(crd.out).toMatch(/serverside-applied \(server dry run\)/);
  });

  it('`kubectl apply -f crds/` works: the directory holds plain manifests (server dry run)', () => {
    const res = kubectl(['apply', '--server-side', '--force-conflicts', `--field-manager=${MANAGER}`, '--dry-run=server', '-f', join(ROOT, 'crds')]);
    expect(res.status, res.err).toBe(0);
    expect(res.out).toMatch(/rabbitqueuebatches\.rabbitbatch\.io serverside-applied \(server dry run\)/);
  });

  it('server-side apply of every other rendered object (the Deployment at 0 replicas)', () => {
    const objs = structuredClone(defaultCopy.filter((o) => o.kind !== 'CustomResourceDefinition'));
    for (const o of objs) if (o.kind === 'Deployment') o.spec.replicas = 0;
    const applied = serverSideApply(objs, false);
    expect(applied.status, applied.err).toBe(0);
    // Everything is there, as rendered.
    for (const o of objs) {
      const got = kubectl(['get', o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '-o', 'json']);
      expect(got.status, `${o.kind} ${o.metadata.name}: ${got.err}`).toBe(0);
    }
    const deployment = JSON.parse(ok(['get', 'deployment', 'rabbitbatch', '-n', NS, '-o', 'json']));
    expect(deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    expect(JSON.parse(ok(['get', 'namespace', NS, '-o', 'json'])).metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // Applying again is a no-op: no object changes (no field fights with the API server's defaults).
    const versions = () =>
      objs.map((o) => ok(['get', o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []), '-o', 'jsonpath={.metadata.resourceVersion}']));
    const before = versions();
    const again = serverSideApply(objs, false);
    expect(again.status, again.err).toBe(0);
    expect(versions()).toEqual(before);
  });

  it('the pod template is admitted under the restricted Pod Security Standard, and the same pod without its security settings is not', () => {
    const deployment = defaultCopy.find((o) => o.kind === 'Deployment')!;
    const pod = (name: string, mutate: (spec: any) => void = () => {}): Obj => {
      const spec = structuredClone(deployment.spec.template.spec);
      mutate(spec);
      return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels: deployment.spec.template.metadata.labels }, spec };
    };
    const admitted = kubectl(['create', '--dry-run=server', '-f', '-'], toYaml([pod('rabbitbatch-template')]));
    expect(admitted.status, admitted.err).toBe(0);
    expect(admitted.err).not.toMatch(/PodSecurity|violate/i);
    // The control: the same pod without its security settings is refused by the same admission.
    const unhardened = kubectl(
      ['create', '--dry-run=server', '-f', '-'],
      toYaml([
        pod('unhardened', (s) => {
          delete s.securityContext;
          delete s.containers[0].securityContext;
        }),
      ]),
    );
    expect(unhardened.status).not.toBe(0);
    expect(unhardened.err).toMatch(/violates PodSecurity "restricted/);
  });
});

describe.each(['deploy/default', 'deploy/overlays/prometheus', 'deploy/overlays/ha', 'deploy/overlays/networkpolicy', 'deploy/overlays/all'])(
  '%s',
  (dir) => {
    it('passes a server-side apply dry run with strict field validation (the CRD: see above)', () => {
      const res = serverSideApply(relocate(render(dir)).filter((o) => o.kind !== 'CustomResourceDefinition'), true);
      expect(res.status, res.err).toBe(0);
      expect(res.out).toMatch(/serverside-applied \(server dry run\)/);
      expect(res.err).not.toMatch(/unknown field|Warning/i);
    });
  },
);

describe('least privilege, as the operator ServiceAccount', () => {
  const canI = (...args: string[]) => {
    const res = kubectl(['auth', 'can-i', `--as=${SA}`, ...args]);
    return res.out.trim();
  };
  const as = (args: string[], input?: string) => kubectl([`--as=${SA}`, ...args], input);

  beforeAll(() => {
    // The bindings (from the first describe; apply them here too so this block stands alone).
    const rbac = defaultCopy.filter((o) => ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind));
    const res = serverSideApply(rbac, false);
    if (res.status !== 0) throw new Error(res.err);
  });

  it('kubectl auth can-i: what the code uses, and nothing else', () => {
    // Secrets: get and watch (the operator watches the Secrets it reads, by name); never list.
    expect(canI('list', 'secrets', '--all-namespaces')).toBe('no');
    expect(canI('watch', 'secrets', '-n', OTHER)).toBe('yes');
    expect(canI('list', 'secrets', '-n', OTHER)).toBe('no');
    expect(canI('get', 'secrets', '-n', OTHER)).toBe('yes');
    expect(canI('create', 'secrets', '-n', OTHER)).toBe('no');
    // Its resources, their status and finalizers (kubectl needs the CRD installed to resolve them).
    expect(kubectl(['get', 'crd', 'rabbitqueuebatches.rabbitbatch.io']).status, 'the RabbitQueueBatch CRD is not installed (see the CRD test)').toBe(0);
    expect(canI('list', 'rabbitqueuebatches.rabbitbatch.io', '--all-namespaces')).toBe('yes');
    expect(canI('watch', 'rabbitqueuebatches.rabbitbatch.io', '--all-namespaces')).toBe('yes');
    expect(canI('patch', 'rabbitqueuebatches.rabbitbatch.io', '--subresource=status', '-n', OTHER)).toBe('yes');
    expect(canI('update', 'rabbitqueuebatches.rabbitbatch.io', '--subresource=finalizers', '-n', OTHER)).toBe('yes');
    expect(canI('create', 'rabbitqueuebatches.rabbitbatch.io', '-n', OTHER)).toBe('no');
    expect(canI('delete', 'rabbitqueuebatches.rabbitbatch.io', '-n', OTHER)).toBe('no');
    // Events.
    expect(canI('create', 'events', '-n', OTHER)).toBe('yes');
    expect(canI('delete', 'events', '-n', OTHER)).toBe('no');
    // Leases in its own namespace only.
    expect(canI('create', 'leases.coordination.k8s.io', '-n', NS)).toBe('yes');
    expect(canI('delete', 'leases.coordination.k8s.io', '-n', NS)).toBe('yes');
    expect(canI('create', 'leases.coordination.k8s.io', '-n', OTHER)).toBe('no');
    expect(canI('get', 'leases.coordination.k8s.io', '-n', 'kube-system')).toBe('no');
    // Nothing else.
    expect(canI('create', 'pods')).toBe('no');
    expect(canI('create', 'pods', '-n', NS)).toBe('no');
    expect(canI('get', 'configmaps', '-n', NS)).toBe('no');
    expect(canI('patch', 'deployments.apps', '-n', NS)).toBe('no');
    expect(canI('list', 'namespaces')).toBe('no');
    expect(canI('create', 'customresourcedefinitions.apiextensions.k8s.io')).toBe('no');
    expect(canI('bind', 'clusterroles.rbac.authorization.k8s.io')).toBe('no');
    expect(canI('impersonate', 'serviceaccounts')).toBe('no');
    expect(canI('*', '*', '--all-namespaces')).toBe('no');
  });

  it('the API server serves and refuses real requests accordingly', () => {
    ok(['create', 'secret', 'generic', 'rabbitmq-credentials', '-n', OTHER, '--from-literal=username=app', '--from-literal=password=s3cret']);
    // A Secret a batch names: readable by name...
    const got = as(['get', 'secret', 'rabbitmq-credentials', '-n', OTHER, '-o', 'jsonpath={.data.username}']);
    expect(got.status, got.err).toBe(0);
    expect(Buffer.from(got.out, 'base64').toString()).toBe('app');
    // ...but not discoverable.
    const list = as(['get', 'secrets', '-n', OTHER]);
    expect(list.status).not.toBe(0);
    expect(list.err).toMatch(/forbidden/i);
    const listAll = as(['get', 'secrets', '--all-namespaces']);
    expect(listAll.status).not.toBe(0);
    expect(listAll.err).toMatch(/forbidden/i);

    // A batch created by a user: the operator reads it and writes its status, cannot create or delete one.
    expect(kubectl(['get', 'crd', 'rabbitqueuebatches.rabbitbatch.io']).status, 'the RabbitQueueBatch CRD is not installed (see the CRD test)').toBe(0);
    const batch = { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name: 'orders', namespace: OTHER }, spec: { rabbitmq: { connectionSecret: { name: 'rabbitmq-credentials' } } } };
    ok(['apply', '--server-side', `--field-manager=${MANAGER}`, '-f', '-'], toYaml([batch]));
    expect(as(['get', 'rabbitqueuebatches.rabbitbatch.io', '--all-namespaces']).status).toBe(0);
    // A status patch, as the operator sends it: a PATCH on /status with no GET of /status first
    // (`kubectl patch --subresource=status` GETs it, which the operator neither does nor may).
    const status = as(
      ['apply', '--server-side', '--subresource=status', '--field-manager=rabbitbatch', '-f', '-'],
      toYaml([{ apiVersion: batch.apiVersion, kind: batch.kind, metadata: batch.metadata, status: { observedGeneration: 1 } } as Obj]),
    );
    expect(status.status, status.err).toBe(0);
    expect(ok(['get', 'rabbitqueuebatches.rabbitbatch.io', 'orders', '-n', OTHER, '-o', 'jsonpath={.status.observedGeneration}'])).toBe('1');
    const spec = as(['create', '-f', '-'], toYaml([{ ...batch, metadata: { name: 'forged', namespace: OTHER } }]));
    expect(spec.status).not.toBe(0);
    expect(spec.err).toMatch(/forbidden/i);
    const del = as(['delete', 'rabbitqueuebatches.rabbitbatch.io', 'orders', '-n', OTHER, '--wait=false']);
    expect(del.status).not.toBe(0);
    expect(del.err).toMatch(/forbidden/i);

    // Leases: its own namespace, not another.
    const lease = (ns: string) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'rabbitbatch-test', namespace: ns }, spec: { holderIdentity: 'test', leaseDurationSeconds: 15 } });
    const own = as(['create', '-f', '-'], toYaml([lease(NS)]));
    expect(own.status, own.err).toBe(0);
    expect(as(['delete', 'lease', 'rabbitbatch-test', '-n', NS]).status).toBe(0);
    const foreign = as(['create', '-f', '-'], toYaml([lease(OTHER)]));
    expect(foreign.status).not.toBe(0);
    expect(foreign.err).toMatch(/forbidden/i);

    // Workloads: no.
    const pod = as(['run', 'escape', '-n', NS, '--image=busybox', '--dry-run=server']);
    expect(pod.status).not.toBe(0);
    expect(pod.err).toMatch(/forbidden/i);
  });

  it('the operator, running as this ServiceAccount, reconciles a batch end to end', async () => {
    // The admin kubeconfig, impersonating the ServiceAccount: every request the operator makes is
    // authorized as the ServiceAccount would be in a cluster.
    const kubeconfig = join(ROOT, '.local', `kubeconfig-${ID}-sa`);
    const admin = parseAllDocuments(readFileSync(kubeconfigPath(), 'utf8'))[0]!.toJSON() as { users: { user: Record<string, unknown> }[] };
    for (const u of admin.users) u.user.as = SA;
    writeFileSync(kubeconfig, stringify(admin));
    const vhost = await createTestVhost('sa');
    ok(['create', 'secret', 'generic', 'rabbit-guest', '-n', OTHER, `--from-literal=uri=${rabbitUrl()}`, '--from-literal=username=guest', '--from-literal=password=guest']);
    const config = loadOperatorConfig(
      { metricsBindAddress: '127.0.0.1:0', healthProbeBindAddress: '127.0.0.1:0', leaderElect: true, kubeconfig, logLevel: 'error' },
      // Scoped to its tenant namespace, so it never reconciles the batches of tests running alongside.
      loadEnv({ ...process.env, POD_NAMESPACE: NS, POD_NAME: 'rabbitbatch-sa-test', HTTP_POOL_MIN_SIZE: '1', WATCH_NAMESPACE: OTHER }),
    );
    const operator = await startManager(config, { onLostLeadership: () => undefined, logDestination: new Writable({ write: (_c, _e, done) => done() }) });
    try {
      const batch = { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { name: 'sa-batch', namespace: OTHER }, spec: { vhost: vhost.name, rabbitmq: { connectionSecret: { name: 'rabbit-guest' } }, queues: [{ name: 'sa.q' }] } };
      ok(['apply', '--server-side', `--field-manager=${MANAGER}`, '-f', '-'], toYaml([batch]));
      await eventually(
        () => expect(ok(['get', 'rabbitqueuebatches.rabbitbatch.io', 'sa-batch', '-n', OTHER, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).toBe('True'),
        { timeoutMs: 60_000 },
      );
      expect(await getQueue(vhost.name, 'sa.q')).toBeDefined();
      expect(ok(['get', 'lease', 'rabbitbatch-leader', '-n', NS, '-o', 'jsonpath={.spec.holderIdentity}'])).toBe('rabbitbatch-sa-test');
    } finally {
      await operator.stop();
      kubectl(['patch', 'rabbitqueuebatches.rabbitbatch.io', 'sa-batch', '-n', OTHER, '--type=json', '-p', '[{"op":"remove","path":"/metadata/finalizers"}]']);
      await vhost.cleanup();
    }
  }, 120_000);
});
