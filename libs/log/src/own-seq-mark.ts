/**
 * The own-sequence high-water mark: what a device has handed out, kept apart from its event store.
 *
 * @remarks The event store can lose its newest writes (a backup restored, a re-imaged disk,
 * LevelDB dropping a torn write-ahead-log tail on open), and a next sequence number taken from it
 * alone would reuse the numbers of acknowledged events that peers already hold: the device would
 * fork for good (DESIGN.md §7). The log reserves numbers in blocks, durably, before it hands
 * them out, so one write covers many appends.
 */

/** What the mark says about the previous run. */
export interface OwnSeqMarkState {
  /** Every own sequence number up to this one may have been handed out. */
  readonly reserved: number;
  /**
   * Every own sequence number up to this one was acknowledged durable. Written off the append
   * path (it may lag behind the truth after a crash), exact after a clean close.
   */
  readonly acked: number;
  /** True when the run that wrote it closed the log cleanly (then `reserved === acked`). */
  readonly clean: boolean;
}

/**
 * Durable storage of the {@link OwnSeqMarkState} (a port: the device keeps it in a small file
 * of its data folder, outside LevelDB; tests use {@link MemoryOwnSeqMark}).
 */
export interface OwnSeqMark {
  /** The last state written, or undefined when none was ever written. Throws when it is unreadable. */
  read(): Promise<OwnSeqMarkState | undefined>;
  /** Stores `state`, durably, before resolving. Calls never overlap (the log serializes them). */
  write(state: OwnSeqMarkState): Promise<void>;
}

/** In-memory {@link OwnSeqMark}: share one between two opens to simulate a restart. */
export class MemoryOwnSeqMark implements OwnSeqMark {
  #state: OwnSeqMarkState | undefined;
  /** Number of writes so far (tests check that appends reserve in blocks). */
  writes = 0;

  constructor(state?: OwnSeqMarkState) {
    this.#state = state;
  }

  /** The current state (test hook). */
  get state(): OwnSeqMarkState | undefined {
    return this.#state;
  }

  read(): Promise<OwnSeqMarkState | undefined> {
    return Promise.resolve(this.#state);
  }

  write(state: OwnSeqMarkState): Promise<void> {
    this.#state = { ...state };
    this.writes++;
    return Promise.resolve();
  }
}

/** True when `value` is a well-formed {@link OwnSeqMarkState} (for implementations reading untrusted bytes). */
export function isOwnSeqMarkState(value: unknown): value is OwnSeqMarkState {
  if (typeof value !== 'object' || value === null) return false;
  const { reserved, acked, clean } = value as Record<string, unknown>;
  return (
    Number.isSafeInteger(reserved) &&
    Number.isSafeInteger(acked) &&
    (reserved as number) >= 0 &&
    (acked as number) >= 0 &&
    typeof clean === 'boolean'
  );
}
