/**
 * At most a fixed number of tasks at once; the others wait their turn in call order.
 *
 * @remarks A finishing task hands its slot straight to the first waiter, so a later caller never
 * overtakes one that is already waiting.
 */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError('Slots limit must be a positive integer');
    this.#free = limit;
  }

  /** Runs `task` once a slot is free; its result or error is passed on. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next === undefined) this.#free++;
      else next();
    }
  }
}
