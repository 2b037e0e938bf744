/**
 * `rabbitbatch`: one binary, two front doors to the same engine. `rabbitbatch operator` runs the
 * controller; the other commands apply batches from files (see `rabbitbatch --help`).
 */
// First: may re-execute `publish` with a bounded young generation before anything else runs.
import './young-generation.js';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerOperatorCommand } from './operator-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export async function buildProgram(command = process.argv[2]): Promise<Command> {
  const program = new Command('rabbitbatch')
    .description('Apply RabbitMQ exchanges, queues and bindings in batches: a Kubernetes operator and a CLI sharing one engine')
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
      process.exit(1); // usage error: exit code 1, nothing done
    });
  registerOperatorCommand(program);
  // `rabbitbatch operator` registers only its own command: the file commands' modules (export,
  // publish, YAML, progress bars) would stay in the operator's memory for its whole life.
  if (command === 'operator') return program;
  const [batch, publish, exportCommand] = await Promise.all([import('./batch-commands.js'), import('./publish-command.js'), import('./export-command.js')]);
  batch.registerBatchCommands(program);
  publish.registerPublishCommand(program);
  exportCommand.registerExportCommand(program);
  return program;
}

await (await buildProgram()).parseAsync(process.argv);
