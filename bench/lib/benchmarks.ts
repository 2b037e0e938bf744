/** Every benchmark of `make bench`, in the order it runs them: one script `bench/<name>.ts` each, writing `<name>.json`. */
export const BENCHMARKS = ['batch', 'apply-ready', 'reapply', 'steady-state', 'restart', 'cli', 'scale', 'memory', 'drift'] as const;
