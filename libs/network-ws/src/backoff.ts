/** A source of uniform random numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/** Exponential backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter (ms). */
  readonly baseMs: number;
  /** Upper bound of any delay (ms). */
  readonly maxMs: number;
}

/**
 * The delay before retry number `attempt` (0-based): exponential with "equal jitter".
 *
 * @remarks `cap = min(maxMs, baseMs * 2^attempt)`; the delay is uniform in `[cap/2, cap)`, so
 * retries never synchronise across devices yet never fall below half the cap.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: RandomSource): number {
  const exp = Math.min(attempt, 52);
  const cap = Math.min(options.maxMs, options.baseMs * 2 ** exp);
  return Math.floor(cap / 2 + (random() * cap) / 2);
}

/**
 * A seeded pseudo-random source (mulberry32) for deterministic jitter in tests and simulations.
 *
 * @remarks Same seed, same sequence. Not for cryptography.
 */
export function seededRandom(seed: number): RandomSource {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
