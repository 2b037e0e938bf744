/**
 * Turns zod's OpenAPI 3.0 output into a Kubernetes *structural* schema.
 *
 * The API server refuses CRD schemas that are not structural: no `additionalProperties: false`
 * next to `properties` (unknown fields are pruned anyway), no types inside `anyOf`, and free-form
 * maps must say `x-kubernetes-preserve-unknown-fields`. This is the only place that knows.
 */
import { UNSTORED_DEFAULT } from './unstored-default.js';

type JsonSchema = Record<string, unknown>;

const DROPPED_KEYS = new Set(['$schema', 'propertyNames', 'id']);

export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== 'object') return node;
  const input = node as JsonSchema;
  const out: JsonSchema = {};
  const unstored = input[UNSTORED_DEFAULT] === true;
  for (const [key, value] of Object.entries(input)) {
    if (DROPPED_KEYS.has(key) || key === UNSTORED_DEFAULT) continue;
    // Applied by the operator on read, not stored in every item (unstored-default.ts); said
    // where `kubectl explain` shows it.
    if (unstored && key === 'default') {
      const said = `Defaults to ${JSON.stringify(value)} when omitted (applied by the operator, not stored).`;
      out.description = typeof input.description === 'string' ? `${input.description} ${said}` : said;
      continue;
    }
    if (key === 'additionalProperties') {
      // `false` is the default behaviour (pruning); a value schema on a preserved map would
      // put types inside anyOf, which structural schemas forbid: zod checks value types.
      if (value === false || input['x-kubernetes-preserve-unknown-fields'] === true) continue;
    }
    // A value of several shapes (ha-params: a count or node names) is checked by zod; the API
    // server keeps it as is.
    if (key === 'anyOf' && input['x-kubernetes-preserve-unknown-fields'] === true) continue;
    out[key] = key === 'default' || key === 'enum' ? value : toStructural(value);
  }
  return out;
}
