/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and ranks functions by self time:
 * each node's hitCount × the mean sample interval, summed per function name and script, so
 * one function reached through many call paths counts once. Idle time is left out.
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  nodes: { id: number; hitCount?: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  endTime: number;
  samples: number[];
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

export function topSelfTime(file: string, limit = 10): SelfTime[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const intervalMs = (profile.endTime - profile.startTime) / 1000 / Math.max(1, profile.samples.length);
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    if (n.callFrame.functionName === '(idle)') continue; // waiting, not work
    const ms = (n.hitCount ?? 0) * intervalMs;
    const where = n.callFrame.url ? ` ${n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|src)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${n.callFrame.functionName || '(anonymous)'}${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    total += ms;
  }
  return [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, ms]) => ({ name, ms, share: ms / Math.max(1, total) }));
}
