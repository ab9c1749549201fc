import { describe, expect, it } from 'vitest';
import { withSeed } from '@accord/testkit';
import { Prng } from './prng.js';

const draws = (p: Prng, n: number): number[] => Array.from({ length: n }, () => p.uint32());

describe('Prng (sfc32 seeded by splitmix32)', () => {
  it('gives the same stream for the same seed and different streams for different seeds', () =>
    withSeed('prng same seed', (seed) => {
      expect(draws(new Prng(seed), 100)).toEqual(draws(new Prng(seed), 100));
      expect(draws(new Prng(seed), 100)).not.toEqual(draws(new Prng(seed + 1), 100));
    }));

  it('draws floats in [0, 1) with a mean near one half, and ints within their bound', () =>
    withSeed('prng ranges', (seed) => {
      const p = new Prng(seed);
      let sum = 0;
      for (let i = 0; i < 20_000; i++) {
        const f = p.float();
        expect(f).toBeGreaterThanOrEqual(0);
        expect(f).toBeLessThan(1);
        sum += f;
        const n = p.int(7);
        expect(Number.isInteger(n) && n >= 0 && n < 7).toBe(true);
      }
      expect(Math.abs(sum / 20_000 - 0.5)).toBeLessThan(0.02);
      expect(() => p.int(0)).toThrow(RangeError);
    }));

  it('derives a named stream from the seed alone, not from how far the parent has drawn', () =>
    withSeed('prng streams', (seed) => {
      const fresh = new Prng(seed);
      const used = new Prng(seed);
      draws(used, 50);
      expect(draws(used.stream('f1-d3/workload'), 20)).toEqual(draws(fresh.stream('f1-d3/workload'), 20));
      expect(draws(fresh.stream('a'), 20)).not.toEqual(draws(fresh.stream('b'), 20));
    }));

  it('draws exponential gaps with the requested mean and honest chances', () =>
    withSeed('prng distributions', (seed) => {
      const p = new Prng(seed);
      let sum = 0;
      let hits = 0;
      for (let i = 0; i < 20_000; i++) {
        sum += p.exponential(100);
        if (p.chance(0.25)) hits++;
      }
      expect(Math.abs(sum / 20_000 - 100)).toBeLessThan(5);
      expect(Math.abs(hits / 20_000 - 0.25)).toBeLessThan(0.02);
      expect(p.bytes(10)).toHaveLength(10);
    }));
});
