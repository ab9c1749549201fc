import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows the burst, then refills at the rate', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 5, () => now);
    expect([1, 2, 3, 4, 5].map(() => bucket.take())).toEqual([true, true, true, true, true]);
    expect(bucket.take()).toBe(false);
    now += 100; // 10/s → one token per 100 ms
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    now += 10_000; // never above capacity
    expect(bucket.available()).toBe(5);
  });

  it('takes all or nothing', () => {
    let now = 0;
    const bucket = new TokenBucket(100, 100, () => now);
    expect(bucket.take(60)).toBe(true);
    expect(bucket.take(60)).toBe(false);
    expect(bucket.available()).toBe(40);
    now = 200;
    expect(bucket.take(60)).toBe(true);
  });

  it('never grants more than capacity + rate × elapsed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 20 })), {
          maxLength: 200,
        }),
        (steps) => {
          let now = 0;
          const bucket = new TokenBucket(100, 30, () => now);
          let granted = 0;
          for (const [dt, n] of steps) {
            now += dt;
            if (bucket.take(n)) granted += n;
          }
          expect(granted).toBeLessThanOrEqual(30 + (100 * now) / 1000 + 1e-9);
        },
      ),
    );
  });

  it('refuses a non-positive rate or capacity', () => {
    expect(() => new TokenBucket(0, 1, () => 0)).toThrow(RangeError);
    expect(() => new TokenBucket(1, 0, () => 0)).toThrow(RangeError);
  });
});
