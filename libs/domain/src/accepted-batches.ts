import { MAX_ACCEPTED_PER_EVENT, readAcceptedVerdicts } from '@accord/protocol';
import type { EventId, SignedEvent } from '@accord/protocol';
import type { EventNumbers } from './event-numbers.js';

/** The `targets` of a batch's envelope: the event's data without its id strings. */
const NO_TARGETS: readonly EventId[] = Object.freeze([]);

/**
 * One relay `AcceptedVerdicts` event, held with its targets as event numbers.
 *
 * @remarks The event's `targets` are up to 1000 id strings of 26 characters: ≈ 54 bytes per
 * accepted event with the array slot, the largest single item of a device's idle heap (session
 * 15). A batch keeps them as numbers of the tracker's {@link EventNumbers} (4 bytes each) and the
 * rest of the event as given (its data's `targets` empty); {@link AcceptedBatch.event} makes the
 * whole event again on demand. The event it was made from, or the one last made, is kept weakly:
 * while anyone holds it (a status naming it as its verdict, a caller), it is the one returned, so
 * the same event is one object wherever it is seen.
 */
export class AcceptedBatch {
  readonly firstSeq: number;
  /** The target numbers, in target order (`firstSeq + i` is the confirmed seq of target `i`). */
  readonly targets: Int32Array;
  readonly #envelope: SignedEvent;
  readonly #numbers: EventNumbers;
  #event: WeakRef<SignedEvent>;

  constructor(event: SignedEvent, firstSeq: number, targets: readonly EventId[], numbers: EventNumbers) {
    this.firstSeq = firstSeq;
    this.targets = Int32Array.from(targets, (t) => numbers.number(t));
    // Spreading keeps the data's key order, so the event made again is the same, field for field.
    this.#envelope = { ...event, data: { ...(event.data as object), targets: NO_TARGETS } };
    this.#numbers = numbers;
    this.#event = new WeakRef(event);
  }

  /** The event's id. */
  get id(): EventId {
    return this.#envelope.id;
  }

  /** The event's envelope `seq` (the relay's own sequence: the latest batch wins). */
  get seq(): number {
    return this.#envelope.seq;
  }

  /** The whole event: the one still held somewhere, else made again from the numbers. */
  event(): SignedEvent {
    const held = this.#event.deref();
    if (held !== undefined) return held;
    const envelope = this.#envelope;
    const targets = Array.from(this.targets, (n) => this.#numbers.id(n));
    const event = { ...envelope, data: { ...(envelope.data as object), targets } };
    this.#event = new WeakRef(event);
    return event;
  }
}

/**
 * The relay's `AcceptedVerdicts` events, by the confirmed seqs they give: which one states that
 * event `id` is accepted at `seq`.
 *
 * @remarks Lets a status tracker keep an accepted event's standing as its confirmed seq alone (a
 * number in its map) instead of an object per event naming its verdict: at 100k events the
 * objects cost ≈ 6 MB. A relay numbers acceptances once each, so a batch is found by a binary
 * search on `firstSeq`; batches whose ranges overlap (a relay numbering twice) are all looked at.
 * Targets are held as event numbers (see {@link AcceptedBatch}): no id string per accepted event.
 */
export class AcceptedBatches {
  /** Sorted by `firstSeq` (then as added). */
  readonly #batches: AcceptedBatch[] = [];
  readonly #numbers: EventNumbers;

  /** Batches whose targets are numbered in `numbers` (the tracker's own table). */
  constructor(numbers: EventNumbers) {
    this.#numbers = numbers;
  }

  /**
   * Adds a relay `AcceptedVerdicts` event and returns its batch (undefined for anything else, or
   * malformed data, which is ignored).
   */
  add(event: SignedEvent): AcceptedBatch | undefined {
    const data = readAcceptedVerdicts(event.data);
    if (data === undefined) return undefined;
    const batch = new AcceptedBatch(event, data.firstSeq, data.targets, this.#numbers);
    const at = this.#after(data.firstSeq);
    this.#batches.splice(at, 0, batch);
    return batch;
  }

  /**
   * The batch stating that `id` is accepted at `seq`; of several, the one with the highest
   * envelope `seq` (the latest, as verdicts go). Undefined when none does.
   */
  stating(id: EventId, seq: number): SignedEvent | undefined {
    return this.#find(id, seq)?.event();
  }

  /** True when a batch states that `id` is accepted at `seq`. */
  states(id: EventId, seq: number): boolean {
    return this.#find(id, seq) !== undefined;
  }

  #find(id: EventId, seq: number): AcceptedBatch | undefined {
    const n = this.#numbers.find(id);
    if (n === undefined) return undefined;
    let found: AcceptedBatch | undefined;
    // A batch holds at most MAX_ACCEPTED_PER_EVENT targets: one giving `seq` starts above this.
    for (let i = this.#after(seq) - 1; i >= 0; i--) {
      const b = this.#batches[i]!;
      if (b.firstSeq <= seq - MAX_ACCEPTED_PER_EVENT) break;
      if (b.targets[seq - b.firstSeq] === n && (found === undefined || b.seq > found.seq)) found = b;
    }
    return found;
  }

  /** The index of the first batch whose `firstSeq` is above `seq`. */
  #after(seq: number): number {
    let lo = 0;
    let hi = this.#batches.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#batches[mid]!.firstSeq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
