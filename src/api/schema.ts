/**
 * The RabbitQueueBatch API: the single source of truth.
 *
 * The operator and the CLI validate with these zod schemas, and `crds/` is generated from them
 * (`npm run gen:crd`; a unit test fails when `crds/` is stale). Rules the API server can check
 * itself are attached as CEL `x-kubernetes-validations` through `.meta()`, so `kubectl apply`
 * refuses a bad batch before the operator sees it; rules CEL cannot express cheaply (cycles of
 * exchange-to-exchange bindings) live in `refinements.ts` and run in the operator and the CLI.
 */
import { z } from 'zod';
import { MAX_POLICIES, operatorPolicySchema, policySchema } from './policy-schema.js';
import { UNSTORED } from './unstored-default.js';

export const GROUP = 'rabbitbatch.io';
export const VERSION = 'v1alpha1';
export const KIND = 'RabbitQueueBatch';
export const PLURAL = 'rabbitqueuebatches';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Items (exchanges + queues + bindings) one resource may hold. Defaults to 1,000. */
export const MAX_ITEMS_DEFAULT = 1000;
/** Serialized size of one item's `arguments`; keeps CEL cost estimates and etcd objects small. */
export const MAX_ARGUMENTS = 32;
/** Exchanges one resource may hold (a CEL cost bound, see makeSpecSchema). */
export const MAX_EXCHANGES = 80;

// RabbitMQ accepts any UTF-8 up to 255 bytes; we accept a portable subset so names survive
// URLs, label values, metrics and shells. `amq.` is reserved by the broker for its own objects.
const NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9._:@~/+-]*$';
const objectName = z
  .string()
  .min(1)
  .max(255)
  .regex(new RegExp(NAME_PATTERN), 'may contain only letters, digits and . _ : @ ~ / + - (and must not start with . or -)');
const declarableName = objectName.refine((n) => !n.startsWith('amq.'), 'names starting with "amq." are reserved by RabbitMQ');

/** Arguments are free-form (`x-message-ttl`, `x-queue-type`, ...): values are scalars. */
const argumentsSchema = z
  .record(z.string().min(1).max(255), z.union([z.string().max(4096), z.number(), z.boolean()]))
  .refine((a) => Object.keys(a).length <= MAX_ARGUMENTS, `at most ${MAX_ARGUMENTS} arguments`)
  .default({})
  .meta({ 'x-kubernetes-preserve-unknown-fields': true, maxProperties: MAX_ARGUMENTS, ...UNSTORED });

export const exchangeSchema = z
  .object({
    name: objectName,
    type: z.enum(['direct', 'fanout', 'topic', 'headers']).default('direct').meta(UNSTORED),
    durable: z.boolean().default(true).meta(UNSTORED),
    autoDelete: z.boolean().default(false).meta(UNSTORED),
    internal: z.boolean().default(false).meta(UNSTORED),
    arguments: argumentsSchema,
    /** Exists already and is managed elsewhere: verified, bound to, never created nor deleted. */
    external: z.boolean().default(false).meta(UNSTORED),
  })
  .strict()
  .meta({
    // Item defaults are not stored (UNSTORED): the rules read an omitted field as its default.
    'x-kubernetes-validations': [
      { rule: "(has(self.external) && self.external) || !self.name.startsWith('amq.')", message: 'names starting with "amq." are reserved by RabbitMQ; mark the exchange external to bind to it', fieldPath: '.name' },
    ],
  });

export const queueSchema = z
  .object({
    name: declarableName,
    type: z.enum(['classic', 'quorum', 'stream']).default('classic').meta(UNSTORED),
    durable: z.boolean().default(true).meta(UNSTORED),
    autoDelete: z.boolean().default(false).meta(UNSTORED),
    arguments: argumentsSchema,
    /** Exists already and is managed elsewhere: verified, bound to, never created nor deleted. */
    external: z.boolean().default(false).meta(UNSTORED),
  })
  .strict()
  .refine((q) => q.type === 'classic' || (q.durable && !q.autoDelete), {
    message: 'quorum and stream queues must be durable and not autoDelete',
    path: ['durable'],
  })
  .refine((q) => !('x-queue-type' in q.arguments) || q.arguments['x-queue-type'] === q.type, {
    message: 'arguments.x-queue-type must match type (set type instead)',
    path: ['arguments', 'x-queue-type'],
  })
  .meta({
    'x-kubernetes-validations': [
      {
        rule: "!has(self.type) || self.type == 'classic' || ((!has(self.durable) || self.durable) && !(has(self.autoDelete) && self.autoDelete))",
        message: 'quorum and stream queues must be durable and not autoDelete',
        fieldPath: '.durable',
      },
      { rule: "!self.name.startsWith('amq.')", message: 'names starting with "amq." are reserved by RabbitMQ', fieldPath: '.name' },
    ],
  });

export const bindingSchema = z
  .object({
    /** An exchange of this batch or an `amq.*` one. The default exchange (`""`) binds every queue
     * implicitly and RabbitMQ refuses explicit bindings on it, so it is not accepted here. */
    source: objectName,
    destination: objectName,
    destinationType: z.enum(['queue', 'exchange']).default('queue'),
    routingKey: z.string().max(255).default(''),
    arguments: argumentsSchema,
  })
  .strict();

export const deletionPolicySchema = z.enum(['Delete', 'Retain']);
export const modeSchema = z.enum(['AllOrNothing', 'BestEffort']);
export const onConflictSchema = z.enum(['Report', 'RecreateIfEmpty']);
/** What to do with an object that exists already, not made by this resource, with exactly the
 * declared settings: leave it unowned (`Never`) or take it over (`IfIdentical`), so pruning and
 * `deletionPolicy: Delete` apply to it as to what the resource created. */
export const adoptSchema = z.enum(['Never', 'IfIdentical']);
/** A missing `spec.vhost`: reported (`MustExist`) or created by the operator (`Create`, which
 * needs the administrator tag). A vhost is never deleted by rabbitbatch, whatever deletionPolicy says. */
export const vhostPolicySchema = z.enum(['MustExist', 'Create']);

const listMap = (keys: string[]) => ({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': keys });

export function makeSpecSchema(maxItems = MAX_ITEMS_DEFAULT) {
  return z
    .object({
      rabbitmq: z
        .object({
          connectionSecret: z.object({ name: z.string().min(1).max(253) }).strict().optional(),
        })
        .strict()
        .optional(),
      vhost: z.string().min(1).max(255).default('/'),
      vhostPolicy: vhostPolicySchema.default('MustExist'),
      mode: modeSchema.default('AllOrNothing'),
      deletionPolicy: deletionPolicySchema.default('Retain'),
      onConflict: onConflictSchema.default('Report'),
      adopt: adoptSchema.default('Never'),
      // Exchanges are few in practice; the bound keeps the CEL rules below (bindings × exchanges)
      // inside the API server's cost budget. Queue destinations (bindings × queues) would not
      // fit: the operator and the CLI check those (validate.ts).
      exchanges: z.array(exchangeSchema).max(Math.min(maxItems, MAX_EXCHANGES)).default([]).meta(listMap(['name'])),
      queues: z.array(queueSchema).max(maxItems).default([]).meta(listMap(['name'])),
      bindings: z
        .array(bindingSchema)
        .max(maxItems)
        .default([])
        .meta(listMap(['source', 'destination', 'destinationType', 'routingKey'])),
      /** Settings that can change on existing queues and exchanges (RabbitMQ policies). */
      policies: z.array(policySchema).max(MAX_POLICIES).default([]).meta(listMap(['name'])),
      /** Operator policies: limits that win over what policies and queue arguments ask for. */
      operatorPolicies: z.array(operatorPolicySchema).max(MAX_POLICIES).default([]).meta(listMap(['name'])),
    })
    .strict()
    .meta({
      'x-kubernetes-validations': [
        {
          rule: `size(self.exchanges) + size(self.queues) + size(self.bindings) <= ${maxItems}`,
          message: `a batch holds at most ${maxItems} items (exchanges + queues + bindings)`,
        },
        {
          rule: "self.bindings.all(b, b.source.startsWith('amq.') || self.exchanges.exists(e, e.name == b.source))",
          message: 'every binding source must be an amq.* exchange or an exchange listed in spec.exchanges (mark it external if it is managed elsewhere)',
          fieldPath: '.bindings',
        },
        {
          rule: "self.bindings.all(b, b.destinationType != 'exchange' || b.destination.startsWith('amq.') || self.exchanges.exists(e, e.name == b.destination))",
          message: 'every exchange binding destination must be an amq.* exchange or listed in spec.exchanges',
          fieldPath: '.bindings',
        },
      ],
    });
}

export const itemStatusSchema = z.enum(['Ready', 'Pending', 'Failed', 'Conflict', 'Retained']);

export const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().int().optional(),
});

export const statusSchema = z.object({
  observedGeneration: z.number().int().optional(),
  /** `ready/total` items, as Deployments show replicas: the READY column of `kubectl get rqb`. */
  ready: z.string().optional(),
  conditions: z.array(conditionSchema).optional().meta(listMap(['type'])),
  summary: z
    .object({
      total: z.number().int(),
      ready: z.number().int(),
      failed: z.number().int(),
      conflicts: z.number().int(),
      retained: z.number().int().optional(),
      pending: z.number().int().optional(),
    })
    .optional(),
  items: z
    .array(
      z.object({
        resource: z.string(),
        status: itemStatusSchema,
        error: z.string().optional(),
        /** A warning about a Ready item (a policy matching nothing, two policies tied for a queue). */
        message: z.string().optional(),
        /** Queues: the policy RabbitMQ applies to it (its `policy` field). */
        policy: z.string().optional(),
        /** Queues: the operator policy of this batch that applies to it (the highest-priority match). */
        operatorPolicy: z.string().optional(),
      }),
    )
    .optional(),
  /** What this resource created in RabbitMQ: pruning and deletion touch nothing else. */
  applied: z
    .object({
      vhost: z.string(),
      exchanges: z.array(z.string()),
      queues: z.array(z.string()),
      bindings: z.array(z.string()),
      policies: z.array(z.string()).optional(),
      operatorPolicies: z.array(z.string()).optional(),
    })
    .optional(),
  /** How many existing objects this resource has adopted so far (`adopt: IfIdentical`). */
  adopted: z.number().int().optional(),
  /** Write-ahead record: what the reconcile in flight is about to create. A crash between the
   * creates and the final status write leaves these here; the next reconcile adopts those that
   * exist and match, so nothing this resource made is ever orphaned. */
  applying: z.array(z.string()).optional(),
});

export const specSchema = makeSpecSchema();

export type RabbitQueueBatchSpec = z.output<typeof specSchema>;
export type RabbitQueueBatchSpecInput = z.input<typeof specSchema>;
export type ExchangeSpec = z.output<typeof exchangeSchema>;
export type QueueSpec = z.output<typeof queueSchema>;
export type BindingSpec = z.output<typeof bindingSchema>;
export type { OperatorPolicySpec, PolicySpec } from './policy-schema.js';
export type ItemStatus = z.output<typeof itemStatusSchema>;
export type Condition = z.output<typeof conditionSchema>;
export type RabbitQueueBatchStatus = z.output<typeof statusSchema>;
export type Mode = z.output<typeof modeSchema>;

export interface RabbitQueueBatch {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    namespace: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec: RabbitQueueBatchSpecInput;
  status?: RabbitQueueBatchStatus;
}
