/**
 * Keeps V8's young generation small for `rabbitbatch publish` and `rabbitbatch operator`, so
 * their RSS stays flat however long the file is or the operator runs. Imported first by main.ts: it runs before the rest of the CLI is evaluated.
 *
 * Why: a publish run allocates at a steady rate while a window of in-flight messages is always
 * alive, so every scavenge copies some survivors, and V8 doubles the young generation each time
 * the survivors since the last growth exceed its size (16 → 32 → 64 → 128 MB here). The heap in
 * use stays around 20-60 MB; the RSS grew with the run's length only because of that growth
 * (measured: 128 MB of young generation after about a minute). Capping the semi-space at 8 MB
 * (the size V8 starts with) kept the rate unchanged. The operator: 1 MB. V8 grows the young
 * generation to its cap while the modules load and keeps it, which cost the idle operator ~11 MB
 * of RSS at 16 MB; 1,000 batches × 10 queues reached Ready no slower at 1 MB (bench/memory.ts,
 * same run), since the operator waits on RabbitMQ, not on the garbage collector.
 *
 * Guarantees
 * - `publish` runs with `--max-semi-space-size=8` and `operator` with 1, unless a semi-space size is already given
 *   (node flag or NODE_OPTIONS): the process re-executes itself with the flag (`process.execve`:
 *   same pid, same stdio, nothing else running yet). The flag only works at start-up;
 *   `v8.setFlagsFromString` afterwards has no effect on the young generation (checked).
 * - Other commands are left alone.
 *
 * Failure modes
 * - Where `process.execve` does not exist (Windows, Node < 22.15) publish runs without the cap.
 */
const SEMI_SPACE_MB: Record<string, number> = { publish: 8, operator: 1 };

function capYoungGeneration(): void {
  const mb = SEMI_SPACE_MB[process.argv[2] ?? ''];
  if (mb === undefined || process.platform === 'win32' || !process.execve) return;
  const flagged = (args: readonly string[]) => args.some((a) => a.startsWith('--max-semi-space-size'));
  if (flagged(process.execArgv) || flagged((process.env.NODE_OPTIONS ?? '').split(/\s+/))) return;
  process.execve(process.execPath, [process.execPath, `--max-semi-space-size=${mb}`, ...process.execArgv, ...process.argv.slice(1)]);
}

capYoungGeneration();
