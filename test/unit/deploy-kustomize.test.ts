/**
 * deploy/: every kustomization renders with the kubectl on this machine; the rendered RBAC is
 * least-privilege and wildcard-free; the Deployment is hardened as the issue asks; the optional
 * components select what they mean to; the alerts fire on the series they are written for
 * (promtool); the dashboard and the alerts use only metrics the operator exports
 * (deploy/metrics.txt); the Argo CD health check maps real statuses (from the status builder)
 * to the right health.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import { loadEnv } from '../../src/config/config.js';
import { buildStatus, failedStatus } from '../../src/controllers/batch-status.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

// ---- rendering ---------------------------------------------------------------------------------

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};
// The rendered objects are untyped YAML; tests walk them with `any`, as kubectl would.
/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const KUSTOMIZATIONS = ['deploy/default', 'deploy/overlays/prometheus', 'deploy/overlays/ha', 'deploy/overlays/networkpolicy', 'deploy/overlays/all'] as const;
const rendered = new Map<string, Obj[]>();

function render(dir: string): Obj[] {
  const cached = rendered.get(dir);
  if (cached) return cached;
  const out = execFileSync('kubectl', ['kustomize', join(ROOT, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const objs = parseAllDocuments(out).map((d) => {
    if (d.errors.length > 0) throw new Error(`${dir}: ${d.errors[0]?.message}`);
    return d.toJS() as Obj;
  });
  rendered.set(dir, objs);
  return objs;
}

const id = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const find = (objs: Obj[], kind: string, name?: string): Any => {
  const hits = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (hits.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${hits.length}`);
  return hits[0];
};
const selects = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

const NS = 'rabbitbatch-system';
const SA = 'rabbitbatch';

describe('kustomize renders', () => {
  it.each(KUSTOMIZATIONS)('%s renders, with unique objects all in the operator namespace or cluster-scoped', (dir) => {
    const objs = render(dir);
    expect(objs.length).toBeGreaterThan(8);
    const ids = objs.map(id);
    expect(new Set(ids).size).toBe(ids.length);
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);
    for (const o of objs) {
      if (clusterScoped.has(o.kind)) expect(o.metadata.namespace, id(o)).toBeUndefined();
      else expect(o.metadata.namespace, id(o)).toBe(NS);
      expect(o.metadata.labels?.['app.kubernetes.io/name'], id(o)).toBe('rabbitbatch');
    }
  });

  it('deploy/default has the namespace, CRD, ServiceAccount, RBAC, Deployment, metrics Service and config', () => {
    const kinds = render('deploy/default').map((o) => o.kind).sort();
    expect(kinds).toEqual(
      ['ClusterRole', 'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'CustomResourceDefinition', 'Deployment', 'Namespace', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'].sort(),
    );
    expect(find(render('deploy/default'), 'Namespace').metadata.name).toBe(NS);
  });

  it('the overlays add exactly their components', () => {
    const base = new Set(render('deploy/default').map(id));
    const added = (dir: string) => render(dir).filter((o) => !base.has(id(o))).map((o) => o.kind).sort();
    expect(added('deploy/overlays/prometheus')).toEqual(['PrometheusRule', 'ServiceMonitor']);
    expect(added('deploy/overlays/ha')).toEqual(['HorizontalPodAutoscaler', 'PodDisruptionBudget']);
    expect(added('deploy/overlays/networkpolicy')).toEqual(['NetworkPolicy']);
    expect(added('deploy/overlays/all')).toEqual(['HorizontalPodAutoscaler', 'NetworkPolicy', 'PodDisruptionBudget', 'PrometheusRule', 'ServiceMonitor']);
  });

  it('deploy/default installs the generated CRD (deploy/crds, a copy of crds/)', () => {
    const generated = read('crds/rabbitbatch.io_rabbitqueuebatches.yaml');
    const crd = find(render('deploy/default'), 'CustomResourceDefinition');
    const { labels: _labels, ...renderedMeta } = crd.metadata;
    const { labels: _genLabels, ...genMeta } = (parseYaml(generated) as Any).metadata;
    expect(renderedMeta).toEqual(genMeta);
    expect(crd.spec).toEqual((parseYaml(generated) as Any).spec);
  });
});

// ---- RBAC --------------------------------------------------------------------------------------

describe('RBAC is least privilege', () => {
  const rulesOf = (objs: Obj[]) => objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole') as Any[];

  it.each(KUSTOMIZATIONS)('%s: no wildcard in apiGroups, resources or verbs, no nonResourceURLs', (dir) => {
    const roles = rulesOf(render(dir));
    expect(roles.length).toBeGreaterThanOrEqual(4);
    for (const role of roles) {
      for (const rule of role.rules as Any[]) {
        for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames']) {
          for (const v of (rule[field] ?? []) as string[]) expect(v, `${role.metadata.name} ${field}`).not.toContain('*');
        }
        expect(rule.nonResourceURLs, role.metadata.name).toBeUndefined();
      }
      expect(role.aggregationRule, role.metadata.name).toBeUndefined();
    }
  });

  it('secrets: only get and watch (by name), never list, anywhere', () => {
    for (const dir of KUSTOMIZATIONS) {
      for (const role of rulesOf(render(dir))) {
        for (const rule of role.rules as Any[]) {
          if ((rule.resources as string[]).some((r) => r === 'secrets' || r.startsWith('secrets/'))) {
            expect(rule.verbs, role.metadata.name).toEqual(['get', 'watch']);
            expect(rule.resources).toEqual(['secrets']);
          }
        }
      }
    }
  });

  it("the operator's ClusterRole and Role grant exactly what the code uses", () => {
    const objs = render('deploy/default');
    const norm = (rules: Any[]) =>
      rules.flatMap((r) => (r.apiGroups as string[]).flatMap((g) => (r.resources as string[]).map((res) => `${g}/${res}: ${[...(r.verbs as string[])].sort().join(',')}`))).sort();
    expect(norm(find(objs, 'ClusterRole', 'rabbitbatch-operator').rules)).toEqual(
      [
        '/events: create,patch',
        '/secrets: get,watch',
        'rabbitbatch.io/rabbitqueuebatches: get,list,patch,update,watch',
        'rabbitbatch.io/rabbitqueuebatches/finalizers: patch,update',
        'rabbitbatch.io/rabbitqueuebatches/status: patch,update',
      ].sort(),
    );
    const role = find(objs, 'Role', 'rabbitbatch-leases');
    expect(role.metadata.namespace).toBe(NS);
    expect(norm(role.rules)).toEqual(['coordination.k8s.io/leases: create,delete,get,list,patch,update,watch']);
  });

  it('the bindings give those roles to the ServiceAccount, and only to it', () => {
    const objs = render('deploy/default');
    find(objs, 'ServiceAccount', SA);
    const crb = find(objs, 'ClusterRoleBinding', 'rabbitbatch-operator');
    expect(crb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'rabbitbatch-operator' });
    expect(crb.subjects).toEqual([{ kind: 'ServiceAccount', name: SA, namespace: NS }]);
    const rb = find(objs, 'RoleBinding', 'rabbitbatch-leases');
    expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'rabbitbatch-leases' });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: SA, namespace: NS }]);
    // The user-facing roles are aggregated into admin/edit/view and bound to nobody here.
    const bound = objs.filter((o) => o.kind.endsWith('Binding')).map((b: Any) => b.roleRef.name);
    expect(bound.sort()).toEqual(['rabbitbatch-leases', 'rabbitbatch-operator']);
    expect(find(objs, 'ClusterRole', 'rabbitbatch-rabbitqueuebatch-viewer').rules[0].verbs).toEqual(['get', 'list', 'watch']);
  });
});

// ---- Deployment --------------------------------------------------------------------------------

describe('the Deployment', () => {
  const objs = () => render('deploy/default');
  const deployment = () => find(objs(), 'Deployment', 'rabbitbatch');
  const container = () => deployment().spec.template.spec.containers[0];

  it('runs non-root with a read-only root filesystem, no privilege escalation, no capabilities, seccomp RuntimeDefault', () => {
    const pod = deployment().spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.containers).toHaveLength(1);
    const sc = container().securityContext;
    expect(sc).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(sc.capabilities.add).toBeUndefined();
    expect(sc.privileged ?? false).toBe(false);
    // The Namespace enforces the restricted Pod Security Standard these settings satisfy.
    expect(find(objs(), 'Namespace').metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('runs the operator with leader election, metrics on :8080 and probes on :8081', () => {
    const c = container();
    expect(c.image).toMatch(/^[\w.\-/]+\/rabbitbatch:[\w.-]+$/);
    expect(c.command).toBeUndefined(); // the image's ENTRYPOINT (node dist/cli/main.js)
    expect(c.args).toEqual(['operator', '--metrics-bind-address=:8080', '--health-probe-bind-address=:8081', '--leader-elect']);
    const ports = Object.fromEntries((c.ports as Any[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ metrics: 8080, health: 8081 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(deployment().spec.template.spec.terminationGracePeriodSeconds).toBe(60);
    expect(deployment().spec.template.spec.serviceAccountName).toBe(SA);
  });

  it('has requests and limits', () => {
    expect(container().resources).toEqual({ requests: { cpu: '50m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } });
  });

  it('gets credentials from the optional Secret, its identity from the downward API, and settings the operator accepts', () => {
    const env = Object.fromEntries((container().env as Any[]).map((e) => [e.name, e.valueFrom]));
    expect(env.RABBITMQ_USERNAME.secretKeyRef).toEqual({ name: 'rabbitbatch-rabbitmq', key: 'username', optional: true });
    expect(env.RABBITMQ_PASSWORD.secretKeyRef).toEqual({ name: 'rabbitbatch-rabbitmq', key: 'password', optional: true });
    expect(env.POD_NAME.fieldRef.fieldPath).toBe('metadata.name');
    expect(env.POD_NAMESPACE.fieldRef.fieldPath).toBe('metadata.namespace');

    const cmName = container().envFrom[0].configMapRef.name as string;
    const cm = find(objs(), 'ConfigMap', cmName); // the generated name (with its hash) resolves
    const data = cm.data as Record<string, string>;
    expect(Object.keys(data)).toEqual(expect.arrayContaining(['RABBITMQ_URL', 'RABBITMQ_AMQP_URL', 'CACHE_BACKEND', 'REDIS_URL', 'LOG_LEVEL', 'MAX_CONCURRENT_RECONCILES']));
    // Every variable the manifests set is one the operator's configuration reads, with a valid value.
    const all = { ...data, RABBITMQ_USERNAME: 'u', RABBITMQ_PASSWORD: 'p', POD_NAME: 'rabbitbatch-0', POD_NAMESPACE: NS };
    const parsed = loadEnv(all);
    for (const key of Object.keys(all)) expect(parsed, `unknown variable ${key}`).toHaveProperty(key);
    expect(parsed.RABBITMQ_URL).toBe('http://rabbitmq.rabbitmq.svc:15672');
  });

  it('caps the V8 heap under the memory limit, with flags node accepts in NODE_OPTIONS', () => {
    const env = Object.fromEntries((container().env as Any[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
    const options = env.NODE_OPTIONS ?? '';
    // The old generation at most half the limit: the rest is young generation, code, buffers and the node binary.
    const oldSpaceMb = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1]);
    const limitMi = Number(/^(\d+)Mi$/.exec(container().resources.limits.memory as string)?.[1]);
    expect(oldSpaceMb).toBeGreaterThan(0);
    expect(oldSpaceMb).toBeLessThanOrEqual(limitMi / 2);
    // node refuses to start (exit 9) on a flag NODE_OPTIONS does not allow: the Pod would crash-loop.
    const run = spawnSync(process.execPath, ['-e', '0'], { env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
  });

  it('the metrics Service selects the pods and targets the metrics port', () => {
    const svc = find(objs(), 'Service', 'rabbitbatch-metrics');
    const podLabels = deployment().spec.template.metadata.labels;
    expect(selects(svc.spec.selector, podLabels)).toBe(true);
    expect(selects(deployment().spec.selector.matchLabels, podLabels)).toBe(true);
    expect(svc.spec.ports).toEqual([{ name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' }]);
  });
});

// ---- components --------------------------------------------------------------------------------

describe('components', () => {
  it('ha: 3 replicas with sharding, spread, a PDB and an HPA on CPU and workqueue_depth', () => {
    const objs = render('deploy/overlays/ha');
    const d = find(objs, 'Deployment', 'rabbitbatch');
    const podLabels = d.spec.template.metadata.labels;
    expect(d.spec.replicas).toBe(3);
    expect(d.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--leader-elect', '--sharding']));
    const spread = d.spec.template.spec.topologySpreadConstraints as Any[];
    expect(spread.map((s) => s.topologyKey)).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
    for (const s of spread) expect(selects(s.labelSelector.matchLabels, podLabels)).toBe(true);

    const pdb = find(objs, 'PodDisruptionBudget', 'rabbitbatch');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.maxUnavailable ?? 3 - pdb.spec.minAvailable).toBe(1);
    expect(selects(pdb.spec.selector.matchLabels, podLabels)).toBe(true);

    const hpa = find(objs, 'HorizontalPodAutoscaler', 'rabbitbatch');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'rabbitbatch' });
    expect(hpa.spec.minReplicas).toBe(3);
    const metrics = hpa.spec.metrics as Any[];
    expect(metrics.find((m) => m.type === 'Resource').resource.name).toBe('cpu');
    expect(metrics.find((m) => m.type === 'Pods').pods.metric.name).toBe('workqueue_depth');
    // The adapter rule next to it serves that metric.
    const adapter = parseYaml(read('deploy/components/ha/prometheus-adapter-rules.yaml')) as Any;
    expect(adapter.rules[0].name.as).toBe('workqueue_depth');
  });

  it('networkpolicy: ingress only to 8080/8081, egress only to DNS, the API server, RabbitMQ and Redis', () => {
    const objs = render('deploy/overlays/networkpolicy');
    const np = find(objs, 'NetworkPolicy', 'rabbitbatch');
    expect(selects(np.spec.podSelector.matchLabels, find(objs, 'Deployment', 'rabbitbatch').spec.template.metadata.labels)).toBe(true);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    const ports = (rules: Any[]) => rules.flatMap((r) => (r.ports as Any[]).map((p) => `${p.protocol}/${p.port}`)).sort();
    expect(ports(np.spec.ingress)).toEqual(['TCP/8080', 'TCP/8081']);
    expect(ports(np.spec.egress)).toEqual(
      ['UDP/53', 'TCP/53', 'TCP/443', 'TCP/6443', 'TCP/15672', 'TCP/15671', 'TCP/5672', 'TCP/5671', 'TCP/6379'].sort(),
    );
    // Every rule names its ports: no rule opens all ports.
    for (const r of [...np.spec.ingress, ...np.spec.egress] as Any[]) expect(r.ports.length).toBeGreaterThan(0);
  });

  it('prometheus: the ServiceMonitor scrapes the metrics Service', () => {
    const objs = render('deploy/overlays/prometheus');
    const sm = find(objs, 'ServiceMonitor', 'rabbitbatch');
    const svc = find(objs, 'Service', 'rabbitbatch-metrics');
    expect(selects(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    expect(sm.spec.endpoints.map((e: Any) => e.port)).toEqual(svc.spec.ports.map((p: Any) => p.name));
    expect(sm.spec.endpoints[0].path).toBe('/metrics');
  });
});

// ---- metrics: dashboard and alerts -------------------------------------------------------------

const exported = read('deploy/metrics.txt').split('\n').filter((l) => l.trim() !== '');
const PROMQL_WORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan',
  'sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group',
]);
/** Series Prometheus makes itself for every target (not exported by the operator). */
const SYNTHETIC = new Set(['up']);

/** Metric names in a PromQL (or Grafana label_values) expression. */
function metricNames(expr: string): string[] {
  let e = expr
    .replace(/label_values\(\s*([^,()]*(?:\{[^}]*\})?)\s*,\s*\w+\s*\)/g, ' $1 ') // Grafana: label_values(metric{...}, label)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\$\{?\w+\}?/g, ' ') // dashboard variables
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping labels
  e = e.replace(/\b[a-zA-Z_:][\w:]*\s*\(/g, ' ('); // function calls
  const names = e.match(/\b[a-zA-Z_:][\w:]*\b/g) ?? [];
  return names.filter((n) => !PROMQL_WORDS.has(n.toLowerCase()) && !/^\d/.test(n) && !/^(?:e\d+)$/i.test(n));
}

function isExported(name: string): boolean {
  if (exported.includes(name) || SYNTHETIC.has(name)) return true;
  const base = name.replace(/_(?:bucket|sum|count)$/, '');
  return base !== name && exported.includes(base);
}

function dashboardExpressions(): string[] {
  const dash = JSON.parse(read('deploy/grafana/rabbitbatch.json')) as Any;
  const exprs: string[] = [];
  const walk = (panels: Any[]) => {
    for (const p of panels) {
      for (const t of (p.targets ?? []) as Any[]) exprs.push(t.expr as string);
      walk(p.panels ?? []);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating.list as Any[]) if (v.type === 'query') exprs.push(typeof v.query === 'string' ? v.query : v.query.query);
  return exprs;
}

function ruleExpressions(): { name: string; expr: string }[] {
  const rule = find(render('deploy/overlays/prometheus'), 'PrometheusRule', 'rabbitbatch');
  return (rule.spec.groups as Any[]).flatMap((g) => (g.rules as Any[]).map((r) => ({ name: (r.alert ?? r.record) as string, expr: r.expr as string })));
}

describe('metrics', () => {
  it('deploy/metrics.txt lists valid, unique metric names', () => {
    expect(exported.length).toBeGreaterThan(30);
    expect(new Set(exported).size).toBe(exported.length);
    for (const n of exported) expect(n).toMatch(/^[a-z_][a-z0-9_]*$/);
  });

  it('the PromQL identifier parser finds metrics and skips functions, keywords, labels and variables', () => {
    expect(
      metricNames('histogram_quantile(0.95, sum by (le, pod) (rate(a_bucket{job=~"$job", x="y z"}[$__rate_interval]))) / on (pod) group_left b > 2 unless c offset 5m'),
    ).toEqual(['a_bucket', 'b', 'c']);
    expect(metricNames('label_values(controller_runtime_reconcile_total{job=~"$job"}, namespace)')).toEqual(['controller_runtime_reconcile_total']);
    expect(metricNames('absent(up{job="x"} == 1)')).toEqual(['up']);
  });

  it('the Grafana dashboard uses only exported metrics and shows every operator metric', () => {
    const exprs = dashboardExpressions();
    expect(exprs.length).toBeGreaterThan(30);
    const used = new Set<string>();
    for (const expr of exprs) {
      const names = metricNames(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const n of names) {
        expect(isExported(n), `${n} in ${expr}`).toBe(true);
        used.add(n.replace(/_(?:bucket|sum|count)$/, ''));
      }
    }
    const operatorMetrics = exported.filter((n) => /^(controller_runtime|workqueue|leader_election|rabbitbatch)_/.test(n));
    expect(operatorMetrics.filter((n) => !used.has(n))).toEqual([]);
  });

  it('the dashboard layout: unique panel ids, panels within 24 columns, none overlapping', () => {
    const dash = JSON.parse(read('deploy/grafana/rabbitbatch.json')) as Any;
    const panels = dash.panels as Any[];
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
      if (p.type !== 'row') expect(p.title && p.targets.length > 0, p.title).toBeTruthy();
    }
  });

  it('the dashboard takes its data source from the ${DS_PROMETHEUS} variable', () => {
    const text = read('deploy/grafana/rabbitbatch.json');
    const dash = JSON.parse(text) as Any;
    expect(dash.templating.list[0]).toMatchObject({ name: 'DS_PROMETHEUS', type: 'datasource', query: 'prometheus' });
    const sources = [...text.matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(sources.filter((s) => s !== dash.uid && s !== '-- Grafana --'))).toEqual(new Set(['${DS_PROMETHEUS}']));
  });

  it('the PrometheusRule alerts use only exported metrics and cover what the issue asks', () => {
    const rules = ruleExpressions();
    for (const { name, expr } of rules) {
      const names = metricNames(expr);
      expect(names.length, name).toBeGreaterThan(0);
      for (const n of names) expect(isExported(n), `${n} in ${name}`).toBe(true);
      expect(expr, `${name} selects the operator's job`).toContain('job="rabbitbatch-metrics"');
    }
    const byMetric = (m: string) => rules.filter((r) => metricNames(r.expr).includes(m)).map((r) => r.name);
    expect(byMetric('controller_runtime_reconcile_errors_total')).toContain('RabbitbatchReconcileErrors');
    expect(byMetric('rabbitbatch_amqp_pool_exhausted_total')).toContain('RabbitbatchAMQPPoolExhausted');
    expect(byMetric('rabbitbatch_cache_hit_ratio')).toContain('RabbitbatchCacheHitRateLow');
    expect(byMetric('rabbitbatch_drift_repairs_total')).toContain('RabbitbatchDriftRepairsSpiking');
    expect(byMetric('up')).toContain('RabbitbatchOperatorDown');
    expect(byMetric('workqueue_depth')).toContain('RabbitbatchWorkQueueDepthHigh');
    expect(rules.find((r) => r.name === 'RabbitbatchCacheHitRateLow')?.expr).toContain('< 0.8');
  });

  describe('promtool', () => {
    const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-rules-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('checks the rules and runs prometheusrule.test.yaml with promtool, and checks the rule structure', () => {
      const rule = find(render('deploy/overlays/prometheus'), 'PrometheusRule', 'rabbitbatch');
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
      copyFileSync(join(ROOT, 'deploy/components/prometheus/prometheusrule.test.yaml'), join(dir, 'prometheusrule.test.yaml'));
      expect(promtool.status, 'promtool is missing: run `bash hack/test-tools.sh` (or apt-get install prometheus)').toBe(0);
      const check = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
      expect(check.status, check.stdout + check.stderr).toBe(0);
      expect(check.stdout).toMatch(/SUCCESS: \d+ rules found/);
      const unit = spawnSync('promtool', ['test', 'rules', 'prometheusrule.test.yaml'], { cwd: dir, encoding: 'utf8' });
      expect(unit.status, unit.stdout + unit.stderr).toBe(0);
      expect(unit.stdout).toContain('SUCCESS');
      for (const g of rule.spec.groups as Any[]) {
        for (const r of g.rules as Any[]) {
          expect(r.alert).toMatch(/^Rabbitbatch[A-Z]\w+$/);
          expect(['critical', 'warning', 'info']).toContain(r.labels.severity);
          expect(r.annotations.summary && r.annotations.description).toBeTruthy();
          if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
          let depth = 0;
          for (const ch of r.expr as string) {
            depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
            expect(depth).toBeGreaterThanOrEqual(0);
          }
          expect(depth, r.alert).toBe(0);
        }
      }
      // Every alert has a test case in prometheusrule.test.yaml.
      const tests = readFileSync(join(dir, 'prometheusrule.test.yaml'), 'utf8');
      for (const { name } of ruleExpressions()) expect(tests).toContain(`alertname: ${name}`);
    });
  });
});

// ---- Argo CD health check ----------------------------------------------------------------------

describe('Argo CD health check', () => {
  const script = read('deploy/argocd/health-rabbitqueuebatch.lua');
  const lua = ['lua5.1', 'lua'].find((bin) => spawnSync(bin, ['-v'], { encoding: 'utf8' }).status === 0);

  /** A JavaScript value as a Lua table constructor (what Argo CD hands the script as `obj`). */
  const toLua = (v: unknown): string => {
    if (v === null || v === undefined) return 'nil';
    if (typeof v === 'string') return JSON.stringify(v);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (Array.isArray(v)) return `{${v.map(toLua).join(', ')}}`;
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `[${JSON.stringify(k)}] = ${toLua(x)}`)
      .join(', ')}}`;
  };

  const health = (obj: unknown): { status: string; message: string } => {
    if (!lua) throw new Error('no lua interpreter');
    const dir = mkdtempSync(join(tmpdir(), 'rabbitbatch-lua-'));
    try {
      writeFileSync(join(dir, 'health.lua'), script);
      writeFileSync(
        join(dir, 'run.lua'),
        `obj = ${toLua(obj)}\nlocal hs = dofile(${JSON.stringify(join(dir, 'health.lua'))})\nio.write(hs.status, "\\n", hs.message)\n`,
      );
      const out = execFileSync(lua, [join(dir, 'run.lua')], { encoding: 'utf8' });
      const [status = '', ...rest] = out.split('\n');
      return { status, message: rest.join('\n') };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const now = '2025-01-01T00:00:00Z';
  const batch = (generation: number, status?: unknown) => ({
    apiVersion: 'rabbitbatch.io/v1alpha1',
    kind: 'RabbitQueueBatch',
    metadata: { name: 'orders', namespace: 'shop', generation },
    spec: { vhost: '/' },
    ...(status ? { status } : {}),
  });
  const succeeded = buildStatus({
    previous: undefined,
    generation: 2,
    vhost: '/',
    owned: new Set(['queue/orders']),
    result: { outcome: 'Succeeded', items: [{ resource: 'queue/orders', status: 'Ready' }], created: ['queue/orders'], deleted: [], adopted: [], unsure: [], brokerUnavailable: false, operations: 1 },
    now,
  });
  const rolledBack = buildStatus({
    previous: undefined,
    generation: 2,
    vhost: '/',
    owned: new Set(),
    result: {
      outcome: 'RolledBack',
      items: [{ resource: 'queue/orders', status: 'Failed', error: 'PRECONDITION_FAILED' }],
      created: [],
      deleted: [],
      adopted: [],
      unsure: [],
      failure: { resource: 'queue/orders', error: 'PRECONDITION_FAILED', kind: 'refused' },
      brokerUnavailable: false,
      operations: 2,
    },
    now,
  });

  it('maps the statuses the operator writes to Argo CD health', () => {
    expect(lua, 'a Lua 5.1 interpreter (apt-get install lua5.1), as in Argo CD').toBeDefined();
    expect(health(batch(1))).toEqual({ status: 'Progressing', message: 'Waiting for the rabbitbatch operator to reconcile the batch' });
    expect(health(batch(2, succeeded))).toEqual({ status: 'Healthy', message: '1 items match RabbitMQ' });
    // A new spec the operator has not reconciled yet.
    expect(health(batch(3, succeeded))).toEqual({ status: 'Progressing', message: 'Waiting for the rabbitbatch operator to apply generation 3' });
    const degraded = health(batch(2, rolledBack));
    expect(degraded.status).toBe('Degraded');
    expect(degraded.message).toContain('queue/orders failed (PRECONDITION_FAILED)');
    expect(health(batch(2, failedStatus(undefined, 2, 'SecretNotFound', 'secret shop/rmq not found', now)))).toEqual({
      status: 'Degraded',
      message: 'secret shop/rmq not found',
    });
    // A stale Degraded (older generation) is Progressing: the operator has a newer spec to apply.
    expect(health(batch(3, rolledBack)).status).toBe('Progressing');
    // Ready not True and not Degraded: still progressing, with Ready's message.
    const applying = { observedGeneration: 2, conditions: [{ type: 'Ready', status: 'False', reason: 'Applying', message: 'applying 3 items', lastTransitionTime: now }] };
    expect(health(batch(2, applying))).toEqual({ status: 'Progressing', message: 'applying 3 items' });
    expect(health(batch(2, { observedGeneration: 2 }))).toEqual({ status: 'Progressing', message: 'Waiting for the Ready condition' });
  });

  it('the README documents the argocd-cm entry with the script verbatim', () => {
    const readme = read('deploy/argocd/README.md');
    const block = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const cm = parseYaml(block) as Any;
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.name).toBe('argocd-cm');
    expect(cm.data['resource.customizations.health.rabbitbatch.io_RabbitQueueBatch']).toBe(script);
  });
});
