/** `make demo` prints the control plane's version from the API server itself (hack/server-version.sh), not kubectl's or kustomize's. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { kubeconfigPath, loadKubeConfig } from '../support/kube.js';
import { VersionApi } from '@kubernetes/client-node';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('hack/server-version.sh', () => {
  it("prints the API server's gitVersion, and the demo uses it", async () => {
    const printed = execFileSync('bash', ['hack/server-version.sh'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfigPath() } }).trim();
    const server = await loadKubeConfig().makeApiClient(VersionApi).getCode();
    expect(printed).toBe(server.gitVersion);
    expect(readFileSync(`${ROOT}hack/demo.sh`, 'utf8')).toContain('hack/server-version.sh');
  });
});
