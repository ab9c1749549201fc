/**
 * Group commit: requests issued while a batch is being written are coalesced into the
 * next single atomic, synced batch — one fsync for many writes.
 */
import { ioError } from './errors.js';
import type { RawOp, RawStore } from './raw-store.js';

/** Counters that show group commit at work. */
export interface CommitStats {
  /** Atomic synced batches written (one fsync each). */
  readonly batches: number;
  /** Write requests (save/remove/removeRange/append/meta.put calls) committed. */
  readonly writes: number;
  /** Raw put/del operations written. */
  readonly ops: number;
}

/**
 * Turns one request into raw ops, given the batch context shared by the requests of the
 * same batch (earlier requests' effects that are not in storage yet).
 *
 * @remarks Must validate everything before touching `ctx`: a request that throws is
 * rejected alone, and must leave `ctx` as it found it.
 */
export type Prepare<C> = (ctx: C) => Promise<readonly RawOp[]> | readonly RawOp[];

interface Pending<C> {
  readonly prepare: Prepare<C>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Most raw ops in one batch; the rest wait for the next one. */
const MAX_OPS_PER_BATCH = 8192;

/**
 * Serialises writes to one {@link RawStore} and coalesces concurrent ones.
 *
 * @remarks Requests are prepared and applied strictly in submission order; a request's
 * promise resolves only after the batch holding it was written (durably). Batches never
 * overlap, so `prepare` sees every earlier batch in storage and earlier requests of its
 * own batch in `ctx`.
 */
export class GroupCommitter<C> {
  readonly #store: RawStore;
  readonly #newContext: () => C;
  readonly #queue: Pending<C>[] = [];
  #running: Promise<void> | undefined;
  #batches = 0;
  #writes = 0;
  #ops = 0;

  constructor(store: RawStore, newContext: () => C) {
    this.#store = store;
    this.#newContext = newContext;
  }

  /** Queues a request; resolves once it is durable, rejects with its own error or STORAGE_IO. */
  submit(prepare: Prepare<C>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ prepare, resolve, reject });
      this.#running ??= this.#run();
    });
  }

  /** Resolves when every queued request has been settled. */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** Counters since construction. */
  stats(): CommitStats {
    return { batches: this.#batches, writes: this.#writes, ops: this.#ops };
  }

  /**
   * Prepares the next batch from the queue and starts its write; returns how each request is told
   * and the write under way (undefined when no request had an op).
   *
   * @remarks Nothing here is held while the write is awaited: the batch context, the ops and each
   * request's `prepare` (with what it closed over) are garbage once LevelDB has taken the ops.
   * Held across the synced write, a cold sync's 10,000 ops per segment and their keys and values
   * outlived the young generation and were promoted, to be collected by a full mark-compact.
   */
  async #prepareBatch(): Promise<{
    readonly accepted: readonly Omit<Pending<C>, 'prepare'>[];
    readonly write: { readonly written: Promise<void>; readonly ops: number } | undefined;
  }> {
    const ctx = this.#newContext();
    const accepted: Omit<Pending<C>, 'prepare'>[] = [];
    const ops: RawOp[] = [];
    while (this.#queue.length > 0 && ops.length < MAX_OPS_PER_BATCH) {
      const request = this.#queue.shift()!;
      try {
        // A prepare that needs no read returns its ops at once: no turn of the microtask queue.
        const prepared = request.prepare(ctx);
        const own = prepared instanceof Promise ? await prepared : prepared;
        for (const op of own) ops.push(op);
        accepted.push({ resolve: request.resolve, reject: request.reject });
      } catch (err) {
        // Conflicts and corruption come as AccordErrors; anything else is a read failure.
        request.reject(ioError(err, 'read'));
      }
    }
    if (accepted.length === 0 || ops.length === 0) return { accepted, write: undefined };
    let written: Promise<void>;
    try {
      written = this.#store.write(ops);
    } catch (err) {
      written = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // Awaited by the caller; a failure must not count as unhandled meanwhile.
    written.catch(() => undefined);
    return { accepted, write: { written, ops: ops.length } };
  }

  async #run(): Promise<void> {
    // Let every request issued in the same tick join the first batch.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0) {
        const { accepted, write } = await this.#prepareBatch();
        if (accepted.length === 0) continue;
        try {
          if (write !== undefined) {
            await write.written;
            this.#batches++;
            this.#ops += write.ops;
          }
          this.#writes += accepted.length;
          for (const r of accepted) r.resolve();
        } catch (err) {
          const wrapped = ioError(err, 'write');
          for (const r of accepted) r.reject(wrapped);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }
}
