/**
 * Policies and operator policies (`spec.policies`, `spec.operatorPolicies`): the settings of
 * queues and exchanges that can change after they exist.
 *
 * The definition keys are the ones RabbitMQ 3.10 itself validates (checked against a 3.10.8
 * broker: every other key is answered `are not recognised policy settings`), each with its type
 * and range, so a typo is refused with its field path before anything reaches the broker. The
 * operator-policy keys are the subset 3.10 accepts for `/api/operator-policies` (its operator
 * policy validator: expires, message-ttl, max-length, max-length-bytes, max-in-memory-length,
 * max-in-memory-bytes, delivery-limit; `overflow` is refused there).
 */
import { z } from 'zod';
import { UNSTORED } from './unstored-default.js';

/** RabbitMQ keeps TTLs and expiries as unsigned 32-bit milliseconds. */
const UINT32 = 4_294_967_295;
/** An integer, refused in the API server's words when it is not a number at all. */
const int = () => z.number({ error: (iss) => (iss.code === 'invalid_type' ? 'must be of type integer' : undefined) }).int();
const millis = int().min(0).max(UINT32);
const count = int().min(0);
const exchangeName = z.string().max(255);

/** Every key RabbitMQ 3.10 accepts in a policy definition. */
export const policyDefinitionShape = {
  'message-ttl': millis.optional(),
  /** 0 is refused by RabbitMQ ("not a valid queue expiry"). */
  expires: int().min(1).max(UINT32).optional(),
  'max-length': count.optional(),
  'max-length-bytes': count.optional(),
  overflow: z.enum(['drop-head', 'reject-publish', 'reject-publish-dlx']).optional(),
  'dead-letter-exchange': exchangeName.optional(),
  'dead-letter-routing-key': z.string().max(255).optional(),
  'dead-letter-strategy': z.enum(['at-most-once', 'at-least-once']).optional(),
  'delivery-limit': count.optional(),
  'max-in-memory-length': count.optional(),
  'max-in-memory-bytes': count.optional(),
  'queue-mode': z.enum(['default', 'lazy']).optional(),
  'queue-version': int().min(1).max(2).optional(),
  'queue-master-locator': z.enum(['min-masters', 'client-local', 'random']).optional(),
  'queue-leader-locator': z.enum(['client-local', 'balanced']).optional(),
  'initial-cluster-size': int().min(1).optional(),
  /** Streams: `7D`, `12h`, `30m`... (RabbitMQ's units Y M D h m s). */
  'max-age': z.string().regex(/^\d+[YMDhms]$/, 'must be a number followed by one of Y M D h m s, e.g. 7D').optional(),
  'stream-max-segment-size-bytes': int().min(1).optional(),
  'alternate-exchange': exchangeName.optional(),
  /** Only with the rabbitmq_federation plugin enabled; without it the broker refuses the policy. */
  'federation-upstream': z.string().min(1).max(255).optional(),
  'federation-upstream-set': z.string().min(1).max(255).optional(),
  /** Classic mirrored queues (deprecated by RabbitMQ, still in 3.10). */
  'ha-mode': z.enum(['all', 'exactly', 'nodes']).optional(),
  /** A count for `exactly`, node names for `nodes`. */
  'ha-params': z
    .union([int().min(1), z.array(z.string().min(1).max(255)).min(1).max(64)])
    .optional()
    .meta({ 'x-kubernetes-preserve-unknown-fields': true }),
  'ha-sync-mode': z.enum(['manual', 'automatic']).optional(),
  'ha-sync-batch-size': int().min(1).optional(),
  'ha-promote-on-shutdown': z.enum(['when-synced', 'always']).optional(),
  'ha-promote-on-failure': z.enum(['when-synced', 'always']).optional(),
} as const;

export const OPERATOR_POLICY_KEYS = ['expires', 'message-ttl', 'max-length', 'max-length-bytes', 'max-in-memory-length', 'max-in-memory-bytes', 'delivery-limit'] as const;

const nonEmpty = (d: Record<string, unknown>) => Object.values(d).some((v) => v !== undefined);

/** The API server's words for an unknown key (`kubectl apply` is strict), with what is allowed. */
const unknownKey = (what: string, allowed: readonly string[]) => (iss: { code?: string; keys?: string[] }) =>
  iss.code === 'unrecognized_keys' ? `unknown field ${(iss.keys ?? []).map((k) => `"${k}"`).join(', ')}: ${what} accepts ${allowed.join(', ')}` : undefined;

export const policyDefinitionSchema = z
  .strictObject(policyDefinitionShape, { error: unknownKey('a policy definition', Object.keys(policyDefinitionShape)) })
  .refine(nonEmpty, 'a definition needs at least one key')
  .refine((d) => d['ha-params'] === undefined || d['ha-mode'] === 'exactly' || d['ha-mode'] === 'nodes', { message: 'ha-params needs ha-mode exactly or nodes', path: ['ha-params'] })
  .refine((d) => d['ha-mode'] !== 'exactly' || typeof d['ha-params'] === 'number', { message: 'ha-mode exactly needs ha-params: a number of replicas', path: ['ha-params'] })
  .refine((d) => d['ha-mode'] !== 'nodes' || Array.isArray(d['ha-params']), { message: 'ha-mode nodes needs ha-params: a list of node names', path: ['ha-params'] })
  .meta({ minProperties: 1 });

export const operatorPolicyDefinitionSchema = z
  .strictObject(Object.fromEntries(OPERATOR_POLICY_KEYS.map((k) => [k, policyDefinitionShape[k]])) as Pick<typeof policyDefinitionShape, (typeof OPERATOR_POLICY_KEYS)[number]>, {
    error: unknownKey('an operator policy definition (RabbitMQ 3.10)', OPERATOR_POLICY_KEYS),
  })
  .refine(nonEmpty, 'a definition needs at least one key')
  .meta({ minProperties: 1 });

/**
 * A pattern must compile as a JavaScript regular expression. RabbitMQ uses Erlang's `re` (PCRE),
 * which accepts a little more (and treats a few constructs differently): the broker has the last
 * word, and a pattern it refuses is reported on the item with the field.
 */
const pattern = z
  .string()
  .min(1)
  .max(255)
  .refine((p) => {
    try {
      new RegExp(p);
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression')
  .meta({
    'x-kubernetes-validations': [
      // CEL has no "is this a regex" check: matches() with an invalid pattern is an evaluation
      // error, which the API server reports as a refusal of this field.
      { rule: "self.matches(self) || !self.matches(self)", message: 'must be a valid regular expression' },
    ],
  });

// Policy names travel in URLs and Events; the same portable subset as object names.
const policyName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9._:@~/+-]*$/, 'may contain only letters, digits and . _ : @ ~ / + - (and must not start with . or -)');

const policyFields = {
  name: policyName,
  pattern,
  /** What the policy applies to; RabbitMQ 3.10 knows these three. */
  applyTo: z.enum(['queues', 'exchanges', 'all']).default('all').meta(UNSTORED),
  /** Of the policies matching one object, the highest priority wins (no merging). */
  priority: int().min(-1_000_000).max(1_000_000).default(0).meta(UNSTORED),
};

export const policySchema = z.object({ ...policyFields, definition: policyDefinitionSchema }).strict();
export const operatorPolicySchema = z
  .object({ ...policyFields, applyTo: z.enum(['queues']).default('queues').meta(UNSTORED), definition: operatorPolicyDefinitionSchema })
  .strict();

/** Policies one resource may hold (they are few: each matches many objects). */
export const MAX_POLICIES = 64;

export type PolicySpec = z.output<typeof policySchema>;
export type OperatorPolicySpec = z.output<typeof operatorPolicySchema>;
export type PolicyDefinition = Record<string, string | number | string[]>;
