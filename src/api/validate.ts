/**
 * Validation shared by the operator (which may run against an older CRD) and the CLI: zod's
 * schema plus the rules CEL cannot check cheaply. Every error names the field path and a reason.
 */
import type { z } from 'zod';
import { makeSpecSchema, MAX_ITEMS_DEFAULT, type RabbitQueueBatchSpec } from './schema.js';

export interface FieldError {
  /** e.g. `spec.queues[3].name` */
  path: string;
  message: string;
}

export type Validation = { ok: true; spec: RabbitQueueBatchSpec } | { ok: false; errors: FieldError[] };

const schemas = new Map<number, ReturnType<typeof makeSpecSchema>>();

export function validateSpec(input: unknown, { maxItems = MAX_ITEMS_DEFAULT, root = 'spec' } = {}): Validation {
  let schema = schemas.get(maxItems);
  if (!schema) schemas.set(maxItems, (schema = makeSpecSchema(maxItems)));
  const parsed = schema.safeParse(input);
  if (!parsed.success) return { ok: false, errors: parsed.error.issues.map((i) => ({ path: formatPath(root, i.path), message: i.message })) };
  const errors = [...crossFieldErrors(parsed.data, maxItems)].map((e) => ({ ...e, path: formatPath(root, e.path) }));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, spec: parsed.data };
}

export function formatErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}

function formatPath(root: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), root);
}

type RawError = { path: z.core.$ZodIssue['path']; message: string };

/** The same rules as the CRD's CEL validations, plus binding cycles. */
function* crossFieldErrors(spec: RabbitQueueBatchSpec, maxItems: number): Generator<RawError> {
  const total = spec.exchanges.length + spec.queues.length + spec.bindings.length;
  if (total > maxItems) yield { path: [], message: `a batch holds at most ${maxItems} items (exchanges + queues + bindings); this one has ${total}` };
  yield* duplicates(spec.exchanges.map((e) => e.name), 'exchanges');
  yield* duplicates(spec.queues.map((q) => q.name), 'queues');
  yield* duplicates(spec.bindings.map((b) => `${b.source}|${b.destination}|${b.destinationType}|${b.routingKey}`), 'bindings');
  const exchanges = new Set(spec.exchanges.map((e) => e.name));
  const queues = new Set(spec.queues.map((q) => q.name));
  for (const [i, b] of spec.bindings.entries()) {
    if (!b.source.startsWith('amq.') && !exchanges.has(b.source)) {
      yield { path: ['bindings', i, 'source'], message: `exchange "${b.source}" is not in spec.exchanges (list it, with external: true if it is managed elsewhere)` };
    }
    if (b.destinationType === 'queue' && !queues.has(b.destination)) {
      yield { path: ['bindings', i, 'destination'], message: `queue "${b.destination}" is not in spec.queues (list it, with external: true if it is managed elsewhere)` };
    }
    if (b.destinationType === 'exchange' && !b.destination.startsWith('amq.') && !exchanges.has(b.destination)) {
      yield { path: ['bindings', i, 'destination'], message: `exchange "${b.destination}" is not in spec.exchanges` };
    }
  }
  const cycle = findExchangeCycle(spec.bindings);
  if (cycle) yield { path: ['bindings', cycle.index], message: `exchange-to-exchange bindings form a cycle: ${cycle.names.join(' -> ')}` };
}

function* duplicates(names: string[], field: string): Generator<RawError> {
  const seen = new Set<string>();
  for (const [i, name] of names.entries()) {
    if (seen.has(name)) yield { path: [field, i], message: `duplicate entry ${JSON.stringify(name.split('|')[0])}: each ${field.slice(0, -1)} may appear once` };
    seen.add(name);
  }
}

/** A message routed around a cycle of exchange-to-exchange bindings is delivered many times. */
export function findExchangeCycle(bindings: RabbitQueueBatchSpec['bindings']): { index: number; names: string[] } | undefined {
  const edges = new Map<string, { to: string; index: number }[]>();
  for (const [index, b] of bindings.entries()) {
    if (b.destinationType !== 'exchange') continue;
    edges.set(b.source, [...(edges.get(b.source) ?? []), { to: b.destination, index }]);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): { index: number; names: string[] } | undefined => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const { to, index } of edges.get(node) ?? []) {
      if (state.get(to) === 'visiting') return { index, names: [...stack.slice(stack.indexOf(to)), to] };
      if (!state.has(to)) {
        const found = visit(to);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of edges.keys()) {
    if (state.has(node)) continue;
    const found = visit(node);
    if (found) return found;
  }
  return undefined;
}
