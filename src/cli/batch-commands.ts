/**
 * `rabbitbatch queue|exchange|binding|policy create|delete --batch --file F` and `rabbitbatch apply -f F`:
 * the operator's planner and executor behind a command line.
 *
 * Exit codes: 0 all succeeded, 1 usage or validation error (nothing done), 2 connection or
 * server error, 3 partial success (best-effort with failures, or items kept), 4 rolled back or
 * not applied (all-or-nothing).
 */
import { appendFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { type Command, Option } from 'commander';
import { MAX_ITEMS_DEFAULT, type RabbitQueueBatchSpec } from '../api/schema.js';
import { executePlan, type ExecutionResult } from '../batch/execute.js';
import { planBatch, planDeletion, type Plan } from '../batch/plan.js';
import { bindingId, exchangeId, isPolicyKind, kindOf, operatorPolicyId, policyId, queueId } from '../model/identity.js';
import { BrokerUnavailableError, ManagementError, TlsError } from '../model/errors.js';
import { observeVhost } from '../rabbit/observe.js';
import { type ItemKind, UsageError, ValidationError, readDocument, specFromDocument } from './batch-file.js';
import { connectionOptions, type ConnectionFlags } from './connection-flags.js';
import { printPlan, printResults } from './output.js';

export const EXIT = { ok: 0, usage: 1, server: 2, partial: 3, rolledBack: 4 } as const;

/** `--max-batch` of the list commands; `apply` takes what a RabbitQueueBatch may hold. */
const LIST_MAX_BATCH = 100;

interface BatchFlags extends ConnectionFlags {
  file: string;
  vhost?: string;
  mode: 'all-or-nothing' | 'best-effort';
  maxBatch?: string;
  concurrency: string;
  dryRun?: boolean;
  onConflict?: 'Report' | 'RecreateIfEmpty';
  output: 'table' | 'json';
  auditLog?: string;
}

function withBatchOptions(cmd: Command, fileFlag: string): Command {
  return cmd
    .requiredOption(fileFlag, 'JSON or YAML: a list of items, a spec, or a RabbitQueueBatch manifest ("-" for stdin)')
    .option('--vhost <vhost>', 'vhost (overrides the file)')
    .addOption(new Option('--mode <mode>', 'all-or-nothing rolls back what this run created on a failure').choices(['all-or-nothing', 'best-effort']).default('all-or-nothing'))
    .option('--max-batch <n>', `most items per run (default ${LIST_MAX_BATCH} for the queue|exchange|binding commands, which take long hand-made lists: a typo in a generated list should not touch thousands of objects; \`apply\` defaults to the ${MAX_ITEMS_DEFAULT} a RabbitQueueBatch may hold, the operator's limit)`)
    .option('--concurrency <n>', 'operations in flight at once', '10')
    .option('--dry-run', 'print the plan (create / unchanged / conflict / delete) and touch nothing; exits as the real run would (3 or 4 on a conflict)')
    .addOption(new Option('--on-conflict <policy>', 'a queue whose type or arguments differ: Report (item Conflict), or delete it (only if empty and unused) and declare it again (overrides onConflict in the file)').choices(['Report', 'RecreateIfEmpty']))
    .addOption(new Option('-o, --output <format>', 'results as a table or JSON').choices(['table', 'json']).default('table'))
    .option('--audit-log <file>', 'append the audit entry (JSON) to this file instead of stderr')
    .option('--batch', 'accepted for compatibility: every command here works on a batch');
}

export function registerBatchCommands(program: Command): void {
  const kinds: [string, ItemKind][] = [
    ['queue', 'queues'],
    ['exchange', 'exchanges'],
    ['binding', 'bindings'],
    // A list of policies; operator policies come in a spec or manifest file (`operatorPolicies:`).
    ['policy', 'policies'],
  ];
  for (const [noun, kind] of kinds) {
    const group = program.command(noun).description(`create or delete ${kind} in a batch`);
    connectionOptions(withBatchOptions(group.command('create').description(`declare the ${kind} listed in the file`), '--file <file>')).action((f: BatchFlags) =>
      run('create', kind, `${noun} create`, f),
    );
    connectionOptions(withBatchOptions(group.command('delete').description(`delete the ${kind} listed in the file (queues only when empty and unused)`), '--file <file>')).action((f: BatchFlags) =>
      run('delete', kind, `${noun} delete`, f),
    );
  }
  connectionOptions(withBatchOptions(program.command('apply').description('apply a RabbitQueueBatch spec (or manifest) locally, as the operator would'), '-f, --file <file>')).action((f: BatchFlags) =>
    run('create', undefined, 'apply', f),
  );
}

async function run(action: 'create' | 'delete', kind: ItemKind | undefined, what: string, flags: BatchFlags): Promise<void> {
  const started = performance.now();
  let spec: RabbitQueueBatchSpec;
  try {
    spec = specFromDocument(readDocument(flags.file), { ...(kind ? { kind } : {}), ...(flags.vhost ? { vhost: flags.vhost } : {}), maxItems: Number.MAX_SAFE_INTEGER });
    const items = spec.exchanges.length + spec.queues.length + spec.bindings.length + spec.policies.length + spec.operatorPolicies.length;
    const max = Number(flags.maxBatch ?? (what === 'apply' ? MAX_ITEMS_DEFAULT : LIST_MAX_BATCH));
    if (!Number.isInteger(max) || max < 1) throw new UsageError(`--max-batch must be a positive integer, not "${flags.maxBatch}"`);
    if (flags.onConflict) spec = { ...spec, onConflict: flags.onConflict };
    if (items > max) throw new UsageError(`the file has ${items} items, more than --max-batch ${max}; nothing was done (split it, or raise --max-batch)`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ValidationError) return exit(EXIT.usage, `rabbitbatch: ${err.message}`);
    throw err;
  }
  const mode = flags.mode === 'best-effort' ? 'BestEffort' : 'AllOrNothing';
  const api = await connectionOptions.managementApi(flags, { minSize: 1, maxSize: Math.max(10, Number(flags.concurrency)) });
  try {
    const observed = await observeVhost(api, spec.vhost);
    const owned = new Set([
      ...spec.exchanges.filter((e) => !e.external).map((e) => exchangeId(e.name)),
      ...spec.queues.filter((q) => !q.external).map((q) => queueId(q.name)),
      ...spec.bindings.map(bindingId),
      ...spec.policies.map((p) => policyId(p.name)),
      ...spec.operatorPolicies.map((p) => operatorPolicyId(p.name)),
    ]);
    // The CLI keeps no ownership, except that a policy named in the file is the user's to change in place.
    const policies = new Set([...owned].filter((r) => isPolicyKind(kindOf(r))));
    const plan: Plan = action === 'delete' ? planDeletion(spec, observed, owned) : planBatch({ spec: { ...spec, adopt: 'Never' }, observed, owned: policies, howToRecreate: CLI_RECREATE_HINT });
    if (flags.dryRun) {
      printPlan(plan, flags.output);
      return exit(dryRunExitCode(plan, mode));
    }
    const result = await executePlan(plan, api, { mode, concurrency: Number(flags.concurrency) });
    printResults(action === 'delete' ? deletionResults(plan, result) : result.items, flags.output);
    const code = exitCode(result);
    // The audit entry says what the exit code says: items kept (Retained) are not a full success.
    const outcome = code === EXIT.partial && result.outcome === 'Succeeded' ? 'PartiallySucceeded' : result.outcome;
    const retained = result.items.filter((i) => i.status === 'Retained').length;
    audit(flags.auditLog, { who: userInfo().username, what, vhost: spec.vhost, mode, items: plan.items.length, operations: result.operations, result: outcome, ...(retained > 0 ? { retained } : {}), durationMs: Math.round(performance.now() - started) });
    return exit(code);
  } catch (err) {
    // A one-shot command does not wait for the breaker: say what failed, not that it is open.
    if (err instanceof BrokerUnavailableError) return exit(EXIT.server, `rabbitbatch: cannot reach RabbitMQ: ${firstCause(err).message}`);
    if (err instanceof ManagementError) return exit(EXIT.server, `rabbitbatch: ${err.message}`);
    if (err instanceof TlsError) return exit(EXIT.server, `rabbitbatch: ${err.message}`);
    throw err;
  } finally {
    await api.close();
  }
}

/** Deleted items disappear from an execution's items; the CLI reports them as `Deleted`. */
function deletionResults(plan: Plan, result: ExecutionResult): { resource: string; status: string; error?: string }[] {
  const byResource = new Map(result.items.map((i) => [i.resource, i]));
  return plan.items.map((i) => byResource.get(i.resource) ?? { resource: i.resource, status: result.deleted.includes(i.resource) ? 'Deleted' : 'Absent' });
}

/** How the CLI user opts into recreating, in conflict messages (the operator's name the spec field). */
const CLI_RECREATE_HINT = 'pass --on-conflict RecreateIfEmpty (or set onConflict: RecreateIfEmpty in the file)';

/** The exit code the same run would end with, for a plan that was only printed. */
export function dryRunExitCode(plan: Plan, mode: 'AllOrNothing' | 'BestEffort'): number {
  if (!plan.vhostExists) return EXIT.server;
  const blocked = plan.items.some((i) => i.decision === 'conflict' || i.decision === 'missing');
  if (!blocked) return EXIT.ok;
  return mode === 'AllOrNothing' ? EXIT.rolledBack : EXIT.partial;
}

export function exitCode(result: ExecutionResult): number {
  if (result.brokerUnavailable || result.outcome === 'VhostNotFound') return EXIT.server;
  if (result.outcome === 'RolledBack' || result.outcome === 'Blocked') return EXIT.rolledBack;
  const kept = result.items.some((i) => i.status === 'Failed' || i.status === 'Conflict' || i.status === 'Retained');
  return result.outcome === 'PartiallySucceeded' || kept ? EXIT.partial : EXIT.ok;
}

/** The innermost `BrokerUnavailableError`: the refusal or timeout itself, under "circuit open". */
function firstCause(err: BrokerUnavailableError): BrokerUnavailableError {
  let e = err;
  while (e.cause instanceof BrokerUnavailableError) e = e.cause;
  return e;
}

function audit(file: string | undefined, entry: Record<string, unknown>): void {
  const line = `${JSON.stringify({ audit: entry })}\n`;
  if (file) appendFileSync(file, line);
  else process.stderr.write(line);
}

function exit(code: number, message?: string): void {
  if (message) process.stderr.write(`${message}\n`);
  process.exitCode = code;
}
