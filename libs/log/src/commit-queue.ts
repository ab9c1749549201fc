import { AccordError, ErrorCode } from '@accord/protocol';

interface Slot<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Group commit for one device's own events, in sequence order.
 *
 * @remarks Appenders are given consecutive sequence numbers up front but finish signing
 * in any order. The queue writes only the longest contiguous run starting at the next
 * unwritten number, so a crash can never leave a durable event after a missing one
 * (no self-made holes). While one batch is being written, later arrivals pile up and
 * go out together in the next batch: one fsync for many appends.
 * A failed write poisons the queue: every waiting and future append is rejected,
 * because continuing would leave a hole in the device's sequence.
 */
export class CommitQueue<T> {
  readonly #write: (batch: readonly T[]) => Promise<void>;
  readonly #slots = new Map<number, Slot<T>>();
  #next: number;
  #writing = false;
  #failure: unknown;
  #idle: (() => void)[] = [];

  /** `firstSeq` is the next sequence number to be written; `write` must be durable when it resolves. */
  constructor(firstSeq: number, write: (batch: readonly T[]) => Promise<void>) {
    this.#next = firstSeq;
    this.#write = write;
  }

  /** Queue `item` as sequence number `seq`; resolves once it (and all before it) are durable. */
  submit(seq: number, item: T): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#poisoned());
    return new Promise<void>((resolve, reject) => {
      this.#slots.set(seq, { item, resolve, reject });
      this.#pump();
    });
  }

  /** Mark `seq` as never coming (its preparation failed): the device cannot continue without a hole. */
  abandon(seq: number, cause: unknown): void {
    this.#fail(
      new AccordError(ErrorCode.LOG_CLOSED, `append ${seq} failed before it was written; the log stops`, {
        cause,
      }),
    );
  }

  /** True when nothing is waiting or being written. */
  get isIdle(): boolean {
    return !this.#writing && this.#slots.size === 0;
  }

  /**
   * Moves the next sequence number forward to `nextSeq` (own events that came back from peers
   * after a restore from backup already use the numbers before it).
   *
   * @throws AccordError `LOG_CLOSED` when appends are in flight (their numbers would collide).
   */
  advanceTo(nextSeq: number): void {
    if (!this.isIdle) {
      throw new AccordError(ErrorCode.LOG_CLOSED, 'cannot move the sequence while appends are in flight');
    }
    if (nextSeq > this.#next) this.#next = nextSeq;
  }

  /** Resolves when nothing is waiting or being written. */
  idle(): Promise<void> {
    if (!this.#writing && this.#slots.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #poisoned(): AccordError {
    return new AccordError(ErrorCode.LOG_CLOSED, 'the log stopped after a failed write', {
      cause: this.#failure,
    });
  }

  #fail(err: unknown): void {
    if (this.#failure === undefined) this.#failure = err;
    for (const slot of this.#slots.values()) slot.reject(this.#poisoned());
    this.#slots.clear();
    this.#settleIdle();
  }

  #settleIdle(): void {
    if (this.#writing || this.#slots.size > 0) return;
    const waiting = this.#idle;
    this.#idle = [];
    for (const resolve of waiting) resolve();
  }

  #pump(): void {
    if (this.#writing || this.#failure !== undefined) return;
    const run: Slot<T>[] = [];
    for (let seq = this.#next; this.#slots.has(seq); seq++) {
      run.push(this.#slots.get(seq)!);
      this.#slots.delete(seq);
    }
    if (run.length === 0) return this.#settleIdle();
    this.#writing = true;
    this.#write(run.map((slot) => slot.item)).then(
      () => {
        this.#next += run.length;
        this.#writing = false;
        for (const slot of run) slot.resolve();
        this.#pump();
      },
      (err: unknown) => {
        this.#writing = false;
        for (const slot of run) slot.reject(err);
        this.#fail(err);
      },
    );
  }
}
