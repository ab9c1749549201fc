import type { OwnSeqMark, OwnSeqMarkState } from './own-seq-mark.js';

/** Own sequence numbers reserved per durable write of the {@link OwnSeqMark}: one fsync per block. */
const OWN_SEQ_BLOCK = 1000;
/**
 * How close to the end of the reservation the next block is reserved, in the background: a
 * reservation is several file operations queued behind the signatures on libuv's threads (≈ 5 ms
 * under load), and appends that reached the end of the block would all wait for it.
 */
const RESERVE_AHEAD = OWN_SEQ_BLOCK / 2;
/** How long an acknowledged own seq may wait before the mark records it (off the append path). */
const ACK_MARK_DELAY_MS = 500;

/** What {@link MarkKeeper} asks of the rest of the log. */
export interface MarkKeeperDeps {
  readonly mark: OwnSeqMark;
  /** Told when recording the acknowledged seq failed (the next write tries again). */
  readonly onError: (err: unknown) => void;
  readonly isClosed: () => boolean;
}

/**
 * Keeps the {@link OwnSeqMark} up to date: numbers are reserved in blocks of 1000, durably, before
 * they are handed out (one write per block, started half a block ahead of need), the highest acknowledged number is recorded shortly
 * after each commit (off the append path, at most every 0.5 s), and a clean close writes
 * `{reserved = acked, clean: true}`. Writes never overlap.
 */
export class MarkKeeper {
  readonly #deps: MarkKeeperDeps;
  #chain: Promise<void> = Promise.resolve();
  /** Own numbers up to this one may be handed out. */
  #reserved: number;
  /** The highest own seq known durable (here or, after a loss, at peers). */
  #acked: number;
  #reserving: Promise<void> | undefined;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;

  /** `highest` is the highest own number known at open (reserved and acknowledged alike). */
  constructor(deps: MarkKeeperDeps, highest: number) {
    this.#deps = deps;
    this.#reserved = this.#acked = highest;
  }

  /**
   * Undefined when number `assigned + 1` is already reserved; otherwise the durable reservation
   * of the next block, to wait for before taking it. Near the end of the reservation, the next
   * block is reserved in the background.
   */
  reserveAfter(assigned: number): Promise<void> | undefined {
    if (assigned + RESERVE_AHEAD < this.#reserved) return undefined;
    if (this.#reserving === undefined) {
      this.#reserving = this.#write(() => ({
        reserved: Math.max(this.#reserved, assigned) + OWN_SEQ_BLOCK,
        acked: this.#acked,
        clean: false,
      })).finally(() => (this.#reserving = undefined));
      // Ahead of need nobody awaits it: a failure there is met again by the append that needs the block.
      this.#reserving.catch(() => undefined);
    }
    return assigned < this.#reserved ? undefined : this.#reserving;
  }

  /** Records that own events up to `seq` are durable; the mark learns it soon, off the append path. */
  noteAcked(seq: number): void {
    if (seq <= this.#acked) return;
    this.#acked = seq;
    if (this.#ackTimer !== undefined) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      if (this.#deps.isClosed()) return;
      this.#write(() => ({ reserved: this.#reserved, acked: this.#acked, clean: false })).catch(
        this.#deps.onError,
      );
    }, ACK_MARK_DELAY_MS);
    this.#ackTimer.unref();
  }

  /** A clean close: every number handed out and not acknowledged never left this process. */
  async closeClean(): Promise<void> {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    await this.#write(() => ({ reserved: this.#acked, acked: this.#acked, clean: true }));
  }

  /** Writes the mark after the writes before it (the state is computed when its turn comes). */
  #write(next: () => OwnSeqMarkState): Promise<void> {
    const done = this.#chain.then(async () => {
      const state = next();
      await this.#deps.mark.write(state);
      this.#reserved = state.reserved;
    });
    this.#chain = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }
}
