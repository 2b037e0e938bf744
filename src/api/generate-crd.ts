/** Writes crds/ from the zod schema: `npm run gen:crd` (MAX_ITEMS=N to change the item limit). */
import { writeFileSync } from 'node:fs';
import { CRD_FILE, renderCrdYaml } from './crd.js';
import { MAX_ITEMS_DEFAULT } from './schema.js';

const maxItems = Number(process.argv[2] ?? MAX_ITEMS_DEFAULT);
writeFileSync(CRD_FILE, renderCrdYaml(maxItems));
console.log(`wrote ${CRD_FILE} (max ${maxItems} items per batch)`);
