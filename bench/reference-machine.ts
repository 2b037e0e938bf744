/**
 * Writes `machine.json` into a reference run's directory: the machine, the versions of everything
 * measured, and how the run was made (argument 2), for bench/readme-table.ts.
 *   node --import tsx bench/reference-machine.ts bench/reference/<date> "<how it was run>" ["note" ...]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { AUTH, MGMT } from './lib/broker.js';

const [dir, how, ...notes] = process.argv.slice(2);
if (!dir || !how) throw new Error('usage: reference-machine.ts <dir> "<how it was run>" [note ...]');
const ROOT = new URL('../', import.meta.url).pathname;
const sh = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};
const rabbitmq = ((await (await fetch(`${MGMT}/api/overview?columns=rabbitmq_version,erlang_version`, { headers: { authorization: AUTH } })).json()) as { rabbitmq_version: string; erlang_version: string });
const pkg = JSON.parse(execFileSync('cat', ['package.json'], { cwd: ROOT, encoding: 'utf8' })) as { version: string };
const machine = {
  date: dir.split('/').filter(Boolean).pop(),
  how,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  platform: `${os.platform()} ${os.release()}`,
  versions: {
    rabbitbatch: `${pkg.version} (${sh('git', ['rev-parse', '--short', 'HEAD'])})`,
    Node: process.version,
    RabbitMQ: rabbitmq.rabbitmq_version,
    Erlang: rabbitmq.erlang_version,
    'kube-apiserver': sh(`${ROOT}.local/bin/kube-apiserver`, ['--version']).replace(/^Kubernetes /, ''),
    etcd: sh(`${ROOT}.local/bin/etcd`, ['--version']).split('\n')[0]!.replace(/^etcd Version: /, ''),
  },
  notes,
};
writeFileSync(join(dir, 'machine.json'), `${JSON.stringify(machine, null, 2)}\n`);
console.log(`wrote ${join(dir, 'machine.json')}`);
