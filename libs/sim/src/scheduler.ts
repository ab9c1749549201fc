import { SimError, SimErrorCode } from './errors.js';

/** A scheduled callback; pass it to {@link Scheduler.cancel} to take it back. */
export interface Timer {
  /** Simulated time (ms since the start of the run) at which it runs. */
  readonly at: number;
  /** Insertion number: among timers due at the same time, the earlier scheduled runs first. */
  readonly seq: number;
}

interface Entry extends Timer {
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A discrete-event scheduler on simulated time: callbacks run in (time, insertion) order, and
 * time jumps from one callback to the next.
 *
 * @remarks No wall clock is read anywhere: the same callbacks scheduled in the same order run in
 * the same order, whatever the machine's speed. Time is in milliseconds since the start of the
 * run (0); a callback may schedule others, at its own time or later, never earlier. Cancelled
 * timers are dropped lazily when they reach the front of the heap.
 */
export class Scheduler {
  #heap: Entry[] = [];
  #now = 0;
  #seq = 0;
  #executed = 0;

  /** The current simulated time (ms since the start of the run). */
  get now(): number {
    return this.#now;
  }

  /** Callbacks run so far. */
  get executed(): number {
    return this.#executed;
  }

  /** Callbacks scheduled and not yet run (cancelled ones included until they are dropped). */
  get pending(): number {
    return this.#heap.length;
  }

  /**
   * Runs `fn` at simulated time `at`.
   *
   * @throws SimError `SIM_BAD_TIME` when `at` is not finite or lies before {@link now}.
   */
  at(at: number, fn: () => void): Timer {
    if (!Number.isFinite(at) || at < this.#now) {
      throw new SimError(SimErrorCode.SIM_BAD_TIME, `cannot schedule at ${at}: now is ${this.#now}`, {
        at: String(at),
        now: this.#now,
      });
    }
    const entry: Entry = { at, seq: this.#seq++, fn, cancelled: false };
    this.#push(entry);
    return entry;
  }

  /** Runs `fn` `delayMs` after now (negative delays count as 0). */
  after(delayMs: number, fn: () => void): Timer {
    return this.at(this.#now + Math.max(0, delayMs), fn);
  }

  /** Takes back a timer that has not run yet; a no-op for one that ran or was cancelled. */
  cancel(timer: Timer): void {
    (timer as Entry).cancelled = true;
  }

  /**
   * Runs every callback due at or before `untilMs`, then sets the time to `untilMs`.
   *
   * @returns the number of callbacks run.
   */
  run(untilMs: number): number {
    const before = this.#executed;
    while (this.#runNext(untilMs));
    return this.#finish(untilMs, before);
  }

  /**
   * Like {@link run}, but lets promise continuations settle after each callback, so code that
   * awaits (an in-memory storage adapter, a log's append) runs to completion at the simulated
   * instant that started it.
   *
   * @remarks Deterministic only when the awaited work is itself free of real I/O and timers: a
   * macrotask turn (`setImmediate`) is taken after each callback, which drains every microtask.
   */
  async runAsync(untilMs: number): Promise<number> {
    const before = this.#executed;
    while (this.#runNext(untilMs)) await new Promise<void>((resolve) => setImmediate(resolve));
    return this.#finish(untilMs, before);
  }

  /** Runs the next callback due at or before `untilMs`, at its time; false when none is due. */
  #runNext(untilMs: number): boolean {
    const next = this.#nextDue(untilMs);
    if (next === undefined) return false;
    this.#now = next.at;
    this.#executed++;
    next.fn();
    return true;
  }

  /** Sets the time to `untilMs` (never back) and returns how many callbacks ran since `before`. */
  #finish(untilMs: number, before: number): number {
    if (untilMs > this.#now) this.#now = untilMs;
    return this.#executed - before;
  }

  /** Removes and returns the next live entry due at or before `untilMs`. */
  #nextDue(untilMs: number): Entry | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      if (top.cancelled) {
        this.#pop();
        continue;
      }
      if (top.at > untilMs) return undefined;
      return this.#pop();
    }
    return undefined;
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): Entry {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * A device's (or the relay's) view of the time: Unix milliseconds = the run's epoch + simulated
 * time + the node's skew. What the real code will read instead of `Date.now()`.
 */
export interface SimClock {
  /** Unix milliseconds as this node's clock shows them. */
  now(): number;
}

/** The clock of a node whose clock is `skewMs` ahead (negative: behind) of true time. */
export function skewedClock(scheduler: Scheduler, epochMs: number, skewMs: number): SimClock {
  return { now: () => Math.round(epochMs + scheduler.now + skewMs) };
}
