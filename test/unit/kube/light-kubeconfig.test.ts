/**
 * The operator's light kubeconfig: what it reads from a kubeconfig file, what it leaves to
 * client-node, and that the operator's modules never load client-node at run time (its
 * generated clients cost ~80 MB of RSS). No server is contacted here; the real API server is
 * used by test/integration/kube-connection-reuse.test.ts and every operator test.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { prepareRequest } from '../../../src/kube/api-request.js';
import { fromKubeconfig, LightKubeConfig } from '../../../src/kube/light-kubeconfig.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const doc = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: 'https://127.0.0.1:6443' }) => ({
  'current-context': 'c',
  contexts: [{ name: 'c', context: { cluster: 'k', user: 'u', namespace: 'ns' } }],
  clusters: [{ name: 'k', cluster }],
  users: [{ name: 'u', user }],
});

afterEach(() => vi.useRealTimers());

describe('fromKubeconfig', () => {
  it('reads the current context: server, CA and certificate paths relative to the file, namespace', () => {
    const kc = fromKubeconfig(doc({ 'client-certificate': 'pki/admin.crt', 'client-key-data': 'a2V5' }, { server: 'https://h:6443/', 'certificate-authority': '/abs/ca.crt', 'tls-server-name': 'kubernetes' }), '/home/me/.kube/config');
    expect(kc).toBeInstanceOf(LightKubeConfig);
    const light = kc as LightKubeConfig;
    expect(light.getCurrentCluster()).toEqual({ server: 'https://h:6443' });
    expect(light.cluster).toEqual({ server: 'https://h:6443', ca: { file: '/abs/ca.crt' }, tlsServerName: 'kubernetes' });
    expect(light.user).toEqual({ cert: { file: '/home/me/.kube/pki/admin.crt' }, key: { data: 'a2V5' } });
    expect(light.namespace).toBe('ns');
  });

  it('leaves exec plugins, auth providers and proxies to client-node, naming what it does not support', () => {
    expect(fromKubeconfig(doc({ exec: { command: 'aws' } }), '/k')).toEqual({ unsupported: 'user.exec' });
    expect(fromKubeconfig(doc({ 'auth-provider': { name: 'oidc' } }), '/k')).toEqual({ unsupported: 'user.auth-provider' });
    expect(fromKubeconfig(doc({ token: 't' }, { server: 'https://h', 'proxy-url': 'http://p:3128' }), '/k')).toEqual({ unsupported: 'cluster.proxy-url' });
    expect(fromKubeconfig({ 'current-context': 'x' }, '/k')).toEqual({ unsupported: 'no current context' });
  });

  it('refuses plain http without insecure-skip-tls-verify, as client-node does', () => {
    expect(() => fromKubeconfig(doc({ token: 't' }, { server: 'http://h:8080' }), '/k')).toThrow(/HTTP protocol is not allowed/);
  });
});

describe('LightKubeConfig requests', () => {
  it('sends the bearer token, basic auth and impersonation headers', async () => {
    const token = await prepareRequest(new LightKubeConfig({ server: 'https://h' }, { token: 'abc', impersonate: 'jane' }), '/api');
    expect(token.headers).toEqual({ Authorization: 'Bearer abc', 'Impersonate-User': 'jane' });
    expect(token.url.toString()).toBe('https://h/api');
    const basic = await prepareRequest(new LightKubeConfig({ server: 'https://h' }, { username: 'u', password: 'p' }), '/api');
    expect(basic.headers).toEqual({ Authorization: `Basic ${Buffer.from('u:p').toString('base64')}` });
  });

  it('re-reads a rotated token file after a minute and keeps one pool', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'rb-light-')), 'token');
    writeFileSync(tokenFile, 'first\n');
    const kc = new LightKubeConfig({ server: 'https://h', ca: { data: Buffer.from('ca').toString('base64') } }, { tokenFile });
    const a = await prepareRequest(kc, '/api');
    writeFileSync(tokenFile, 'second');
    expect((await prepareRequest(kc, '/api')).headers.Authorization).toBe('Bearer first');
    vi.setSystemTime(Date.now() + 61_000);
    const b = await prepareRequest(kc, '/api');
    expect(b.headers.Authorization).toBe('Bearer second');
    expect(b.dispatcher).toBe(a.dispatcher);
    await kc.close();
  });

  it('builds a new pool when the CA file changes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const caFile = join(mkdtempSync(join(tmpdir(), 'rb-light-')), 'ca.crt');
    writeFileSync(caFile, 'one');
    const kc = new LightKubeConfig({ server: 'https://h', ca: { file: caFile } }, { token: 't' });
    const a = await prepareRequest(kc, '/api');
    writeFileSync(caFile, 'two');
    vi.setSystemTime(Date.now() + 61_000);
    const b = await prepareRequest(kc, '/api');
    expect(b.dispatcher).not.toBe(a.dispatcher);
    await kc.close();
  });
});

describe('the operator process', () => {
  it('does not load @kubernetes/client-node (only its types)', () => {
    // A resolve hook records every module the operator's entry modules pull in.
    const hook = `import { registerHooks } from 'node:module'; const seen = []; registerHooks({ resolve(s, c, n) { const r = n(s, c); seen.push(r.url); return r; } });
      await import('./src/operator/manager.ts'); await import('./src/cli/operator-command.ts');
      console.log(JSON.stringify(seen.filter((u) => u.includes('/node_modules/'))));`;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', hook], { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, res.stderr).toBe(0);
    const modules = JSON.parse(res.stdout.trim().split('\n').pop()!) as string[];
    expect(modules.some((u) => u.includes('/node_modules/undici/'))).toBe(true); // the hook sees packages
    expect(modules.filter((u) => u.includes('@kubernetes/client-node'))).toEqual([]);
    expect(modules.filter((u) => u.includes('/node_modules/redis/') || u.includes('/node_modules/@redis/'))).toEqual([]);
  });
});
