/**
 * Child processes for the benchmarks: the `rabbitbatch` entry point from source (tsx) or from
 * the compiled output (what the image and `bin/rabbitbatch.js` run), and peak RSS read from
 * `/proc/<pid>/status` (VmHWM, the kernel's high-water mark, so a sample misses no peak that
 * happened before it).
 */
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = new URL('../../', import.meta.url).pathname;
/** `source`: src/ through tsx; otherwise the directory of a private build (see `buildImageLayout`). */
export type Entry = 'source' | { builtDir: string };

/**
 * Compiles src/ as the Dockerfile does (`npm run build`, tsconfig.build.json) into a temporary
 * directory laid out like the image (`dist/`, `package.json`, `node_modules`; the CLI reads
 * `../../package.json` from `dist/cli/main.js`). Not the checkout's own `dist/`:
 * `bin/rabbitbatch.js` prefers `dist/` when it exists, so building there would leave every later
 * run in this shared tree on a stale compiled copy. `ref`: build that commit's src/ instead of
 * the working tree's (a previous build to compare with in the same run); node_modules is this
 * checkout's either way.
 */
export function buildImageLayout(ref?: string): { builtDir: string; commit: string; remove: () => void } {
  const builtDir = mkdtempSync(join(tmpdir(), 'rabbitbatch-built-'));
  const git = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const commit = ref ? git(['rev-parse', '--short', ref]) : `${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain', 'src']) ? '+changes' : ''}`;
  let tree = ROOT;
  if (ref) {
    tree = join(builtDir, 'tree');
    mkdirSync(tree);
    execFileSync('sh', ['-c', `git archive ${commit} src tsconfig.json tsconfig.build.json package.json | tar -x -C "${tree}"`], { cwd: ROOT, stdio: 'inherit' });
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  }
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(tree, 'tsconfig.build.json'), '--outDir', join(builtDir, 'dist')], { cwd: tree, stdio: 'inherit' });
  copyFileSync(join(tree, 'package.json'), join(builtDir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(builtDir, 'node_modules'));
  return { builtDir, commit, remove: () => rmSync(builtDir, { recursive: true, force: true }) };
}

/** The environment variables of the operator container that tune the runtime, not the operator. */
const RUNTIME_ENV = ['NODE_OPTIONS', 'MALLOC_ARENA_MAX'];

/**
 * The runtime settings of the operator container in deploy/default/deployment.yaml (V8 flags in
 * NODE_OPTIONS, glibc's MALLOC_ARENA_MAX), so a benchmark runs the compiled operator as the
 * Deployment does.
 */
export function deploymentRuntimeEnv(): Record<string, string> {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/default/deployment.yaml'), 'utf8')).map((d) => d.toJSON() as { kind?: string; spec?: { template?: { spec?: { containers?: { name: string; env?: { name: string; value?: string }[] }[] } } } });
  const container = docs.find((d) => d?.kind === 'Deployment')?.spec?.template?.spec?.containers?.find((c) => c.name === 'operator');
  return Object.fromEntries((container?.env ?? []).filter((e) => RUNTIME_ENV.includes(e.name) && e.value !== undefined).map((e) => [e.name, e.value!]));
}

/** Node arguments that run `rabbitbatch <args>` from `entry`; node flags (e.g. --cpu-prof) first. */
export function rabbitbatchArgs(entry: Entry, args: string[], nodeFlags: string[] = []): string[] {
  return entry === 'source' ? [...nodeFlags, '--import', 'tsx', 'src/cli/main.ts', ...args] : [...nodeFlags, join(entry.builtDir, 'dist/cli/main.js'), ...args];
}

/** One memory field of /proc/<pid>/status, in MB; undefined once the process has exited. */
function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Peak RSS so far of a live process, in MB; undefined once it has exited. */
export const peakRssMb = (pid: number) => procStatusMb(pid, 'VmHWM');

/** Current RSS (VmRSS) of a live process, in MB; undefined once it has exited. */
export const rssMb = (pid: number) => procStatusMb(pid, 'VmRSS');

/**
 * What a live process's RSS is made of (/proc/<pid>/smaps_rollup), in MB: anonymous memory (the
 * V8 heap, malloc, stacks) and file-backed pages (mostly the node binary's code and data, which
 * every node process on the machine shares); undefined once it has exited.
 */
export function rssKinds(pid: number): { anonymousMb: number; fileMb: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { anonymousMb: kb('Anonymous') / 1024, fileMb: (kb('Rss') - kb('Anonymous')) / 1024 };
  } catch {
    return undefined;
  }
}

/** Runs a child to its end, sampling VmHWM every 20 ms (the last sample is at most 20 ms older than the exit). */
export async function runWithPeakRss(args: string[], options: SpawnOptions = {}): Promise<{ code: number | null; peakMb: number; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], ...options });
  let peakMb = 0;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-4000)));
  const sampler = setInterval(() => (peakMb = Math.max(peakMb, peakRssMb(child.pid!) ?? 0)), 20);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  return { code, peakMb, stderr };
}
