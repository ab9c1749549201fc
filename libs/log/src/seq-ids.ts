import { EventNumbers, Int32Column } from '@accord/domain';
import type { EventId } from '@accord/protocol';

/** How far past the dense part a sequence number may land and still be stored densely. */
const DENSE_REACH = 1 << 16;

/**
 * One device's event ids by sequence number.
 *
 * @remarks A device's sequence numbers are contiguous from 1, so they are kept densely, as the
 * number each id has in the log's {@link EventNumbers} (shared with the projection folder): 4 bytes
 * an event in a typed array, and no string (the id is made again from its number when asked for),
 * where an array of the id strings cost 8 bytes a slot and kept every id's string (48 bytes)
 * resident. A number far past the end (a hostile or corrupt envelope: any positive safe integer is
 * a valid `seq`) goes to a small side map instead, so that it can neither blow up the column nor be
 * lost to JavaScript's array-index limit.
 */
export class SeqIds {
  readonly #numbers: EventNumbers;
  /** seq → the id's number + 1 (0: none). */
  readonly #dense = new Int32Column();
  /** Sequence numbers below this are stored densely. */
  #denseLength = 1;
  readonly #sparse = new Map<number, EventId>();

  /** Ids by seq, numbered in `numbers` (the log's table; default a table of its own). */
  constructor(numbers: EventNumbers = new EventNumbers()) {
    this.#numbers = numbers;
  }

  /** The id at `seq`, if held (a string made again from its number). */
  get(seq: number): EventId | undefined {
    if (seq >= this.#denseLength) return this.#sparse.get(seq);
    const n = this.#dense.get(seq);
    return n === 0 ? undefined : this.#numbers.id(n - 1);
  }

  /** True when the id at `seq` is `id` (no string made). */
  holds(seq: number, id: EventId): boolean {
    if (seq >= this.#denseLength) return this.#sparse.get(seq) === id;
    const n = this.#dense.get(seq);
    return n !== 0 && this.#numbers.find(id) === n - 1;
  }

  /** Records the id at `seq` (callers never overwrite one: a seq used twice is refused before). */
  set(seq: number, id: EventId): void {
    if (seq < this.#denseLength + DENSE_REACH) {
      if (seq >= this.#denseLength) this.#denseLength = seq + 1;
      this.#dense.set(seq, this.#numbers.number(id) + 1);
      // Far numbers that the dense part has now reached move into it.
      if (this.#sparse.size > 0) {
        for (const [far, farId] of this.#sparse) {
          if (far < this.#denseLength + DENSE_REACH) {
            this.#sparse.delete(far);
            this.set(far, farId);
          }
        }
      }
    } else {
      this.#sparse.set(seq, id);
    }
  }

  /** The highest sequence number held (0 when none). */
  max(): number {
    let max = 0;
    for (let seq = this.#denseLength - 1; seq > 0; seq--) {
      if (this.#dense.get(seq) !== 0) {
        max = seq;
        break;
      }
    }
    for (const seq of this.#sparse.keys()) if (seq > max) max = seq;
    return max;
  }
}
