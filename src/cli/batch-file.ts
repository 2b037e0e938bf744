/**
 * Reads a CLI batch file: JSON or YAML; an array of items (queues, exchanges or bindings, as in
 * the spec's lists), a spec document, or a whole RabbitQueueBatch manifest. Everything is
 * validated before anything is done; errors name the item index and the field.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { RabbitQueueBatchSpec } from '../api/schema.js';
import { formatErrors, validateSpec } from '../api/validate.js';

export type ItemKind = 'queues' | 'exchanges' | 'bindings' | 'policies';

export class UsageError extends Error {}

export function readDocument(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  // JSON is YAML too, but YAML's parser reports broken JSON in YAML terms ("Flow sequence must
  // end with a ]"): a .json file, or text that starts like JSON, is parsed and reported as JSON.
  if (file.endsWith('.json') || /^\s*[[{]/.test(text)) {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      if (file.endsWith('.json') || !looksLikeYamlFlow(text)) throw new UsageError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  try {
    return parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${file} is neither JSON nor YAML: ${(err as Error).message}`);
  }
}

/** YAML flow style (`{name: a}`, unquoted keys) also starts with a brace: left to the YAML parser. */
function looksLikeYamlFlow(text: string): boolean {
  return /^\s*[[{]\s*[A-Za-z_][\w.-]*\s*:/.test(text) || /^\s*\[\s*\{\s*[A-Za-z_][\w.-]*\s*:/.test(text);
}

/** A spec from a file: items of one kind (`kind`), a spec, or a manifest. */
export function specFromDocument(doc: unknown, opts: { kind?: ItemKind; vhost?: string; maxItems: number }): RabbitQueueBatchSpec {
  let input: Record<string, unknown>;
  let root = 'spec';
  if (Array.isArray(doc)) {
    if (!opts.kind) throw new UsageError('a list of items needs a kind: use `rabbitbatch queue|exchange|binding|policy ...`');
    input = { [opts.kind]: doc };
    root = 'file';
  } else if (doc && typeof doc === 'object') {
    const d = doc as Record<string, unknown>;
    input = (d.kind === 'RabbitQueueBatch' ? d.spec : d) as Record<string, unknown>;
    if (!input || typeof input !== 'object') throw new UsageError('the manifest has no spec');
  } else {
    throw new UsageError('the file must hold a list of items, a spec, or a RabbitQueueBatch manifest');
  }
  if (opts.vhost) input = { ...input, vhost: opts.vhost };
  const v = validateSpec(input, { maxItems: Number.MAX_SAFE_INTEGER, root });
  if (!v.ok) {
    // `file.queues[3].name` reads better as `item 3 (queues[3]).name` for a bare list.
    const errors = v.errors.map((e) => ({ ...e, path: root === 'file' ? e.path.replace(/^file\.\w+\[(\d+)\]/, 'item $1') : e.path }));
    throw new ValidationError(`the file is invalid, nothing was done: ${formatErrors(errors)}`);
  }
  return v.spec;
}

export class ValidationError extends Error {}
