/**
 * Changes to the machine's RabbitMQ for fault tests only: stopping and starting the RabbitMQ
 * application (not the Erlang node), and the memory high watermark. `rabbitmqctl` runs as an
 * asynchronous child process: a synchronous one would freeze this process, and with it the
 * operator under test, for the whole fault.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mgmt } from './rabbit.js';
import { eventually } from './wait.js';

const run = promisify(execFile);

/** `rabbitmqctl <args>`, its trimmed stdout. */
export async function rabbitmqctl(...args: string[]): Promise<string> {
  return (await run('rabbitmqctl', args, { encoding: 'utf8' })).stdout.trim();
}

export async function stopBroker(): Promise<void> {
  await rabbitmqctl('stop_app');
}

export async function startBroker(): Promise<void> {
  await rabbitmqctl('start_app');
  await eventually(async () => {
    const res = await mgmt('/api/overview?columns=rabbitmq_version');
    if (res.status !== 200) throw new Error(`management API answers ${res.status}`);
  }, { timeoutMs: 60_000, intervalMs: 500 });
}

/**
 * The broker's memory high watermark as `set_vm_memory_high_watermark` takes it back: a fraction
 * (`0.4`) or `absolute <bytes>` (`{absolute, N}` in Erlang).
 */
export async function readWatermark(): Promise<string[]> {
  const raw = await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().');
  const absolute = /^\{absolute,\s*(\d+)\}$/.exec(raw);
  if (absolute) return ['absolute', absolute[1]!];
  if (!/^\d+(\.\d+)?(e-?\d+)?$/.test(raw)) throw new Error(`unexpected memory high watermark ${raw}`);
  return [raw];
}

export async function setWatermark(value: string[]): Promise<void> {
  await rabbitmqctl('-q', 'set_vm_memory_high_watermark', ...value);
}
