#!/usr/bin/env node
// The `rabbitbatch` command: runs the compiled CLI from dist/ (npm run build, the container
// image), or the TypeScript sources through tsx in a development checkout.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
}
