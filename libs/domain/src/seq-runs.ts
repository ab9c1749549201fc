/**
 * A non-decreasing sequence of numbers (the confirmed seqs of a fold's events, in fold order) kept
 * as runs of consecutive numbers.
 *
 * @remarks An honest relay numbers its acceptances 1, 2, 3, … once each, so a whole history is one
 * run: two numbers instead of an array slot (8 bytes, plus the array's growth slack) per event. A
 * seq given twice, or a gap, starts a new run; any non-decreasing sequence is held exactly.
 */
export class SeqRuns {
  /** Where each run starts in the sequence. */
  readonly #starts: number[] = [];
  /** The number each run starts with. */
  readonly #firsts: number[] = [];
  #length = 0;

  /** Number of numbers held. */
  get length(): number {
    return this.#length;
  }

  /** Number of runs (for tests). */
  get runs(): number {
    return this.#starts.length;
  }

  /** The last number, or undefined when empty. */
  get last(): number | undefined {
    return this.#length === 0 ? undefined : this.at(this.#length - 1);
  }

  /** Appends `n` (not below the last one: the caller keeps the sequence non-decreasing). */
  push(n: number): void {
    const r = this.#starts.length - 1;
    if (r < 0 || n !== this.#firsts[r]! + (this.#length - this.#starts[r]!)) {
      this.#starts.push(this.#length);
      this.#firsts.push(n);
    }
    this.#length++;
  }

  /** The number at index `i` (0 ≤ i < length). */
  at(i: number): number {
    // The last run starting at or before i.
    let lo = 0;
    let hi = this.#starts.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (this.#starts[mid]! <= i) lo = mid;
      else hi = mid;
    }
    return this.#firsts[lo]! + (i - this.#starts[lo]!);
  }

  /** The index of the first number ≥ `n` (`length` when there is none). */
  lowerBound(n: number): number {
    const runs = this.#starts.length;
    // The first run whose last number is ≥ n (runs are non-decreasing end to end).
    let lo = 0;
    let hi = runs;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const end = mid + 1 < runs ? this.#starts[mid + 1]! : this.#length;
      if (this.#firsts[mid]! + (end - 1 - this.#starts[mid]!) < n) lo = mid + 1;
      else hi = mid;
    }
    if (lo === runs) return this.#length;
    return this.#starts[lo]! + Math.max(0, n - this.#firsts[lo]!);
  }
}
