/**
 * Builds the RabbitQueueBatch CustomResourceDefinition from the zod schemas in schema.ts.
 * `npm run gen:crd` writes it to crds/; test/unit/crd.test.ts fails when crds/ is stale.
 */
import { z } from 'zod';
import { stringify } from 'yaml';
import { GROUP, KIND, MAX_ITEMS_DEFAULT, PLURAL, VERSION, makeSpecSchema, statusSchema } from './schema.js';
import { toStructural } from './structural.js';

export const CRD_NAME = `${PLURAL}.${GROUP}`;
export const CRD_FILE = `crds/${GROUP}_${PLURAL}.yaml`;
/** The copy Kustomize installs (deploy/crds): a kustomization cannot reach files outside its directory. */
export const CRD_KUSTOMIZE_FILE = `deploy/crds/${GROUP}_${PLURAL}.yaml`;

function openApi(schema: z.ZodType): unknown {
  return toStructural(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }));
}

export function buildCrd(maxItems = MAX_ITEMS_DEFAULT): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { 'app.kubernetes.io/name': 'rabbitbatch' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: 'rabbitqueuebatch', shortNames: ['rqb'], categories: ['rabbitmq'] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          // Deployments' READY 2/3 and cert-manager's reason up front: why a batch is not ready
          // shows without -o wide; the counts and the message with it.
          additionalPrinterColumns: [
            { name: 'Ready', type: 'string', description: 'ready items / all items', jsonPath: '.status.ready' },
            { name: 'Reason', type: 'string', description: 'reason of the Ready condition', jsonPath: '.status.conditions[?(@.type=="Ready")].reason' },
            { name: 'Failed', type: 'integer', priority: 1, jsonPath: '.status.summary.failed' },
            { name: 'Conflicts', type: 'integer', priority: 1, jsonPath: '.status.summary.conflicts' },
            { name: 'Retained', type: 'integer', priority: 1, jsonPath: '.status.summary.retained' },
            { name: 'Message', type: 'string', priority: 1, jsonPath: '.status.conditions[?(@.type=="Ready")].message' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A batch of RabbitMQ exchanges, queues and bindings applied together.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openApi(makeSpecSchema(maxItems)),
                status: openApi(statusSchema),
              },
            },
          },
        },
      ],
    },
  };
}

export function renderCrdYaml(maxItems = MAX_ITEMS_DEFAULT): string {
  return `# Generated from src/api/schema.ts by \`npm run gen:crd\`. Do not edit.\n${stringify(buildCrd(maxItems), { lineWidth: 0 })}`;
}
