/** One field where RabbitMQ's object differs from the spec, for messages a person can act on. */
export interface Difference {
  field: string;
  desired: unknown;
  actual: unknown;
}

const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));

export function describeDifferences(diff: readonly Difference[]): string {
  return diff.map((d) => `${d.field}: desired ${show(d.desired)}, actual ${show(d.actual)}`).join('; ');
}
