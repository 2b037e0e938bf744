/**
 * Child processes for the benchmarks: the `rabbitbatch` entry point from source (tsx) or from
 * the compiled output (what the image and `bin/rabbitbatch.js` run), and peak RSS read from
 * `/proc/<pid>/status` (VmHWM, the kernel's high-water mark, so a sample misses no peak that
 * happened before it).
 */
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;
/** `source`: src/ through tsx; otherwise the directory of a private build (see `buildImageLayout`). */
export type Entry = 'source' | { builtDir: string };

/**
 * Compiles src/ as the Dockerfile does (`npm run build`, tsconfig.build.json) into a temporary
 * directory laid out like the image (`dist/`, `package.json`, `node_modules`; the CLI reads
 * `../../package.json` from `dist/cli/main.js`). Not the checkout's own `dist/`:
 * `bin/rabbitbatch.js` prefers `dist/` when it exists, so building there would leave every later
 * run in this shared tree on a stale compiled copy.
 */
export function buildImageLayout(): { builtDir: string; remove: () => void } {
  const builtDir = mkdtempSync(join(tmpdir(), 'rabbitbatch-built-'));
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', join(builtDir, 'dist')], { cwd: ROOT, stdio: 'inherit' });
  copyFileSync(join(ROOT, 'package.json'), join(builtDir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(builtDir, 'node_modules'));
  return { builtDir, remove: () => rmSync(builtDir, { recursive: true, force: true }) };
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
