/**
 * `rabbitbatch export`: RabbitQueueBatch manifests from a broker that already exists (a live
 * broker, read with GETs only; a definitions file; or the official operator's resources), so a
 * team can take its topology over without writing thousands of items by hand.
 *
 * Everything is read and checked first; manifests are written (stdout or `--out-dir`) only when
 * all of them are valid. A summary on stderr accounts for every object: exported or skipped, and
 * why. Exit codes: 0 written, 1 bad input or usage (nothing written), 2 connection or server error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, Option } from 'commander';
import { MAX_EXCHANGES, MAX_ITEMS_DEFAULT } from '../api/schema.js';
import { readBroker } from '../export/from-broker.js';
import { readDefinitions } from '../export/from-definitions.js';
import { readMto } from '../export/from-mto.js';
import { manifestYaml, toManifests, type Manifest } from '../export/manifests.js';
import { pack, parseGroupRule, type GroupRule } from '../export/pack.js';
import { select, type Selection } from '../export/select.js';
import { ExportInputError, type Skipped, type Topology } from '../export/topology.js';
import { BrokerUnavailableError, ManagementError } from '../model/errors.js';
import { connectionOptions, type ConnectionFlags } from './connection-flags.js';

interface ExportFlags extends ConnectionFlags {
  vhost?: string;
  match?: string;
  fromDefinitions?: string;
  fromMto?: string;
  groupBy: string;
  outDir?: string;
  namespace?: string;
  connectionSecret?: string;
  adopt: 'IfIdentical' | 'Never';
  deletionPolicy: 'Retain' | 'Delete';
  maxItems: string;
}

export function registerExportCommand(program: Command): void {
  const cmd = program
    .command('export')
    .description('write RabbitQueueBatch manifests for topology that exists: a live broker (GETs only), a definitions file, or the official operator\'s resources')
    .option('--vhost <vhost>', 'only this vhost (default: every vhost the source holds)')
    .option('--match <regex>', 'only exchanges and queues whose name matches (and the bindings into them)')
    .option('--from-definitions <file>', 'read a definitions file (GET /api/definitions) instead of the broker')
    .option('--from-mto <file>', 'read the official operator\'s Queue, Exchange, Binding and Policy resources (a List or multi-document YAML, "-" for stdin)')
    .option('--group-by <rule>', 'prefix (the name up to the first . _ - : / @ ~ +), vhost (one group per vhost), or a regular expression whose first capture group names the group', 'prefix')
    .option('--out-dir <dir>', 'write one file per batch here instead of YAML documents on stdout')
    .option('--namespace <namespace>', 'metadata.namespace of the manifests')
    .option('--connection-secret <name>', 'spec.rabbitmq.connectionSecret.name (default: the operator\'s default connection)')
    .addOption(new Option('--adopt <policy>', 'spec.adopt: IfIdentical takes the existing objects over when the batch is applied').choices(['IfIdentical', 'Never']).default('IfIdentical'))
    .addOption(new Option('--deletion-policy <policy>', 'spec.deletionPolicy').choices(['Retain', 'Delete']).default('Retain'))
    .option('--max-items <n>', `items per batch (the operator's MAX_ITEMS; at most ${MAX_EXCHANGES} exchanges per batch either way)`, String(MAX_ITEMS_DEFAULT));
  connectionOptions(cmd).action((flags: ExportFlags) => runExport(flags));
}

async function runExport(flags: ExportFlags): Promise<void> {
  let match: RegExp | undefined;
  let rule: GroupRule;
  const maxItems = Number(flags.maxItems);
  try {
    if (flags.fromDefinitions && flags.fromMto) throw new ExportInputError('--from-definitions and --from-mto exclude each other: export one source at a time');
    if (!Number.isInteger(maxItems) || maxItems < 1) throw new ExportInputError(`--max-items must be a positive integer, not "${flags.maxItems}"`);
    match = flags.match !== undefined ? regex('--match', flags.match) : undefined;
    rule = flags.groupBy === 'prefix' || flags.groupBy === 'vhost' ? parseGroupRule(flags.groupBy) : { kind: 'regex', pattern: regex('--group-by', flags.groupBy) };
  } catch (err) {
    return fail(err);
  }
  let topology: Topology;
  try {
    topology = await readSource(flags);
  } catch (err) {
    return fail(err);
  }
  let manifests: Manifest[];
  let selection: Selection;
  try {
    selection = select(topology, match ? { match } : {});
    const batches = selection.vhosts.flatMap((v) => pack(v, rule, { maxItems, maxExchanges: MAX_EXCHANGES }));
    manifests = toManifests(batches, {
      ...(flags.namespace ? { namespace: flags.namespace } : {}),
      ...(flags.connectionSecret ? { connectionSecret: flags.connectionSecret } : {}),
      adopt: flags.adopt,
      deletionPolicy: flags.deletionPolicy,
      maxItems,
    });
  } catch (err) {
    return fail(err);
  }
  if (flags.outDir) {
    mkdirSync(flags.outDir, { recursive: true });
    for (const m of manifests) writeFileSync(join(flags.outDir, `${m.metadata.name}.yaml`), manifestYaml(m));
  } else {
    process.stdout.write(manifests.map(manifestYaml).join('---\n'));
  }
  process.stderr.write(summary(manifests, selection.skipped, flags.outDir));
}

async function readSource(flags: ExportFlags): Promise<Topology> {
  const vhost = flags.vhost !== undefined ? { vhost: flags.vhost } : {};
  if (flags.fromDefinitions) return readDefinitions(flags.fromDefinitions, vhost);
  if (flags.fromMto) return readMto(flags.fromMto, vhost);
  const api = await connectionOptions.managementApi(flags, { minSize: 1, maxSize: 4, warm: false });
  try {
    return await readBroker(api, vhost);
  } finally {
    await api.close();
  }
}

/** "3 exchanges, 10 queues, 12 bindings, 0 policies exported in 2 batches; 5 skipped:" and why. */
export function summary(manifests: Manifest[], skipped: Skipped[], outDir?: string): string {
  const count = (key: 'exchanges' | 'queues' | 'bindings') =>
    manifests.reduce((n, m) => n + ((m.spec[key] as { external?: boolean }[] | undefined) ?? []).filter((i) => !i.external).length, 0);
  const lines = [`rabbitbatch export: ${count('exchanges')} exchanges, ${count('queues')} queues, ${count('bindings')} bindings, 0 policies exported in ${manifests.length} batches; ${skipped.length} skipped${skipped.length > 0 ? ':' : ''}`];
  const byReason = new Map<string, string[]>();
  for (const s of skipped) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.what]);
  for (const [reason, what] of byReason) {
    const shown = what.slice(0, 5).join(', ');
    lines.push(`  ${what.length} × ${reason}: ${shown}${what.length > 5 ? `, and ${what.length - 5} more` : ''}`);
  }
  if (outDir) lines.push(`wrote ${manifests.length} files to ${outDir}`);
  return `${lines.join('\n')}\n`;
}

function regex(flag: string, source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (err) {
    throw new ExportInputError(`${flag} is not a regular expression: ${(err as Error).message}`);
  }
}

function fail(err: unknown): void {
  if (err instanceof ExportInputError) {
    process.stderr.write(`rabbitbatch export: ${err.message}; nothing was written\n`);
    process.exitCode = 1;
    return;
  }
  if (err instanceof BrokerUnavailableError || err instanceof ManagementError) {
    process.stderr.write(`rabbitbatch export: ${err.message}; nothing was written\n`);
    process.exitCode = 2;
    return;
  }
  throw err;
}
