// The chain/direct measurement's pure parts: the alternating order, the paired-ratio summary and
// its formatting (scenarios/chain-direct.ts, used by large-file and the bench).
import { describe, expect, it } from 'vitest';
import { formatRatio, formatSeries, pathOrder, summarize } from '../../scenarios/chain-direct.ts';
import { largeFileRounds } from '../../scenarios/large-file.ts';

describe('chain/direct measurement', () => {
  it('alternates the order per round and per client', () => {
    expect(pathOrder(0, 0)).toEqual(['chain', 'direct']);
    expect(pathOrder(0, 1)).toEqual(['direct', 'chain']);
    expect(pathOrder(1, 0)).toEqual(['direct', 'chain']);
    expect(pathOrder(1, 1)).toEqual(['chain', 'direct']);
    // over two rounds every client goes chain-first once and direct-first once
    for (const k of [0, 1, 2]) expect(new Set([pathOrder(0, k)[0], pathOrder(1, k)[0]]).size).toBe(2);
  });

  it('ratio = median of the rounds paired ratios, with min and max; medians per path', () => {
    const s = summarize([90, 60, 100], [100, 100, 125]);
    expect(s.ratios).toEqual([0.9, 0.6, 0.8]);
    expect(s.ratio).toBeCloseTo(0.8);
    expect(s.ratioMin).toBeCloseTo(0.6);
    expect(s.ratioMax).toBeCloseTo(0.9);
    expect(s.chainMedian).toBe(90);
    expect(s.directMedian).toBe(100);
    expect(formatRatio(s)).toBe('0.8 (0.6–0.9, 3 rounds)');
  });

  it('a failed upload leaves its round without a ratio, the others still count', () => {
    const s = summarize([80, undefined, 90], [100, 100, undefined]);
    expect(s.ratios).toEqual([0.8]);
    expect(s.ratio).toBeCloseTo(0.8);
    expect(s.directMedian).toBe(100);
    expect(formatRatio(s)).toBe('0.8 (1 round)');
    expect(formatSeries([80, undefined, 90])).toBe('85 (80, –, 90)');
  });

  it('nothing measured says so instead of a number', () => {
    const s = summarize([undefined], [100]);
    expect(Number.isNaN(s.ratio)).toBe(true);
    expect(formatRatio(s)).toBe('not measured');
    expect(formatSeries([undefined])).toBe('–');
  });

  it('WHARF_LARGE_FILE_ROUNDS: default 1, a whole number 1–20, else a clear error', () => {
    const old = process.env.WHARF_LARGE_FILE_ROUNDS;
    try {
      delete process.env.WHARF_LARGE_FILE_ROUNDS;
      expect(largeFileRounds()).toBe(1);
      process.env.WHARF_LARGE_FILE_ROUNDS = '3';
      expect(largeFileRounds()).toBe(3);
      for (const bad of ['0', '2.5', 'x', '21']) {
        process.env.WHARF_LARGE_FILE_ROUNDS = bad;
        expect(() => largeFileRounds()).toThrow(/WHARF_LARGE_FILE_ROUNDS: expected a whole number/);
      }
    } finally {
      if (old === undefined) delete process.env.WHARF_LARGE_FILE_ROUNDS;
      else process.env.WHARF_LARGE_FILE_ROUNDS = old;
    }
  });
});
