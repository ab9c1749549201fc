import type { EventId } from '@accord/protocol';

/** How far past the dense part a sequence number may land and still be stored densely. */
const DENSE_REACH = 1 << 16;

/**
 * One device's event ids by sequence number.
 *
 * @remarks A device's sequence numbers are contiguous from 1, so they are kept in a plain array
 * (8 bytes an event, where a Map entry costs about 30). A number far past the end (a hostile or
 * corrupt envelope: any positive safe integer is a valid `seq`) goes to a small side map instead,
 * so that it can neither blow up the array nor be lost to JavaScript's array-index limit.
 */
export class SeqIds {
  readonly #dense: (EventId | undefined)[] = [undefined];
  readonly #sparse = new Map<number, EventId>();

  /** The id at `seq`, if held. */
  get(seq: number): EventId | undefined {
    return seq < this.#dense.length ? this.#dense[seq] : this.#sparse.get(seq);
  }

  /** Records the id at `seq` (callers never overwrite one: a seq used twice is refused before). */
  set(seq: number, id: EventId): void {
    if (seq < this.#dense.length + DENSE_REACH) {
      while (this.#dense.length < seq) this.#dense.push(undefined);
      this.#dense[seq] = id;
      // Far numbers that the dense part has now reached move into it.
      if (this.#sparse.size > 0) {
        for (const [far, farId] of this.#sparse) {
          if (far < this.#dense.length + DENSE_REACH) {
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
    for (let seq = this.#dense.length - 1; seq > 0; seq--) {
      if (this.#dense[seq] !== undefined) {
        max = seq;
        break;
      }
    }
    for (const seq of this.#sparse.keys()) if (seq > max) max = seq;
    return max;
  }
}
