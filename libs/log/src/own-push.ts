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

/** The first wait before own events a failed push left out are written again; it doubles up to the next. */
const REPAIR_FIRST_MS = 1000;
const REPAIR_MAX_MS = 60_000;

/** What {@link OwnPush} asks of the rest of the log. */
export interface OwnPushDeps {
  /** Writes own events into their segment documents. */
  readonly push: (stored: readonly LogStoredEvent[]) => Promise<void>;
  /**
   * Writes those of `stored` that their segment documents do not list yet (after a failed push,
   * which may have written some of them).
   */
  readonly repair: (stored: readonly LogStoredEvent[]) => Promise<void>;
  /** Told each time a push or a repair failed (the events stay durable in the store). */
  readonly onError: (err: unknown) => void;
  readonly isClosed: () => boolean;
}

/**
 * Hands durable own events to the sync documents in large groups.
 *
 * @remarks Each Automerge change has a fixed cost (DESIGN.md §7), so events that became
 * durable while the previous push ran go out together in one change. The push is not
 * on the acknowledgement path: the event store is the durable copy, and start-up
 * re-adds to the documents anything a crash kept from them. A push that fails (a document that
 * could not be read from storage) is repaired while the log runs: its events are written again,
 * those the documents lack, after 1 s, then after waits doubling up to a minute, so that peers
 * get them without a restart.
 */
export class OwnPush {
  readonly #deps: OwnPushDeps;
  #waiting: LogStoredEvent[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  /** Own events a failed push or repair left out of the documents, written again by the repair. */
  #unpushed: LogStoredEvent[] = [];
  #repairMs = REPAIR_FIRST_MS;
  #repairTimer: ReturnType<typeof setTimeout> | undefined;

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
          this.#failed(batch, err);
        }
      });
    }, PUSH_DELAY_MS);
  }

  /** Stops the repair (the log is closing; start-up re-adds what it left out). */
  stop(): void {
    if (this.#repairTimer !== undefined) clearTimeout(this.#repairTimer);
    this.#repairTimer = undefined;
  }

  #failed(batch: readonly LogStoredEvent[], err: unknown): void {
    this.#deps.onError(err);
    this.#unpushed.push(...batch);
    if (this.#repairTimer !== undefined || this.#deps.isClosed()) return;
    this.#repairTimer = setTimeout(() => {
      this.#repairTimer = undefined;
      this.#chain = this.#chain.then(() => this.#repair());
    }, this.#repairMs);
    this.#repairTimer.unref();
    this.#repairMs = Math.min(REPAIR_MAX_MS, this.#repairMs * 2);
  }

  async #repair(): Promise<void> {
    const batch = this.#unpushed;
    this.#unpushed = [];
    if (batch.length === 0 || this.#deps.isClosed()) return;
    try {
      await this.#deps.repair(batch);
      this.#repairMs = REPAIR_FIRST_MS;
    } catch (err) {
      this.#failed(batch, err);
    }
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
