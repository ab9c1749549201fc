/**
 * A token bucket: `capacity` tokens, refilled continuously at `ratePerSecond`.
 *
 * @remarks Time comes from the injected clock (milliseconds), so tests can drive it.
 */
export class TokenBucket {
  readonly #capacity: number;
  readonly #rate: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(ratePerSecond: number, capacity: number, now: () => number) {
    if (!(ratePerSecond > 0) || !(capacity > 0))
      throw new RangeError('TokenBucket needs a positive rate and capacity');
    this.#rate = ratePerSecond;
    this.#capacity = capacity;
    this.#now = now;
    this.#tokens = capacity;
    this.#at = now();
  }

  /** Takes `n` tokens if available (true), or takes none (false). */
  take(n = 1): boolean {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#at);
    this.#at = now;
    this.#tokens = Math.min(this.#capacity, this.#tokens + (elapsed * this.#rate) / 1000);
    if (n > this.#tokens) return false;
    this.#tokens -= n;
    return true;
  }

  /** Tokens available now (without taking any). */
  available(): number {
    const elapsed = Math.max(0, this.#now() - this.#at);
    return Math.min(this.#capacity, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}
