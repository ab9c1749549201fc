import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, seededRandom } from './backoff.js';

describe('backoffDelay', () => {
  it('stays in [cap/2, cap) where cap = min(max, base·2^attempt)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, baseMs, extra, r) => {
          const maxMs = baseMs + extra;
          const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 52));
          const delay = backoffDelay(attempt, { baseMs, maxMs }, () => r);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(cap / 2));
          expect(delay).toBeLessThanOrEqual(cap);
        },
      ),
    );
  });

  it('grows exponentially until the cap', () => {
    const mid = () => 0.5;
    const delays = [0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { baseMs: 100, maxMs: 1_000 }, mid));
    expect(delays).toEqual([75, 150, 300, 600, 750, 750, 750]);
  });
});

describe('seededRandom', () => {
  it('is reproducible per seed, differs across seeds and stays in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 1000 }, () => c())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    // Roughly uniform: each tenth of [0, 1) gets 5-15 % of the draws.
    for (let i = 0; i < 10; i++) {
      const n = xs.filter((x) => x >= i / 10 && x < (i + 1) / 10).length;
      expect(n).toBeGreaterThan(50);
      expect(n).toBeLessThan(150);
    }
  });
});
