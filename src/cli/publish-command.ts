/**
 * `rabbitbatch publish --file messages.jsonl`: streaming batch publish with publisher confirms
 * (src/batch/publish). Exit codes: 0 all confirmed, 1 usage error or an invalid line (stopped),
 * 2 connection error, 3 some messages nacked or returned.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import type { ConfirmChannel } from 'amqplib';
import { publishFile } from '../batch/publish/publisher.js';
import { defaultConnection, loadEnv } from '../config/config.js';
import { AmqpConnection } from '../rabbit/amqp-connection.js';
import { ChannelPool } from '../rabbit/channel-pool.js';
import { describeConnectFailure } from '../rabbit/network-errors.js';

interface PublishFlags {
  file: string;
  exchange: string;
  routingKey?: string;
  raw?: boolean;
  vhost: string;
  amqpUrl?: string;
  caFile?: string;
  checkpoint?: string;
  resumeFrom?: string;
  window: string;
  skipInvalid?: boolean;
}

export function registerPublishCommand(program: Command): void {
  program
    .command('publish')
    .description('publish one message per line of a file (JSON lines, or --raw bodies), streamed, with publisher confirms')
    .requiredOption('--file <file>', 'JSON lines {"body", "routingKey", "headers", "properties"}, or "-" for stdin')
    .option('--exchange <exchange>', 'exchange to publish to ("" = default exchange: the routing key names the queue)', '')
    .option('--routing-key <key>', 'routing key for lines that do not name one')
    .option('--raw', 'each line is a message body')
    .option('--vhost <vhost>', 'vhost', '/')
    .option('--amqp-url <url>', 'AMQP URL (env RABBITMQ_AMQP_URL; default amqp://127.0.0.1:5672, credentials from RABBITMQ_USERNAME/PASSWORD)')
    .option('--ca-file <file>', 'PEM CA bundle for amqps:// (env RABBITMQ_CA_FILE)')
    .option('--checkpoint <file>', 'keeps the last line up to which everything is confirmed; resumes from it when present')
    .option('--resume-from <line>', 'skip lines up to and including this one')
    .option('--window <n>', 'unconfirmed messages at most', '1000')
    .option('--skip-invalid', 'report invalid lines and go on instead of stopping')
    .action(async (f: PublishFlags) => {
      process.exitCode = await publish(f);
    });
}

async function publish(f: PublishFlags): Promise<number> {
  const env = loadEnv();
  const url = new URL(f.amqpUrl ?? env.RABBITMQ_AMQP_URL);
  if (!url.username) {
    url.username = encodeURIComponent(env.RABBITMQ_USERNAME);
    url.password = encodeURIComponent(env.RABBITMQ_PASSWORD);
  }
  url.pathname = `/${encodeURIComponent(f.vhost)}`;
  if (f.file !== '-' && !existsSync(f.file)) {
    process.stderr.write(`rabbitbatch: ${f.file} does not exist\n`);
    return 1;
  }
  if (f.raw && !f.routingKey && f.exchange === '') {
    process.stderr.write('rabbitbatch: --raw with the default exchange needs --routing-key (the queue name): raw lines carry no routing key\n');
    return 1;
  }
  const resumeFrom = f.resumeFrom !== undefined ? Number(f.resumeFrom) : f.checkpoint && existsSync(f.checkpoint) ? Number(readFileSync(f.checkpoint, 'utf8').trim()) : 0;
  const ca = f.caFile ? readFileSync(f.caFile, 'utf8') : defaultConnection(env).ca;
  // No reconnect loop for a first connect that fails: the cause is printed and the command exits 2.
  const connection = new AmqpConnection({ url: url.href, connectionName: 'rabbitbatch-publish', retryFirstConnect: false, ...(ca ? { ca } : {}) });
  const pool = new ChannelPool<ConfirmChannel>({ connection, size: 1, confirm: true });
  const abort = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping: waiting for outstanding confirms...\n');
    abort.abort();
  });
  const bar = process.stderr.isTTY && f.file !== '-' ? new cliProgress.SingleBar({ format: 'publishing [{bar}] {percentage}% | {value}/{total} bytes | {confirmed} confirmed | ETA {eta}s' }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(statSync(f.file).size, 0, { confirmed: 0 });
  let channel: ConfirmChannel | undefined;
  try {
    try {
      await connection.connection();
    } catch (err) {
      throw new Error(`cannot connect to ${connection.endpoint}${url.pathname === '/%2F' ? '' : ` (vhost ${f.vhost})`}: ${describeConnectFailure(err)}`, { cause: err });
    }
    channel = await pool.acquire();
    const s = await publishFile({
      channel,
      file: f.file,
      exchange: f.exchange,
      ...(f.routingKey ? { routingKey: f.routingKey } : {}),
      raw: f.raw ?? false,
      window: Number(f.window),
      resumeFrom,
      ...(f.checkpoint ? { checkpoint: f.checkpoint } : {}),
      skipInvalid: f.skipInvalid ?? false,
      signal: abort.signal,
      connection,
      onProgress: (p) => bar?.update(p.bytes, { confirmed: p.confirmed }),
    });
    await pool.release(channel);
    channel = undefined;
    bar?.stop();
    const rate = s.confirmed / Math.max(s.seconds, 0.001);
    process.stderr.write(`published ${s.published}, confirmed ${s.confirmed}, failed ${s.failed.length}, invalid ${s.invalid.length} in ${s.seconds.toFixed(1)} s (${Math.round(rate)} msg/s)\n`);
    for (const x of [...s.invalid, ...s.failed].slice(0, 20)) process.stderr.write(`  line ${x.line}: ${x.reason}\n`);
    if (s.stopped !== 'end') process.stderr.write(`stopped at line ${s.lastLine} (${s.stopped}); everything up to line ${s.checkpoint} is confirmed: resume with --resume-from ${s.checkpoint}${f.checkpoint ? ` or --checkpoint ${f.checkpoint}` : ''}\n`);
    if (s.stopped === 'invalid') return 1;
    return s.failed.length > 0 || s.invalid.length > 0 ? 3 : 0;
  } catch (err) {
    bar?.stop();
    process.stderr.write(`rabbitbatch: ${(err as Error).message}\n`);
    return 2;
  } finally {
    // Every handle goes, whatever failed: a channel still borrowed would make the pool's drain
    // wait forever, and closing the connection first ends any connect or channel open in flight.
    if (channel) await pool.destroy(channel).catch(() => undefined);
    await connection.close();
    await pool.close().catch(() => undefined);
  }
}
