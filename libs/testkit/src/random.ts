/**
 * A small seeded pseudo-random generator (mulberry32) so every randomized test and
 * simulation can be replayed from one integer.
 *
 * @remarks Not cryptographic. Same seed → same sequence on every platform (only 32-bit
 * integer arithmetic is used).
 */
export interface SeededRandom {
  /** The next float in [0, 1). */
  (): number;
  /** The seed this stream was created from. */
  readonly seed: number;
  /** An integer in [0, maxExclusive); `maxExclusive` must be a positive safe integer. */
  int(maxExclusive: number): number;
  /** An integer in [min, maxExclusive). */
  range(min: number, maxExclusive: number): number;
  /** True with probability `p` (always false for p ≤ 0, always true for p ≥ 1); consumes exactly one draw. */
  chance(p: number): boolean;
  /** One element of a non-empty array, chosen uniformly. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy of `items` (Fisher–Yates); the input is not modified. */
  shuffle<T>(items: readonly T[]): T[];
  /** A new, independent stream derived from this one (consumes one draw). */
  fork(): SeededRandom;
}

/**
 * Creates a seeded random stream (mulberry32).
 *
 * @remarks `seed` must be a safe integer; it is folded to 32 bits, so seeds that differ
 * by a multiple of 2^32 give the same stream.
 */
export function seededRandom(seed: number): SeededRandom {
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`seededRandom: seed must be a safe integer, got ${seed}`);
  // Fold the high bits in so that large seeds (Date.now(), FC_SEED) do not collide trivially.
  let state = (seed ^ Math.floor(seed / 0x1_0000_0000)) >>> 0;

  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };

  const int = (maxExclusive: number): number => {
    if (!Number.isSafeInteger(maxExclusive) || maxExclusive <= 0) {
      throw new RangeError(`SeededRandom.int: bound must be a positive safe integer, got ${maxExclusive}`);
    }
    return Math.floor(next() * maxExclusive);
  };

  const api = {
    seed,
    int,
    range: (min: number, maxExclusive: number): number => min + int(maxExclusive - min),
    chance: (p: number): boolean => next() < p,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new RangeError('SeededRandom.pick: empty array');
      return items[int(items.length)] as T;
    },
    shuffle: <T>(items: readonly T[]): T[] => {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [out[i], out[j]] = [out[j] as T, out[i] as T];
      }
      return out;
    },
    fork: (): SeededRandom => seededRandom(Math.floor(next() * 0x1_0000_0000)),
  };
  return Object.assign(next, api);
}
