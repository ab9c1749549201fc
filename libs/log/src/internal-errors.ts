import { AccordError, ErrorCode } from '@accord/protocol';

/** Internal errors kept for {@link InternalErrors.list}; older ones are dropped. */
const MAX_KEPT = 100;

/**
 * The log's own failures (a push into the sync documents that failed, a listener that threw, a
 * storage error while storing ingested events, a mark write that failed): `LOG_INTERNAL`.
 *
 * @remarks Kept apart from the security incidents on purpose: a bug, or a failing disk, must not
 * look like a hostile peer. Each one goes to `onInternalError` (the device and the relay log it)
 * and the most recent 100 are kept. The failed step never takes data with it: own events stay
 * durable in the store (start-up re-adds them to the documents), ingested ones come again.
 */
export class InternalErrors {
  readonly #onError: ((error: AccordError) => void) | undefined;
  readonly #kept: AccordError[] = [];

  constructor(onError: ((error: AccordError) => void) | undefined) {
    this.#onError = onError;
  }

  /** Records that `what` failed with `cause`. */
  report(what: string, cause: unknown): void {
    const error = new AccordError(ErrorCode.LOG_INTERNAL, `${what}: ${String(cause)}`, { cause });
    this.#kept.push(error);
    if (this.#kept.length > MAX_KEPT) this.#kept.shift();
    try {
      this.#onError?.(error);
    } catch {
      // Reporting must not fail the step that is being reported (nor loop back here).
    }
  }

  /** The most recent internal errors (bounded). */
  list(): readonly AccordError[] {
    return this.#kept;
  }
}
