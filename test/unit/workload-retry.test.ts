// The workload's retry backoff (pure): doubles per failure in a row, capped, with equal jitter.
import { describe, expect, it } from 'vitest';
import { retryDelay } from '../../src/workload/generator.ts';

describe('retry backoff', () => {
  it('doubles with each failure in a row up to the cap; half of it is fixed, half random', () => {
    const low = (n: number) => retryDelay(100, 5000, n, () => 0);
    const high = (n: number) => retryDelay(100, 5000, n, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(high)).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect([1, 2, 3, 7].map(low)).toEqual([50, 100, 200, 2500]);
    expect(retryDelay(100, 5000, 1000, () => 1)).toBe(5000); // no overflow
  });

  it('clients cut at the same moment do not retry in lockstep', () => {
    const seen = new Set(Array.from({ length: 20 }, () => retryDelay(1000, 5000, 3)));
    expect(seen.size).toBeGreaterThan(1);
    for (const d of seen) expect(d).toBeGreaterThanOrEqual(2000);
  });
});
