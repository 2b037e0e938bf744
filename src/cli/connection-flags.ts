/**
 * Connection flags shared by the CLI's commands, with the environment as fallback
 * (RABBITMQ_URL, RABBITMQ_USERNAME, RABBITMQ_PASSWORD, RABBITMQ_CA_FILE; default
 * http://127.0.0.1:15672 guest/guest). The password is never printed.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultConnection, loadEnv, type RabbitConnection } from '../config/config.js';
import { nodeListProblems, splitNodeList } from '../model/node-list.js';
import { FailoverManagementClient, type NodeClient } from '../rabbit/failover-client.js';
import { ManagementClient, type ManagementClientOptions } from '../rabbit/management-client.js';
import { managementApiForNodes } from '../rabbit/node-clients.js';
import { checkSameBroker } from '../rabbit/same-broker.js';

export interface ConnectionFlags {
  url?: string;
  username?: string;
  password?: string;
  caFile?: string;
}

function addConnectionOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'management API base URL, or several nodes of one cluster separated by commas (env RABBITMQ_URL; default http://127.0.0.1:15672)')
    .option('--username <user>', 'user (env RABBITMQ_USERNAME; default guest)')
    .option('--password <password>', 'password (env RABBITMQ_PASSWORD; prefer the environment: flags show in `ps`)')
    .option('--ca-file <file>', 'PEM CA bundle for https (env RABBITMQ_CA_FILE)');
}

function resolve(flags: ConnectionFlags): RabbitConnection {
  const base = defaultConnection(loadEnv());
  const ca = flags.caFile ? readFileSync(flags.caFile, 'utf8') : base.ca;
  return { url: flags.url ?? base.url, username: flags.username ?? base.username, password: flags.password ?? base.password, ...(ca ? { ca } : {}) };
}

/**
 * The management API of the connection, as the operator builds it: one client per node listed,
 * requests to a node that answers (src/rabbit/failover-client.ts). A list whose nodes belong to
 * different clusters is refused before anything is done.
 */
type CliApi = NodeClient & { read<T>(path: string): Promise<T> };

async function managementApi(flags: ConnectionFlags, pool: Omit<ManagementClientOptions, keyof RabbitConnection>): Promise<CliApi> {
  const connection = resolve(flags);
  const problems = nodeListProblems(splitNodeList(connection.url));
  if (problems.length > 0) throw new Error(`${flags.url !== undefined ? '--url' : 'RABBITMQ_URL'}: ${problems.join('; ')}`);
  const api = managementApiForNodes(connection, (node) => new ManagementClient({ ...node, ...pool }));
  if (api instanceof FailoverManagementClient) {
    const check = await checkSameBroker(api.clients().map((c) => ({ endpoint: c.endpoint, clusterName: () => (c as ManagementClient).clusterName() })));
    if (check.mismatch) {
      await api.close();
      throw new Error(`${flags.url !== undefined ? '--url' : 'RABBITMQ_URL'}: ${check.mismatch}; nothing was done`);
    }
  }
  return api as CliApi;
}

export const connectionOptions = Object.assign(addConnectionOptions, { resolve, managementApi });
