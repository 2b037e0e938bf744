/**
 * PooledKubeConfig shares the dispatcher only: authentication headers are still computed per
 * request (a rotated token file is picked up), and a changed CA gives a new pool. No server is
 * contacted: this checks what client-node's request preparation produces.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PooledKubeConfig } from '../../../src/kube/api-server-pool.js';

const SERVER = 'https://127.0.0.1:6443';

function tokenFileConfig(tokenFile: string, ca: string): PooledKubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromClusterAndUser(
    { name: 'c', server: SERVER, skipTLSVerify: false, caData: Buffer.from(ca).toString('base64') },
    { name: 'u', authProvider: { name: 'tokenFile', config: { tokenFile } } },
  );
  return kc;
}

async function prepared(kc: PooledKubeConfig): Promise<RequestContext> {
  const ctx = new RequestContext(`${SERVER}/api/v1/namespaces`, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  return ctx;
}

afterEach(() => vi.useRealTimers());

describe('PooledKubeConfig', () => {
  it('re-reads a rotated token file while keeping the same pool', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'rb-token-')), 'token');
    writeFileSync(tokenFile, 'first');
    const kc = tokenFileConfig(tokenFile, 'ca-one');
    const a = await prepared(kc);
    writeFileSync(tokenFile, 'second');
    // client-node re-reads the token file when it is older than 60 s (like client-go).
    vi.setSystemTime(Date.now() + 61_000);
    const b = await prepared(kc);
    expect(a.getHeaders().Authorization).toBe('Bearer first');
    expect(b.getHeaders().Authorization).toBe('Bearer second');
    expect(b.getDispatcher()).toBeDefined();
    expect(b.getDispatcher()).toBe(a.getDispatcher());
    await kc.close();
  });

  it('builds a new pool when the CA changes', async () => {
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'rb-token-')), 'token');
    writeFileSync(tokenFile, 't');
    const kc = tokenFileConfig(tokenFile, 'ca-one');
    const a = (await prepared(kc)).getDispatcher();
    kc.loadFromClusterAndUser(
      { name: 'c', server: SERVER, skipTLSVerify: false, caData: Buffer.from('ca-two').toString('base64') },
      { name: 'u', authProvider: { name: 'tokenFile', config: { tokenFile } } },
    );
    const b = (await prepared(kc)).getDispatcher();
    expect(b).toBeDefined();
    expect(b).not.toBe(a);
    await kc.close();
  });
});
