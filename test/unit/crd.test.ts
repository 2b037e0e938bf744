import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRD_FILE, renderCrdYaml } from '../../src/api/crd.js';

describe('crds/', () => {
  it('is generated from the zod schema (run `make crd` when this fails)', () => {
    expect(readFileSync(CRD_FILE, 'utf8')).toBe(renderCrdYaml());
  });

  it('is a structural schema: no additionalProperties:false and no typed anyOf', () => {
    const text = JSON.stringify(parse(readFileSync(CRD_FILE, 'utf8')));
    expect(text).not.toContain('"additionalProperties":false');
    expect(text).not.toContain('anyOf');
  });
});
