/** Reads an export's input file ("-" for stdin), with errors that name it. */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ExportInputError } from './topology.js';

export function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ExportInputError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** The first zod issue as `field <path>: <message>`, relative to the object it was found in. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
    return `unknown field ${issue.keys.map((k) => `${at}${k}`).join(', ')}`;
  }
  return `field ${issue.path.join('.') || '(the object)'}: ${issue.message}`;
}
