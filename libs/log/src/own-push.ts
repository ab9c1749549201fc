import type { LogStoredEvent } from './ports.js';

/** How long durable own events wait to be grouped into one Automerge change. */
const PUSH_DELAY_MS = 50;

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
