/**
 * `rabbitbatch`: one binary, two front doors to the same engine. `rabbitbatch operator` runs the
 * controller; the other commands apply batches from files (see `rabbitbatch --help`).
 */
// First: may re-execute `publish` with a bounded young generation before anything else runs.
import './young-generation.js';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerBatchCommands } from './batch-commands.js';
import { registerExportCommand } from './export-command.js';
import { registerOperatorCommand } from './operator-command.js';
import { registerPublishCommand } from './publish-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('rabbitbatch')
    .description('Apply RabbitMQ exchanges, queues and bindings in batches: a Kubernetes operator and a CLI sharing one engine')
    .version(pkg.version)
    .showHelpAfterError()
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') process.exit(0);
      process.exit(1); // usage error: exit code 1, nothing done
    });
  registerOperatorCommand(program);
  registerBatchCommands(program);
  registerPublishCommand(program);
  registerExportCommand(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
