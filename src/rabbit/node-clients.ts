/**
 * The management API of a connection that lists one node or several (`uri` / `RABBITMQ_URL` with
 * commas): one client per node, behind a failover client when there are several. The operator's
 * connection resolver and the CLI both build their clients here, so they accept the same lists.
 */
import { splitNodeList } from '../model/node-list.js';
import { FailoverManagementClient, type NodeClient } from './failover-client.js';

export interface NodeConnection {
  /** One management API URL, or several separated by commas. */
  url: string;
}

export function managementApiForNodes<C extends NodeConnection>(connection: C, create: (node: C) => NodeClient): NodeClient {
  const urls = splitNodeList(connection.url);
  if (urls.length <= 1) return create({ ...connection, url: urls[0] ?? connection.url });
  return new FailoverManagementClient(urls.map((url) => create({ ...connection, url })));
}
