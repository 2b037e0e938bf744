/**
 * Connection flags shared by the CLI's commands, with the environment as fallback
 * (RABBITMQ_URL, RABBITMQ_USERNAME, RABBITMQ_PASSWORD, RABBITMQ_CA_FILE; default
 * http://127.0.0.1:15672 guest/guest). The password is never printed.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultConnection, loadEnv, type RabbitConnection } from '../config/config.js';

export interface ConnectionFlags {
  url?: string;
  username?: string;
  password?: string;
  caFile?: string;
}

function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'management API base URL (env RABBITMQ_URL; default http://127.0.0.1:15672)')
    .option('--username <user>', 'user (env RABBITMQ_USERNAME; default guest)')
    .option('--password <password>', 'password (env RABBITMQ_PASSWORD; prefer the environment: flags show in `ps`)')
    .option('--ca-file <file>', 'PEM CA bundle for https (env RABBITMQ_CA_FILE)');
}

function resolve(flags: ConnectionFlags): RabbitConnection {
  const base = defaultConnection(loadEnv());
  const ca = flags.caFile ? readFileSync(flags.caFile, 'utf8') : base.ca;
  return { url: flags.url ?? base.url, username: flags.username ?? base.username, password: flags.password ?? base.password, ...(ca ? { ca } : {}) };
}

export const connectionOptions = Object.assign(addConnectionOptions, { resolve });
