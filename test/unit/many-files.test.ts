// many-files and bench "scale: files": the burst's tail and rates, lsyncd's CPU reading, the knobs.
import { describe, expect, it } from 'vitest';
import { burstTail, parseCpu, tailTargetSeconds } from '../../scenarios/many-files.ts';
import { scaleFileSizes } from '../../bench/scale-files.ts';

describe('burstTail', () => {
  it('is the last arrival minus the last ack, with files/s from the start to the last arrival', () => {
    const tail = burstTail([1_500, 4_000, 2_000], 0, 3_000);
    expect(tail).toEqual({ arrived: 3, tailMs: 1_000, replicatedPerS: 0.75 });
  });

  it('is negative when sub held everything before the upload ended', () => {
    expect(burstTail([100, 200], 0, 1_000)?.tailMs).toBe(-800);
  });

  it('is undefined without arrivals', () => {
    expect(burstTail([], 0, 1_000)).toBeUndefined();
  });
});

describe('parseCpu', () => {
  it('reads ticks of lsyncd and its children at the clock rate', () => {
    expect(parseCpu('250 1200 100\n')).toEqual({ self: 2.5, children: 12 });
  });

  it('is undefined when lsyncd does not run', () => {
    expect(parseCpu('')).toBeUndefined();
    expect(parseCpu('1 2 0')).toBeUndefined();
  });
});

describe('knobs', () => {
  it('tail target: 2 s by default, seconds from WHARF_MANY_FILES_TAIL_S, bad values named', () => {
    const old = process.env.WHARF_MANY_FILES_TAIL_S;
    try {
      delete process.env.WHARF_MANY_FILES_TAIL_S;
      expect(tailTargetSeconds()).toBe(2);
      process.env.WHARF_MANY_FILES_TAIL_S = '3.5';
      expect(tailTargetSeconds()).toBe(3.5);
      process.env.WHARF_MANY_FILES_TAIL_S = 'soon';
      expect(() => tailTargetSeconds()).toThrow(/WHARF_MANY_FILES_TAIL_S: expected seconds/);
    } finally {
      if (old === undefined) delete process.env.WHARF_MANY_FILES_TAIL_S;
      else process.env.WHARF_MANY_FILES_TAIL_S = old;
    }
  });

  it('bench sizes: 1k and 5k, 20k only with WHARF_BENCH_FILES_20K=1', () => {
    expect(scaleFileSizes({})).toEqual([1000, 5000]);
    expect(scaleFileSizes({ WHARF_BENCH_FILES_20K: '1' })).toEqual([1000, 5000, 20000]);
  });
});
