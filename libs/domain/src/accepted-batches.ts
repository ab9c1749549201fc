import { MAX_ACCEPTED_PER_EVENT, readAcceptedVerdicts } from '@accord/protocol';
import type { EventId, SignedEvent } from '@accord/protocol';

interface Batch {
  readonly event: SignedEvent;
  readonly firstSeq: number;
  readonly targets: readonly EventId[];
}

/**
 * The relay's `AcceptedVerdicts` events, by the confirmed seqs they give: which one states that
 * event `id` is accepted at `seq`.
 *
 * @remarks Lets a status tracker keep an accepted event's standing as its confirmed seq alone (a
 * number in its map) instead of an object per event naming its verdict: at 100k events the
 * objects cost ≈ 6 MB. A relay numbers acceptances once each, so a batch is found by a binary
 * search on `firstSeq`; batches whose ranges overlap (a relay numbering twice) are all looked at.
 */
export class AcceptedBatches {
  /** Sorted by `firstSeq` (then as added). */
  readonly #batches: Batch[] = [];

  /** Adds a relay `AcceptedVerdicts` event (anything else, or malformed data, is ignored). */
  add(event: SignedEvent): void {
    const data = readAcceptedVerdicts(event.data);
    if (data === undefined) return;
    const batch = { event, firstSeq: data.firstSeq, targets: data.targets };
    const at = this.#after(data.firstSeq);
    this.#batches.splice(at, 0, batch);
  }

  /**
   * The batch stating that `id` is accepted at `seq`; of several, the one with the highest
   * envelope `seq` (the latest, as verdicts go). Undefined when none does.
   */
  stating(id: EventId, seq: number): SignedEvent | undefined {
    return this.#find(id, seq)?.event;
  }

  /**
   * The string a batch stating that `id` is accepted at `seq` holds for it (equal to `id`; for a
   * log, the one instance it shares), or undefined when none does.
   */
  target(id: EventId, seq: number): EventId | undefined {
    const batch = this.#find(id, seq);
    return batch === undefined ? undefined : batch.targets[seq - batch.firstSeq];
  }

  #find(id: EventId, seq: number): Batch | undefined {
    let found: Batch | undefined;
    // A batch holds at most MAX_ACCEPTED_PER_EVENT targets: one giving `seq` starts above this.
    for (let i = this.#after(seq) - 1; i >= 0; i--) {
      const b = this.#batches[i]!;
      if (b.firstSeq <= seq - MAX_ACCEPTED_PER_EVENT) break;
      if (b.targets[seq - b.firstSeq] === id && (found === undefined || b.event.seq > found.event.seq))
        found = b;
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
