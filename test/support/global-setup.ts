/**
 * vitest globalSetup for the integration project: brings the local control plane, RabbitMQ and
 * Redis up once per run (or reuses them: hack/env-up.sh is idempotent), installs crds/, and hands
 * the kubeconfig to the tests. With RABBITBATCH_E2E=1 the cluster in $KUBECONFIG is used instead.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import type { TestProject } from 'vitest/node';
import { parseAllDocuments } from 'yaml';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
    rabbitmqUrl: string;
  }
}

const ROOT = new URL('../../', import.meta.url).pathname;

export default async function setup(project: TestProject): Promise<(() => void) | undefined> {
  const e2e = process.env.RABBITBATCH_E2E === '1';
  try {
    execFileSync('bash', [`${ROOT}hack/env-up.sh`], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    throw new Error('the local control plane, RabbitMQ or Redis could not be started: run `make env-up` and read its message');
  }
  const kubeconfigPath = e2e ? (process.env.KUBECONFIG ?? `${process.env.HOME}/.kube/config`) : `${ROOT}.local/kubeconfig`;
  if (!existsSync(kubeconfigPath)) throw new Error(`no kubeconfig at ${kubeconfigPath}: run \`make env-up\` (or set KUBECONFIG for make e2e)`);
  await installCrds(kubeconfigPath);
  project.provide('kubeconfigPath', kubeconfigPath);
  project.provide('rabbitmqUrl', process.env.RABBITMQ_URL ?? 'http://127.0.0.1:15672');
  return e2e ? pauseInstalledOperator(kubeconfigPath) : undefined;
}

/**
 * An operator installed from deploy/ watches every namespace, so it would reconcile the tests'
 * batches beside the test's own operator (two writers: drift "repaired" by the wrong one,
 * rollbacks undone). It is scaled to zero for the run and scaled back afterwards.
 */
function pauseInstalledOperator(kubeconfigPath: string): (() => void) | undefined {
  const kubectl = (...args: string[]) => execFileSync('kubectl', ['--kubeconfig', kubeconfigPath, '-n', 'rabbitbatch-system', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  let replicas: string;
  try {
    replicas = kubectl('get', 'deployment', 'rabbitbatch', '-o', 'jsonpath={.spec.replicas}').trim();
  } catch {
    return undefined; // not installed
  }
  if (replicas === '' || replicas === '0') return undefined;
  console.log(`e2e: scaling deployment/rabbitbatch in rabbitbatch-system from ${replicas} to 0 for the run (it watches every namespace); it is scaled back afterwards`);
  kubectl('scale', 'deployment', 'rabbitbatch', '--replicas=0');
  kubectl('wait', '--for=delete', 'pod', '-l', 'app.kubernetes.io/name=rabbitbatch,app.kubernetes.io/component=operator', '--timeout=120s');
  return () => {
    kubectl('scale', 'deployment', 'rabbitbatch', `--replicas=${replicas}`);
  };
}

/**
 * Installs crds/ into the cluster of `kubeconfigPath` and waits until each is Established (also
 * used for private control planes). Server-side apply with the raw JSON: client-node's typed
 * serializer drops the CRD's `x-kubernetes-*` fields (list types, CEL rules), so it must not
 * touch the object.
 */
export async function installCrds(kubeconfigPath: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error(`${kubeconfigPath} names no cluster`);
  const tls: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  const headers: Record<string, string> = { 'content-type': 'application/apply-patch+yaml' };
  const auth = (tls.headers as Record<string, string> | undefined)?.Authorization;
  if (auth) headers.authorization = auth;
  const dispatcher = new Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.rejectUnauthorized } as never });
  for (const file of readdirSync(`${ROOT}crds`).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(`${ROOT}crds/${file}`, 'utf8'))) {
      const crd = doc.toJSON() as { metadata: { name: string } };
      const path = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=rabbitbatch-tests&force=true`;
      const res = await request(`${server}${path}`, { method: 'PATCH', headers, body: JSON.stringify(crd), dispatcher });
      const text = await res.body.text();
      if (res.statusCode >= 300) throw new Error(`installing ${file} failed: ${res.statusCode} ${text}`);
      for (let i = 0; ; i++) {
        const got = await fetchJson(`${server}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, headers, dispatcher);
        const conditions = (got as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
        if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (i > 100) throw new Error(`CRD ${crd.metadata.name} was not Established within 20 s`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  await dispatcher.close();
}

async function fetchJson(url: string, headers: Record<string, string>, dispatcher: Agent): Promise<unknown> {
  const res = await request(url, { headers: { authorization: headers.authorization ?? '' }, dispatcher });
  return res.body.json();
}
