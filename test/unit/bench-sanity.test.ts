/** What bench-smoke and the README generator refuse as a benchmark figure. */
import { describe, expect, it } from 'vitest';
import { problems, type BenchResult } from '../../bench/lib/sanity.js';

const result = (rows: BenchResult['rows'], date = '2026-12-02T12:00:00.000Z'): BenchResult => ({ name: 'b', machine: { date, quick: true }, rows });

describe('benchmark sanity', () => {
  it('accepts finite figures and ratios in range', () => {
    expect(problems(result([{ name: 'rate', value: 800, unit: 'queues/s', ratio: 0.8 }, { name: 'requests', value: 0, unit: 'requests' }]))).toEqual([]);
  });

  it('refuses a figure that could not be measured, a zero rate, a ratio out of range and a stale file', () => {
    const bad = result(
      [
        { name: 'nan', value: null as unknown as number, unit: 'ms' },
        { name: 'rate', value: 0, unit: 'msg/s' },
        { name: 'ratio', value: 1, unit: 'ms', ratio: null as unknown as number },
        { name: 'huge', value: 1, unit: 'requests', ratio: 1e6 },
      ],
      '2026-12-01T00:00:00.000Z',
    );
    const found = problems(bad, new Date('2026-12-02T00:00:00.000Z'));
    expect(found).toHaveLength(5);
    expect(found.join('\n')).toMatch(/before this run started[\s\S]*"nan": value null[\s\S]*"rate": rate 0[\s\S]*"ratio": ratio null[\s\S]*"huge": ratio 1000000/);
  });
});
