import { deflateRawSync, inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inflatedLength } from './inflated-length.js';

describe('inflatedLength', () => {
  it('gives the length inflateRawSync gives, for any data and any limit', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 400_000 }),
        (seed, repeat, limit) => {
          const plain = new Uint8Array(seed.length * repeat);
          for (let i = 0; i < repeat; i++) plain.set(seed, i * seed.length);
          const measured = inflatedLength(deflateRawSync(plain), limit);
          if (plain.length > limit) expect(measured).toEqual({ ok: false, problem: 'too-large' });
          else expect(measured).toEqual({ ok: true, bytes: plain.length });
        },
      ),
      { seed: 1307, numRuns: 200 },
    );
  });

  it('counts output that fills its scratch buffer exactly, and many times over', () => {
    for (const n of [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 5_000_000]) {
      expect(inflatedLength(deflateRawSync(new Uint8Array(n).fill(7)), 10_000_000)).toEqual({
        ok: true,
        bytes: n,
      });
    }
  });

  it('stops a bomb at the limit', () => {
    const bomb = deflateRawSync(new Uint8Array(50_000_000)); // ≈ 50 KB
    expect(inflatedLength(bomb, 1_000_000)).toEqual({ ok: false, problem: 'too-large' });
    expect(inflatedLength(bomb, 50_000_000)).toEqual({ ok: true, bytes: 50_000_000 });
  });

  it('refuses corrupt and truncated data as inflateRawSync does, and works again after', () => {
    const good = deflateRawSync(new TextEncoder().encode('hello '.repeat(5000)));
    const truncated = good.subarray(0, good.length - 5);
    expect(() => inflateRawSync(truncated)).toThrow();
    expect(inflatedLength(truncated, 1_000_000)).toEqual({ ok: false, problem: 'corrupt' });
    expect(inflatedLength(Uint8Array.from([0xff, 0xff, 0xff, 0xff]), 1_000_000)).toEqual({
      ok: false,
      problem: 'corrupt',
    });
    expect(inflatedLength(good, 1_000_000)).toEqual({ ok: true, bytes: 30_000 });
    // A stream abandoned at the limit leaves nothing behind for the next one.
    expect(inflatedLength(good, 10)).toEqual({ ok: false, problem: 'too-large' });
    expect(inflatedLength(good, 1_000_000)).toEqual({ ok: true, bytes: 30_000 });
  });
});
