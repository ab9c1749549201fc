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
 * A failed write stops the queue: every waiting append, and every later one with a number
 * after the gap, is rejected, because writing them would leave a hole in the device's sequence.
 * {@link CommitQueue.recover} then starts it again at the first unwritten number, once every
 * number handed out has come back: a transient storage error never needs a restart.
 */
export class CommitQueue<T> {
  readonly #write: (batch: readonly T[]) => Promise<void>;
  readonly #slots = new Map<number, Slot<T>>();
  #next: number;
  #writing = false;
  #failure: unknown;
  /** Since the failure: numbers whose append was rejected or abandoned (none of them written). */
  readonly #spoiled = new Set<number>();
  #spoilWaiters: (() => void)[] = [];
  #idle: (() => void)[] = [];

  /** `firstSeq` is the next sequence number to be written; `write` must be durable when it resolves. */
  constructor(firstSeq: number, write: (batch: readonly T[]) => Promise<void>) {
    this.#next = firstSeq;
    this.#write = write;
  }

  /** Queue `item` as sequence number `seq`; resolves once it (and all before it) are durable. */
  submit(seq: number, item: T): Promise<void> {
    if (this.#failure !== undefined) {
      this.#spoil(seq);
      return Promise.reject(this.#poisoned());
    }
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
    this.#spoil(seq);
  }

  /** True after a failed write or an abandoned number, until {@link CommitQueue.recover}. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * After a failure: waits until every number up to `assigned` (the highest handed out) has come
   * back rejected or abandoned, then takes appends again from the first unwritten number and
   * resolves with the last written one (the caller hands out numbers after it again: none of
   * the numbers after it was ever written).
   */
  async recover(assigned: number): Promise<number> {
    for (;;) {
      if (this.#failure === undefined) return this.#next - 1;
      let settled = true;
      for (let seq = this.#next; seq <= assigned && settled; seq++) settled = this.#spoiled.has(seq);
      if (settled) {
        this.#failure = undefined;
        this.#spoiled.clear();
        return this.#next - 1;
      }
      await new Promise<void>((resolve) => this.#spoilWaiters.push(resolve));
    }
  }

  #spoil(seq: number): void {
    this.#spoiled.add(seq);
    const waiting = this.#spoilWaiters;
    this.#spoilWaiters = [];
    for (const resolve of waiting) resolve();
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
    for (const [seq, slot] of this.#slots) {
      slot.reject(this.#poisoned());
      this.#spoil(seq);
    }
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
        for (let i = 0; i < run.length; i++) this.#spoil(this.#next + i);
      },
    );
  }
}
