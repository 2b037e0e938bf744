/** The README's Performance table is what the committed reference run says (bench/readme-table.ts). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderReadme } from '../../bench/readme-table.js';

describe('README Performance table', () => {
  it('is generated from bench/reference/: run `node --import tsx bench/readme-table.ts` after a new reference run', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(renderReadme(readme) === readme, 'README.md differs from what bench/reference/ generates').toBe(true);
  });
});
