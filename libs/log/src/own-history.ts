import * as A from '@automerge/automerge';
import type { OwnHistory, OwnIntegrity } from './api.js';
import { eventCountOfList, segmentDocumentId, seqsIn } from './documents.js';
import type { Following } from './following.js';
import type { RepoHost } from './repo-host.js';
import type { LogContext, Segments } from './segments.js';
import type { VisibleSet } from './visible-set.js';

/** What {@link OwnHistoryCheck} asks of the rest of the log. */
export interface OwnHistoryDeps {
  readonly ctx: LogContext;
  readonly host: RepoHost;
  readonly segments: Segments;
  readonly following: Following;
  readonly visible: VisibleSet;
  /** Resolves once the ingest work queued so far is stored. */
  readonly ingested: () => Promise<void>;
  readonly isClosed: () => boolean;
}

/**
 * The check of this device's own history with peers before it appends (`ownHistoryWaitMs`).
 *
 * @remarks A data folder restored whole from an older backup, mark included, looks like any clean
 * start: only peers remember what the device wrote since. Appends wait until one peer or the
 * relay has synced the root index and this device's last own segment with it and everything that
 * brought is stored (own events that came back move the sequence past them), or until the wait
 * ends (`unchecked`).
 */
export class OwnHistoryCheck {
  readonly #deps: OwnHistoryDeps;
  #state: OwnIntegrity['check'] = 'not-needed';
  /** Set while appends wait for the check. */
  #gate: Promise<void> | undefined;
  #end: (outcome: 'checked' | 'unchecked') => void = () => {};
  /** Set once the documents are open (the check reads the root and own segments). */
  #documentsOpen = false;
  /** The heads each peer showed of each document, by peer (looked at again once documents open). */
  #seen = new Map<string, Map<string, readonly string[]>>();

  constructor(deps: OwnHistoryDeps) {
    this.#deps = deps;
  }

  /** Where the check stands (see {@link OwnIntegrity.check}). */
  get state(): OwnIntegrity['check'] {
    return this.#state;
  }

  /** What appends wait for while the check runs; undefined once it is over (or not needed). */
  get gate(): Promise<void> | undefined {
    return this.#gate;
  }

  /**
   * Starts holding appends for at most `ms` (no wait when 0), listening to what peers sync
   * before the documents open: a fast peer may be done syncing them by then.
   */
  start(ms: number): void {
    if (ms <= 0) return;
    this.#state = 'waiting';
    let open!: () => void;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    const theirHeads = new Map<string, Map<string, readonly string[]>>();
    this.#seen = theirHeads;
    const off = this.#deps.host.onPeerHeads((e) => {
      let docs = theirHeads.get(e.peerId);
      if (docs === undefined) theirHeads.set(e.peerId, (docs = new Map<string, readonly string[]>()));
      docs.set(e.documentId, e.theirHeads);
      // Emitted before the received changes are applied: look once they are.
      setImmediate(() => this.#check(docs));
    });
    const timer = setTimeout(() => this.#end('unchecked'), ms);
    timer.unref();
    this.#end = (outcome) => {
      if (this.#state !== 'waiting') return;
      this.#state = outcome;
      this.#gate = undefined;
      clearTimeout(timer);
      off();
      open();
    };
  }

  /** The documents are open: look at what peers showed meanwhile. */
  documentsOpened(): void {
    this.#documentsOpen = true;
    for (const docs of this.#seen.values()) this.#check(docs);
  }

  /** Ends the check now (the log closes): appends are no longer held. */
  stop(): void {
    this.#end('unchecked');
  }

  /** Ends the check when one peer's root index and last own segment are all here, and stored. */
  #check(docs: ReadonlyMap<string, readonly string[]>): void {
    if (this.#state !== 'waiting' || this.#deps.isClosed() || !this.#documentsOpen) return;
    const { segments, following, ctx } = this.#deps;
    const has = (doc: A.Doc<unknown>, heads: readonly string[] | undefined): boolean =>
      heads !== undefined && A.getMissingDeps(doc, [...heads]).length === 0;
    const root = segments.root;
    if (!has(root.doc(), docs.get(root.documentId))) return;
    // Any peer may raise the root index's count: look no further than the segments the log
    // follows on evidence (see Following.segmentBound), or one hostile entry would hold every
    // append until the wait ran out.
    const claimed = root.doc().devices[ctx.deviceId];
    const count = typeof claimed === 'number' ? Math.min(claimed, following.segmentBound(ctx.deviceId)) : 0;
    if (count > 0) {
      const id = segmentDocumentId(ctx.facility, ctx.deviceId, count - 1);
      const segment = segments.get(id);
      // A sealed own segment is full and stored: no peer can hold more of it.
      if (!segments.isSealed(id) && (segment === undefined || !has(segment.handle.doc(), docs.get(id))))
        return;
    }
    void this.#deps.ingested().then(() => this.#end('checked'));
  }

  /** Own-history state after `assigned` numbers were handed out (see {@link OwnHistory}). */
  history(assigned: number): OwnHistory {
    const { ctx, visible, segments } = this.#deps;
    const size = ctx.segmentSize;
    // Only signed evidence counts (own events held beyond what we assigned), never the root index's
    // count, which any peer may raise to make this device (or the relay) wait for good.
    let behind = visible.maxSeq(ctx.deviceId) > assigned;
    if (!behind) {
      const last = Math.max(0, Math.ceil(assigned / size) - 1);
      const segment = segments.get(segmentDocumentId(ctx.facility, ctx.deviceId, last));
      const list = segment?.handle.doc().events;
      const expected = Math.min(size, assigned - last * size);
      if (Array.isArray(list) && eventCountOfList(list) > expected) {
        for (const seq of seqsIn(list, ctx.deviceId)) if (seq > assigned) behind = true;
      }
    }
    return { assigned, behind };
  }
}
