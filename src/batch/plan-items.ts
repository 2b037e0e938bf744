/** The planner's per-item vocabulary, shared by plan.ts and plan-policies.ts. */

/** What the plan says about one item; `execute.ts` turns it into an item status. */
export type Decision = 'create' | 'update' | 'unchanged' | 'adopt' | 'conflict' | 'missing' | 'delete';

export interface PlannedItem {
  resource: string;
  decision: Decision;
  /** For conflicts and missing externals: what differs and how to proceed. */
  message?: string;
}

/** What a batch created earlier (its `status.applied`), as resource ids. */
export type Owned = ReadonlySet<string>;
