/** Stops and starts the machine's RabbitMQ application (not the Erlang node): fault tests only. */
import { execFileSync } from 'node:child_process';
import { mgmt } from './rabbit.js';
import { eventually } from './wait.js';

export function stopBroker(): void {
  execFileSync('rabbitmqctl', ['stop_app'], { stdio: 'ignore' });
}

export async function startBroker(): Promise<void> {
  execFileSync('rabbitmqctl', ['start_app'], { stdio: 'ignore' });
  await eventually(async () => {
    const res = await mgmt('/api/overview?columns=rabbitmq_version');
    if (res.status !== 200) throw new Error(`management API answers ${res.status}`);
  }, { timeoutMs: 60_000, intervalMs: 500 });
}
