/** What {@link WorkChain} asks of the rest of the log. */
export interface WorkChainDeps {
  readonly isClosed: () => boolean;
  /** Told when a piece of work failed while the log was open. */
  readonly onError: (err: unknown) => void;
}

/**
 * The log's serial work: reading changed documents, following new segments and sweeping sealed
 * ones run one after another, so that concurrent document changes never race on the store.
 */
export class WorkChain {
  readonly #deps: WorkChainDeps;
  #tail: Promise<void> = Promise.resolve();

  constructor(deps: WorkChainDeps) {
    this.#deps = deps;
  }

  /** Runs `work` after everything queued before it (skipped once the log is closed). */
  enqueue(work: () => Promise<void>): void {
    this.#tail = this.#tail.then(async () => {
      if (this.#deps.isClosed()) return;
      try {
        await work();
      } catch (err) {
        if (this.#deps.isClosed()) return;
        this.#deps.onError(err);
      }
    });
  }

  /** Settles once everything queued so far has run (never rejects). */
  get tail(): Promise<void> {
    return this.#tail;
  }
}
