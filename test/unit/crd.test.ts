import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readdirSync, readFileSync } from 'node:fs';
import { CRD_FILE, CRD_KUSTOMIZE_FILE, renderCrdYaml } from '../../src/api/crd.js';

describe('crds/', () => {
  it('is generated from the zod schema (run `make crd` when this fails)', () => {
    expect(readFileSync(CRD_FILE, 'utf8')).toBe(renderCrdYaml());
    expect(readFileSync(CRD_KUSTOMIZE_FILE, 'utf8')).toBe(renderCrdYaml());
  });

  it('holds plain manifests only, so `kubectl apply -f crds/` works (no kustomization.yaml)', () => {
    expect(readdirSync('crds')).toEqual([CRD_FILE.slice('crds/'.length)]);
  });

  it('is a structural schema: no additionalProperties:false and no typed anyOf', () => {
    const text = JSON.stringify(parse(readFileSync(CRD_FILE, 'utf8')));
    expect(text).not.toContain('"additionalProperties":false');
    expect(text).not.toContain('anyOf');
  });
});
