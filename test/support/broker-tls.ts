/**
 * TLS listeners on the machine's running RabbitMQ, for the TLS tests: a throwaway CA with a
 * server certificate for localhost/127.0.0.1, a second unrelated CA (the "wrong" one), AMQPS on
 * 127.0.0.1:5671 and management HTTPS on :15671, started at runtime through `rabbitmqctl eval`,
 * without restarting the broker.
 *
 * Guarantees
 * - `ensureBrokerTls()` is idempotent: certificates are made once in `TLS_DIR` and reused; a
 *   listener is (re)started only when it does not already present a certificate that verifies
 *   against that CA (none yet, or one left from older certificates).
 * - The plain listeners (5672, 15672) keep working. `restore()` leaves the broker as
 *   `ensureBrokerTls()` found it: a listener it started is stopped again, and management
 *   settings it added are removed (the management application restarts once more for that).
 * - The files are world-readable (0644, directory 0755): the broker runs as user `rabbitmq` and
 *   must read them. They are test-only keys of a CA nothing else trusts.
 *
 * Caveats
 * - The management plugin reads its listeners (`tcp_config`, `ssl_config` of the
 *   `rabbitmq_management` application) only when it starts, so adding HTTPS restarts that
 *   application: the management API on 15672 is away for about a second. Use it from reliability
 *   tests only (one file at a time, under the heavy lock). Should the restart with HTTPS fail,
 *   the plugin is started again without it, and the error is thrown.
 * - `rabbitmqctl stop_app`/`start_app` (broker-restart.test.ts) drop the runtime AMQPS listener;
 *   the next `ensureBrokerTls()` starts it again.
 */
import { execFileSync } from 'node:child_process';
import { rabbitmqctl } from './broker-control.js';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { eventually } from './wait.js';

/** Fixed, so the running listeners and the files agree from one run to the next. */
export const TLS_DIR = '/tmp/rabbitbatch-tls';
export const AMQPS_PORT = 5671;
export const MANAGEMENT_TLS_PORT = 15671;

export interface BrokerTls {
  /** PEM of the CA that signed the broker's certificate, and its file. */
  ca: string;
  caFile: string;
  /** PEM of an unrelated CA that signed nothing the broker presents, and its file. */
  wrongCa: string;
  wrongCaFile: string;
  /** `https://127.0.0.1:15671`. */
  managementUrl: string;
  /** `amqps://user:password@127.0.0.1:5671/<vhost>` (guest/guest unless given). */
  amqpsUrl(vhost: string, user?: { username: string; password: string }): string;
  /** Stops what `ensureBrokerTls()` started and removes the settings it added. */
  restore(): Promise<void>;
}

const FILES = ['ca.crt', 'server.crt', 'server.key', 'wrong-ca.crt'];

export async function ensureBrokerTls(): Promise<BrokerTls> {
  const dir = ensurePki();
  const ca = readFileSync(`${dir}/ca.crt`, 'utf8');
  const files = { certfile: `${dir}/server.crt`, keyfile: `${dir}/server.key`, cacertfile: `${dir}/ca.crt` };
  // What was there before, so that restore() takes back exactly what this call adds.
  const amqpsBefore = await amqpsListening();
  const managementBefore = await managementEnv();
  if (!(await verifies(AMQPS_PORT, ca))) await startAmqpsListener(files);
  if (!(await verifies(MANAGEMENT_TLS_PORT, ca))) await startManagementHttps(files, ca);
  return {
    restore: async () => {
      if (!amqpsBefore) await rabbitEval(`rabbit_networking:stop_tcp_listener({"127.0.0.1", ${AMQPS_PORT}}).`);
      const unset = (['ssl_config', 'tcp_config'] as const).filter((key) => !managementBefore[key]);
      if (unset.length > 0 && (await managementEnv()).ssl_config) await restartManagement(unset);
      if (!amqpsBefore && (await amqpsListening())) throw new Error(`the AMQPS listener on ${AMQPS_PORT} is still there`);
    },
    ca,
    caFile: `${dir}/ca.crt`,
    wrongCa: readFileSync(`${dir}/wrong-ca.crt`, 'utf8'),
    wrongCaFile: `${dir}/wrong-ca.crt`,
    managementUrl: `https://127.0.0.1:${MANAGEMENT_TLS_PORT}`,
    amqpsUrl: (vhost, user = { username: 'guest', password: 'guest' }) =>
      `amqps://${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@127.0.0.1:${AMQPS_PORT}/${encodeURIComponent(vhost)}`,
  };
}

/** The CA, the server certificate (localhost, 127.0.0.1) and the wrong CA, made once with openssl. */
function ensurePki(): string {
  if (FILES.every((f) => existsSync(`${TLS_DIR}/${f}`))) return TLS_DIR;
  const tmp = mkdtempSync('/tmp/rabbitbatch-tls-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=rabbitbatch-test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=rabbitbatch-unrelated-ca', '-keyout', 'wrong-ca.key', '-out', 'wrong-ca.crt');
  writeFileSync(`${tmp}/server.ext`, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '3650', '-extfile', 'server.ext', '-out', 'server.crt');
  chmodSync(tmp, 0o755);
  for (const f of readdirSync(tmp)) chmodSync(`${tmp}/${f}`, 0o644);
  try {
    renameSync(tmp, TLS_DIR);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another run made them first: use theirs
  }
  return TLS_DIR;
}

/** Does something on `port` complete a TLS handshake whose certificate verifies against `ca`? */
function verifies(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, timeout: 5_000 }, () => {
      resolve(socket.authorized);
      socket.destroy();
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      resolve(false);
      socket.destroy();
    });
  });
}

interface CertFiles {
  certfile: string;
  keyfile: string;
  cacertfile: string;
}

const erlangString = (s: string) => JSON.stringify(s); // plain ASCII paths: the same literal in Erlang
const sslOptions = (f: CertFiles) => `{certfile, ${erlangString(f.certfile)}}, {keyfile, ${erlangString(f.keyfile)}}, {cacertfile, ${erlangString(f.cacertfile)}}`;

function rabbitEval(expression: string): Promise<string> {
  return rabbitmqctl('eval', expression);
}

async function amqpsListening(): Promise<boolean> {
  return (await rabbitEval(`lists:any(fun(L) -> element(6, L) =:= ${AMQPS_PORT} end, rabbit_networking:active_listeners()).`)) === 'true';
}

/** Whether the management application has each listener setting (`undefined` in Erlang when not). */
async function managementEnv(): Promise<{ ssl_config: boolean; tcp_config: boolean }> {
  const raw = await rabbitEval('{application:get_env(rabbitmq_management, ssl_config) =/= undefined, application:get_env(rabbitmq_management, tcp_config) =/= undefined}.');
  const m = /^\{(true|false),(true|false)\}$/.exec(raw.replace(/\s+/g, ''));
  if (!m) throw new Error(`unexpected management settings ${raw}`);
  return { ssl_config: m[1] === 'true', tcp_config: m[2] === 'true' };
}

/** Removes `keys` from the management application's settings and restarts it; waits for 15672. */
async function restartManagement(keys: readonly string[]): Promise<void> {
  const result = await rabbitEval(`${keys.map((k) => `application:unset_env(rabbitmq_management, ${k}), `).join('')}ok = application:stop(rabbitmq_management), application:start(rabbitmq_management).`);
  if (result !== 'ok') throw new Error(`could not restart the management plugin without HTTPS: ${result}`);
  await eventually(
    async () => {
      const res = await request('http://127.0.0.1:15672/api/overview?columns=rabbitmq_version', { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` } });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`15672 answers ${res.statusCode} after the management restart`);
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

/**
 * `rabbit_networking:start_ssl_listener/3` answers `ok`, or an `already_started` error when the
 * port is taken: a listener with stale certificates is stopped first (the stop throws when there
 * is none, hence the catch), and the PEM cache cleared so the files are read again.
 */
async function startAmqpsListener(files: CertFiles): Promise<void> {
  const address = `{"127.0.0.1", ${AMQPS_PORT}}`;
  const result = await rabbitEval(
    `catch rabbit_networking:stop_tcp_listener(${address}), ssl:clear_pem_cache(), ` +
      `rabbit_networking:start_ssl_listener(${address}, [${sslOptions(files)}, {verify, verify_none}, {fail_if_no_peer_cert, false}], 1).`,
  );
  if (result !== 'ok') throw new Error(`could not start the AMQPS listener on ${AMQPS_PORT}: ${result}`);
}

/**
 * Sets `ssl_config` next to the plain `tcp_config` (the plugin's default, port 15672, unless one
 * is configured) and restarts the management application, which then serves both.
 */
async function startManagementHttps(files: CertFiles, ca: string): Promise<void> {
  const result = await rabbitEval(`
    case application:get_env(rabbitmq_management, listener) of
      {ok, _} -> legacy_listener_configured;
      undefined ->
        Tcp = case application:get_env(rabbitmq_management, tcp_config) of {ok, T} -> T; undefined -> [{port, 15672}] end,
        ok = application:set_env(rabbitmq_management, tcp_config, Tcp),
        ok = application:set_env(rabbitmq_management, ssl_config, [{port, ${MANAGEMENT_TLS_PORT}}, {ssl, true}, {ip, "127.0.0.1"}, ${sslOptions(files)}]),
        ssl:clear_pem_cache(),
        ok = application:stop(rabbitmq_management),
        case application:start(rabbitmq_management) of
          ok -> ok;
          Failed -> application:unset_env(rabbitmq_management, ssl_config), application:start(rabbitmq_management), Failed
        end
    end.`);
  if (result !== 'ok') throw new Error(`could not add the management HTTPS listener on ${MANAGEMENT_TLS_PORT}: ${result}`);
  const tls = new Agent({ connect: { ca } });
  try {
    await eventually(
      async () => {
        for (const [url, dispatcher] of [[`http://127.0.0.1:15672`, undefined], [`https://127.0.0.1:${MANAGEMENT_TLS_PORT}`, tls]] as const) {
          const res = await request(`${url}/api/overview?columns=rabbitmq_version`, { headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` }, ...(dispatcher ? { dispatcher } : {}) });
          await res.body.dump();
          if (res.statusCode !== 200) throw new Error(`${url} answers ${res.statusCode} after the management restart`);
        }
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
  } finally {
    await tls.close();
  }
}
