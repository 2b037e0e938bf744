/**
 * The CRD schema (OpenAPI + CEL, on the real API server) and the zod schema agree: generated
 * specs accepted by one are accepted by the other, and invalid ones of the kinds the API server
 * can check are refused by both, with the field path. (Binding cycles, argument value types and
 * queue destinations outside the batch are checked by zod only: see README.)
 */
import { CustomObjectsApi } from '@kubernetes/client-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateSpec } from '../../src/api/validate.js';
import { batchApi, createTestNamespace, loadKubeConfig } from '../support/kube.js';
import { invalidSpec, validSpec } from '../support/spec-arbitraries.js';

let ns: { name: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  ns = await createTestNamespace('agree');
});
afterAll(() => ns.cleanup());

async function apiServerAccepts(spec: unknown): Promise<{ ok: boolean; message: string }> {
  const api = loadKubeConfig().makeApiClient(CustomObjectsApi);
  const body = { apiVersion: 'rabbitbatch.io/v1alpha1', kind: 'RabbitQueueBatch', metadata: { generateName: 'agree-' }, spec };
  return api.createNamespacedCustomObject({ ...batchApi, namespace: ns.name, body, dryRun: 'All', fieldValidation: 'Strict' }).then(
    () => ({ ok: true, message: '' }),
    (err: { body?: string }) => ({ ok: false, message: String(err.body) }),
  );
}

describe('zod and the CRD schema agree', () => {
  it('on 100 valid generated specs', async () => {
    for (const spec of fc.sample(validSpec, { numRuns: 100, seed: 42 })) {
      expect(validateSpec(spec).ok).toBe(true);
      const res = await apiServerAccepts(spec);
      expect(res.ok, res.message).toBe(true);
    }
  });

  it('on 100 invalid generated specs the API server can check', async () => {
    const samples = fc.sample(invalidSpec.filter(({ mutation }) => mutation.crd), { numRuns: 100, seed: 7 });
    for (const { spec, mutation } of samples) {
      expect(validateSpec(spec).ok, mutation.what).toBe(false);
      const res = await apiServerAccepts(spec);
      expect(res.ok, `API server accepted: ${mutation.what}`).toBe(false);
      expect(res.message, mutation.what).toMatch(/spec\./);
    }
  });
});
