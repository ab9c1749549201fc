import type { LogStoredEvent } from './ports.js';

/**
 * How long durable own events wait to be grouped into one Automerge change.
 *
 * @remarks Each change costs the segment document far more than its share of values: beside the
 * change itself, the Repo diffs the document to emit the change's patches and schedules a save.
 * Measured on a Repo over in-memory storage, 20k values of ≈ 420 bytes arriving at ≈ 6k/s: CPU
 * per value 34–57 µs in changes of 300 values (the 50 ms this was), 25–31 µs in changes of 1500
 * (250 ms). A peer sees an own event up to 250 ms after it is durable; nothing waits on it.
 */
const PUSH_DELAY_MS = 250;

/** What {@link OwnPush} asks of the rest of the log. */
export interface OwnPushDeps {
  /** Writes own events into their segment documents. */
  readonly push: (stored: readonly LogStoredEvent[]) => Promise<void>;
  /** Told when a push failed (the events stay durable in the store; start-up re-adds them). */
  readonly onError: (err: unknown) => void;
  readonly isClosed: () => boolean;
}

/**
 * Hands durable own events to the sync documents in large groups.
 *
 * @remarks Each Automerge change has a fixed cost (DESIGN.md §7), so events that became
 * durable while the previous push ran go out together in one change. The push is not
 * on the acknowledgement path: the event store is the durable copy, and start-up
 * re-adds to the documents anything a crash kept from them.
 */
export class OwnPush {
  readonly #deps: OwnPushDeps;
  #waiting: LogStoredEvent[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();

  constructor(deps: OwnPushDeps) {
    this.#deps = deps;
  }

  /** Queues durable own events for the next push. */
  schedule(stored: readonly LogStoredEvent[]): void {
    this.#waiting.push(...stored);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#chain = this.#chain.then(async () => {
        this.#scheduled = false;
        const batch = this.#waiting;
        this.#waiting = [];
        if (batch.length === 0 || this.#deps.isClosed()) return;
        try {
          await this.#deps.push(batch);
        } catch (err) {
          this.#deps.onError(err);
        }
      });
    }, PUSH_DELAY_MS);
  }

  /** Resolves when every queued own event has been handed to the sync documents. */
  async pushed(): Promise<void> {
    while (this.#scheduled || this.#waiting.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      await this.#chain;
    }
    await this.#chain;
  }
}
