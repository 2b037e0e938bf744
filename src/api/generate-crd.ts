/** Writes crds/ (and its copy in deploy/crds) from the zod schema: `npm run gen:crd` (an argument N changes the item limit). */
import { writeFileSync } from 'node:fs';
import { CRD_FILE, CRD_KUSTOMIZE_FILE, renderCrdYaml } from './crd.js';
import { MAX_ITEMS_DEFAULT } from './schema.js';

const maxItems = Number(process.argv[2] ?? MAX_ITEMS_DEFAULT);
for (const file of [CRD_FILE, CRD_KUSTOMIZE_FILE]) writeFileSync(file, renderCrdYaml(maxItems));
console.log(`wrote ${CRD_FILE} and ${CRD_KUSTOMIZE_FILE} (max ${maxItems} items per batch)`);
