import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeqRuns } from './seq-runs.js';

/** The index of the first element ≥ n of a sorted array, by a linear scan. */
function lowerBound(a: readonly number[], n: number): number {
  const i = a.findIndex((x) => x >= n);
  return i < 0 ? a.length : i;
}

function runsOf(a: readonly number[]): SeqRuns {
  const runs = new SeqRuns();
  for (const n of a) runs.push(n);
  return runs;
}

describe('SeqRuns', () => {
  it('is empty at first', () => {
    const runs = new SeqRuns();
    expect(runs.length).toBe(0);
    expect(runs.last).toBeUndefined();
    expect(runs.lowerBound(1)).toBe(0);
  });

  it('holds a sequence with gaps, repeats and a first number above 1', () => {
    const a = [5, 6, 7, 7, 8, 10, 10, 10, 11, 20];
    const runs = runsOf(a);
    expect(runs.length).toBe(a.length);
    expect(a.map((_, i) => runs.at(i))).toEqual(a);
    expect(runs.last).toBe(20);
    expect(runs.runs).toBe(6); // 5–7, 7–8, 10, 10, 10–11, 20
    for (const n of [0, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21])
      expect([n, runs.lowerBound(n)]).toEqual([n, lowerBound(a, n)]);
  });

  it('holds a gapless history as one run (two numbers), whatever its length', () => {
    const runs = new SeqRuns();
    for (let n = 1; n <= 100_000; n++) runs.push(n);
    expect(runs.runs).toBe(1);
    expect(runs.at(0)).toBe(1);
    expect(runs.at(99_999)).toBe(100_000);
    expect(runs.lowerBound(50_000)).toBe(49_999);
    expect(runs.lowerBound(100_001)).toBe(100_000);
  });

  it('equals the array it stands for: at, last and lowerBound (property, seeded)', () => {
    // Non-decreasing sequences made of steps 0 (a repeat), 1 (the usual) or more (a gap).
    const arbSeqs = fc
      .tuple(fc.nat(5), fc.array(fc.oneof(fc.constant(1), fc.constant(1), fc.nat(3)), { maxLength: 60 }))
      .map(([start, steps]) => {
        const out: number[] = [];
        let n = start;
        for (const step of steps) out.push((n += step));
        return out;
      });
    fc.assert(
      fc.property(arbSeqs, fc.integer({ min: -1, max: 200 }), (a, probe) => {
        const runs = runsOf(a);
        expect(runs.length).toBe(a.length);
        expect(a.map((_, i) => runs.at(i))).toEqual(a);
        expect(runs.last).toBe(a[a.length - 1]);
        expect(runs.lowerBound(probe)).toBe(lowerBound(a, probe));
        for (const n of a) expect(runs.lowerBound(n)).toBe(lowerBound(a, n));
      }),
    );
  });
});
