import * as A from '@automerge/automerge';
import type { DocHandle, DocumentId } from '@automerge/automerge-repo';
import { encodeSignedEvent, type DeviceId, type FacilityId, type SignedEvent } from '@accord/protocol';
import {
  rootDocumentId,
  rootInitialBytes,
  segmentDocumentId,
  segmentInitialBytes,
  eventCountOfList,
  joinRun,
  seqsIn,
  type RootDoc,
  type SegmentDoc,
} from './documents.js';
import type { LogMetaSpace, LogStoredEvent } from './ports.js';
import type { RepoHost } from './repo-host.js';

/** Who the log is, as every part sees it. */
export interface LogContext {
  readonly facility: FacilityId;
  readonly deviceId: DeviceId;
  /** Events per segment document: segment `k` holds seqs `k*size+1 … (k+1)*size`. */
  readonly segmentSize: number;
}

/** A segment document the log follows, and how far its list of entries has been read. */
export interface SegmentState {
  readonly id: DocumentId;
  readonly device: DeviceId;
  readonly index: number;
  readonly handle: DocHandle<SegmentDoc>;
  readonly listener: () => void;
  /** How many list entries (runs) have been looked at; a shorter list means a rescan. */
  processed: number;
  /**
   * How many events those first `processed` entries hold (their runs' pieces): where the next
   * entry's first event sits in a segment written in order ({@link seqAtPosition}).
   */
  processedEvents: number;
  /**
   * The entry at `processed - 1` when it was looked at. If another entry is found there later,
   * something was merged in before it (a concurrent or hostile insertion), so the whole list is
   * read again: reading only past `processed` would miss the inserted entry for good.
   */
  lastSeen?: Uint8Array;
}

/**
 * Records that `list` has been read up to its end; `events` is how many events it holds (counted
 * from its runs when not given).
 */
export function markProcessed(
  segment: SegmentState,
  list: readonly unknown[],
  events = eventCountOfList(list),
): void {
  segment.processed = list.length;
  segment.processedEvents = events;
  const last = list[list.length - 1];
  if (last instanceof Uint8Array) segment.lastSeen = last;
  else delete segment.lastSeen;
}

/**
 * The sequence number that event `position` of a segment's list (counting its runs' pieces) holds
 * when the segment was written in order (its device pushes its events one after another: event 0
 * is the segment's first seq). Only a guess to check against: a list merged from peers may hold
 * entries anywhere.
 */
export function seqAtPosition(
  ctx: LogContext,
  segment: Pick<SegmentState, 'index'>,
  position: number,
): number {
  return segment.index * ctx.segmentSize + position + 1;
}

/** The store's meta key recording that own segment `index` is sealed (its stored copy is final). */
export const sealMarker = (index: number): string => `sealed/${index}`;
/** The value of a {@link sealMarker}. */
export const SEALED = new Uint8Array([1]);

/** What {@link Segments} asks of the rest of the log. */
export interface SegmentsDeps {
  /** Called when a followed segment's document changes (its new entries must be read). */
  readonly onChange: (segment: SegmentState) => void;
  /** True when every event of segment `index` of `device` is visible here. */
  readonly isComplete: (device: DeviceId, index: number) => boolean;
  /** True when some event of segment `index` of `device` is visible here. */
  readonly holdsPart: (device: DeviceId, index: number) => boolean;
  /** Called when the segments {@link Segments.follow} left unloaded are wanted: follow them again. */
  readonly onWanted: () => void;
  /**
   * Offers another device's relay-sealed segment to the bulk transfer (`bulk-segments.ts`): true
   * when it takes the segment from a peer outside the Repo, so that it is not opened here. With
   * `speculative`, the relay's seal of it is not known yet, only expected (see `Following`).
   */
  readonly takeWhole?: (device: DeviceId, index: number, id: DocumentId, speculative: boolean) => boolean;
  /**
   * Hands another device's segment that a peer sent whole, unasked (the relay's release), to the bulk
   * transfer's checks (`BulkSegments.takeGiven`): true when taken (the relay's seal of it is known).
   */
  readonly takeGiven?: (
    device: DeviceId,
    index: number,
    id: DocumentId,
    data: Uint8Array,
    peer: string,
  ) => boolean;
}

/**
 * The facility's documents: the root index and the segments the log follows, opened through the
 * {@link RepoHost}; own events written into them; full ones sealed.
 *
 * @remarks Document ids, actor ids and first changes are derived from the facility, device and
 * segment index (see `documents.ts`), so two devices that create the same document concurrently
 * produce the identical first change. Only a segment's device appends to it in normal operation.
 */
export class Segments {
  readonly #host: RepoHost;
  readonly #ctx: LogContext;
  readonly #deps: SegmentsDeps;
  /** Followed segments, by document id. */
  readonly #open = new Map<DocumentId, SegmentState>();
  readonly #opening = new Map<DocumentId, Promise<SegmentState>>();
  /** Full segments whose events are all in the store: unloaded, served from storage on demand. */
  readonly #sealed = new Set<DocumentId>();
  /** Own segments by document id, so the sweep can record that they were sealed. */
  readonly #ownIndex = new Map<DocumentId, number>();
  /** Followed segments left unloaded while no peer is connected (see {@link Segments.follow}). */
  readonly #unloaded = new Set<DocumentId>();
  /** Stores of segments received whole, under way (see {@link Segments.stored}). */
  readonly #storing = new Set<Promise<void>>();
  #root!: DocHandle<RootDoc>;

  constructor(host: RepoHost, ctx: LogContext, deps: SegmentsDeps) {
    this.#host = host;
    this.#ctx = ctx;
    this.#deps = deps;
    // A peer that connects may bring more of any of them (see follow).
    host.onPeer(() => {
      if (this.#unloaded.size === 0) return;
      this.#unloaded.clear();
      this.#deps.onWanted();
    });
  }

  /** Opens the facility's root index; `onChange` is called whenever it changes. */
  async openRoot(onChange: () => void): Promise<void> {
    const rootId = rootDocumentId(this.#ctx.facility);
    this.#root = await this.#host.open<RootDoc>(rootId, () => rootInitialBytes(this.#ctx.facility));
    this.#root.on('change', onChange);
  }

  /** The root index (open after {@link Segments.openRoot}). */
  get root(): DocHandle<RootDoc> {
    return this.#root;
  }

  /** True once the root index is open. */
  get rootOpen(): boolean {
    return this.#root !== undefined;
  }

  /**
   * Opens this device's segments at start-up, up to the one holding `assigned`: segments sealed
   * before are only shared, full ones whose stored document holds every event are sealed without
   * being loaded, and each other one is opened and handed to `reconcile`.
   */
  async openOwn(
    assigned: number,
    markers: LogMetaSpace,
    reconcile: (segment: SegmentState) => void,
  ): Promise<void> {
    const size = this.#ctx.segmentSize;
    const ownSegments = Math.max(1, Math.ceil(assigned / size));
    for (let index = 0; index < ownSegments; index++) {
      if ((await markers.get(sealMarker(index))) !== undefined) {
        const id = segmentDocumentId(this.#ctx.facility, this.#ctx.deviceId, index);
        this.#host.share(id);
        this.#sealed.add(id);
        this.#host.freeze(id); // flushed before the marker was written
        continue;
      }
      const id = segmentDocumentId(this.#ctx.facility, this.#ctx.deviceId, index);
      if ((index + 1) * size <= assigned && (await this.#storedSegmentComplete(id, index))) {
        // Full, and its stored document holds every event: seal it without loading it into the Repo.
        await markers.put(sealMarker(index), SEALED);
        this.#host.share(id);
        this.#sealed.add(id);
        this.#host.freeze(id);
        continue;
      }
      const segment = await this.ownSegment(index);
      reconcile(segment);
      this.maybeSeal(segment);
    }
  }

  /**
   * Reads an own segment's stored document outside the Repo and tells whether it holds
   * every one of the segment's events (so nothing needs re-adding after a crash).
   */
  async #storedSegmentComplete(id: DocumentId, index: number): Promise<boolean> {
    const chunks = await this.#host.storedChunks(id);
    if (chunks.length === 0) return false;
    let doc = A.init<SegmentDoc>();
    try {
      for (const data of chunks) doc = A.loadIncremental(doc, data);
      const list: unknown = doc.events;
      if (!Array.isArray(list)) return false;
      const size = this.#ctx.segmentSize;
      const first = index * size + 1;
      let count = 0;
      for (const seq of seqsIn(list, this.#ctx.deviceId)) if (seq >= first && seq < first + size) count++;
      return count === size;
    } catch {
      return false;
    } finally {
      // Its WebAssembly memory now, not whenever the garbage collector finalizes it.
      A.free(doc);
    }
  }

  /**
   * Adds to own segment `segment` every own event up to `assigned` that its list lacks (a crash
   * between the durable write and the document save, or a dropped corrupt chunk); `eventAt` gives
   * the held own event of a seq.
   */
  reconcileOwn(
    segment: SegmentState,
    assigned: number,
    eventAt: (seq: number) => SignedEvent | undefined,
  ): void {
    const list = segment.handle.doc().events;
    const size = this.#ctx.segmentSize;
    const first = segment.index * size + 1;
    const last = Math.min(first + size - 1, assigned);
    // Distinct seqs, not entries: after a crash a peer may hand back an entry we pushed again,
    // so the list can hold duplicates and still miss an event the store has.
    const present = seqsIn(list, this.#ctx.deviceId);
    const missing: Uint8Array[] = [];
    for (let seq = first; seq <= last; seq++) {
      if (present.has(seq)) continue;
      const event = eventAt(seq); // read from the store: only for what the document lacks
      if (event !== undefined) missing.push(encodeSignedEvent(event));
    }
    if (missing.length > 0) {
      const run = joinRun(missing); // one run: the missing events are all of this segment
      segment.handle.change((doc) => {
        doc.events.push(run);
      });
    }
  }

  /** Opens (or returns) segment `index` of `device` and follows its changes. */
  openSegment(device: DeviceId, index: number): Promise<SegmentState> {
    const id = segmentDocumentId(this.#ctx.facility, device, index);
    const known = this.#open.get(id);
    if (known !== undefined) return Promise.resolve(known);
    let opening = this.#opening.get(id);
    if (opening === undefined) {
      opening = this.#host
        .open<SegmentDoc>(id, () => segmentInitialBytes(this.#ctx.facility, device, index))
        .then((handle) => {
          const listener = (): void => this.#deps.onChange(state);
          const state: SegmentState = {
            id,
            device,
            index,
            handle,
            listener,
            processed: 0,
            processedEvents: 0,
          };
          this.#open.set(id, state);
          this.#opening.delete(id);
          if (device === this.#ctx.deviceId) this.#ownIndex.set(id, index);
          handle.on('change', listener);
          return state;
        });
      // A failed open (its stored chunks could not be read) is not kept: the next caller tries again.
      opening.catch(() => {
        if (this.#opening.get(id) === opening) this.#opening.delete(id);
      });
      this.#opening.set(id, opening);
    }
    return opening;
  }

  /** Opens own segment `index`, announcing it in the root index. */
  async ownSegment(index: number): Promise<SegmentState> {
    const me = this.#ctx.deviceId;
    const segment = await this.openSegment(me, index);
    const known = this.#root.doc().devices[me] ?? 0;
    if (known < index + 1) {
      this.#root.change((doc) => {
        doc.devices[me] = index + 1;
      });
    }
    return segment;
  }

  /** Appends own events to their segment documents, creating segments (and announcing them) as needed. */
  async pushOwn(stored: readonly LogStoredEvent[]): Promise<void> {
    const bySegment = new Map<number, LogStoredEvent[]>();
    for (const event of stored) {
      const index = Math.floor((event.seq - 1) / this.#ctx.segmentSize);
      let list = bySegment.get(index);
      if (list === undefined) bySegment.set(index, (list = []));
      list.push(event);
    }
    for (const [index, events] of bySegment) {
      const segment = await this.ownSegment(index);
      // Our own pushes need no re-ingest, unless entries from peers still wait to be read.
      const upToDate = segment.processed === segment.handle.doc().events.length;
      // One run per segment per change: one list operation and one value for the whole push
      // (a run stays inside its segment: `bySegment` splits a push at segment boundaries).
      const run = joinRun(events.map((event) => event.bytes));
      segment.handle.change((doc) => {
        doc.events.push(run);
      });
      // (Counted, not re-read: counting the list's events would scan the whole segment each push.)
      if (upToDate)
        markProcessed(segment, segment.handle.doc().events, segment.processedEvents + events.length);
      this.maybeSeal(segment);
    }
  }

  /**
   * Writes `events` again at the end of their authors' segment documents and announces those
   * segments in the root index; with `onlyMissing`, an event a document already lists is not
   * written again. Returns how many entries were written (see {@link DeviceLog.republish}).
   */
  async republish(events: readonly SignedEvent[], onlyMissing: boolean): Promise<number> {
    const facility = this.#ctx.facility;
    const bySegment = new Map<DocumentId, { device: DeviceId; index: number; events: SignedEvent[] }>();
    for (const e of events) {
      const index = Math.floor((e.seq - 1) / this.#ctx.segmentSize);
      const id = segmentDocumentId(facility, e.device, index);
      let entry = bySegment.get(id);
      if (entry === undefined) bySegment.set(id, (entry = { device: e.device, index, events: [] }));
      entry.events.push(e);
    }
    let written = 0;
    for (const [id, { device, index, events: list }] of bySegment) {
      const handle = await this.#host.open<SegmentDoc>(id, () =>
        segmentInitialBytes(facility, device, index),
      );
      const present = onlyMissing ? seqsIn(handle.doc().events, device) : new Set<number>();
      const write = list.filter((e) => !present.has(e.seq)).sort((a, b) => a.seq - b.seq);
      if (write.length > 0) {
        const run = joinRun(write.map((e) => encodeSignedEvent(e))); // one run per change and segment
        handle.change((doc) => {
          doc.events.push(run);
        });
        written += write.length;
      }
      const announced: unknown = this.#root.doc().devices[device];
      if (typeof announced !== 'number' || announced < index + 1) {
        this.#root.change((doc) => {
          doc.devices[device] = index + 1;
        });
      }
    }
    return written;
  }

  /**
   * Seals a full segment whose events are all durable here: the log stops following it,
   * and the sweep drops its document from memory once it has been idle. The Repo loads it
   * from storage again when a peer asks for it, so append cost and memory stay flat as
   * history grows (DESIGN.md §7).
   */
  maybeSeal(segment: SegmentState): void {
    if (!this.#deps.isComplete(segment.device, segment.index)) return;
    // Events, not entries: a run holds many. (Counted only once every event is held here.)
    if (eventCountOfList(segment.handle.doc().events) < this.#ctx.segmentSize) return; // peers still need what is missing
    this.#sealed.add(segment.id);
    this.#open.delete(segment.id);
    segment.handle.off('change', segment.listener);
    // Received whole: stored as the peer sent it (or, failing that, saved by the sweep).
    if (segment.device !== this.#ctx.deviceId) this.#track(this.#host.storeReceived(segment.id));
  }

  /**
   * Seals every followed segment of another device `device` that is complete now (see
   * {@link Segments.maybeSeal}): called once its events are folded, since events that fill a hole
   * complete the later segments whose events waited behind it as well.
   */
  sealCompleted(device: DeviceId): void {
    for (const segment of [...this.#open.values()]) if (segment.device === device) this.maybeSeal(segment);
  }

  /** Resolves once every segment sealed so far has been stored as received (or found not to be). */
  async stored(): Promise<void> {
    while (this.#storing.size > 0) await Promise.all(this.#storing);
  }

  #track(storing: Promise<unknown>): void {
    const done: Promise<void> = storing.then(
      () => void this.#storing.delete(done),
      () => void this.#storing.delete(done),
    );
    this.#storing.add(done);
  }

  /**
   * Follows segment `index` of `device`: a sealed one is skipped, a complete one of another device
   * that is not open is only shared (and counted sealed), anything else is opened and handed to
   * `opened` to be read. Another device's segment that a relay seal names (`relaySealed`) is
   * expected whole from a peer, and stored as received once sealed (`RepoHost.receiveWhole`).
   *
   * @remarks Another device's segment that the store holds in part is left unloaded (and not
   * shared) while no peer is connected: all it could give is what the store holds, and an offline
   * device would keep its whole Automerge document for nothing. When a peer connects, `onWanted`
   * has it followed again (opening it starts its sync: a peer that has sealed it too keeps it
   * unloaded, and would not bring it up by itself). A segment
   * that a relay seal names is always opened, for the same reason.
   */
  async follow(
    device: DeviceId,
    index: number,
    opened: (segment: SegmentState) => void,
    relaySealed = false,
    speculative = false,
  ): Promise<void> {
    const id = segmentDocumentId(this.#ctx.facility, device, index);
    // (A segment taken in outside the Repo is followed again only if that fails.)
    if (this.#sealed.has(id) || this.#unloaded.has(id) || this.#host.takingWhole(id)) return;
    const other = device !== this.#ctx.deviceId && !this.#open.has(id);
    if (other && this.#deps.isComplete(device, index)) {
      this.#host.share(id); // still served to peers that ask for it
      this.#sealed.add(id); // every event already here: nothing to read from it
      return;
    }
    const unread = other && !relaySealed && !this.#opening.has(id);
    if (unread && !this.#host.hasPeers() && this.#deps.holdsPart(device, index)) {
      // Held here in part, and no peer to bring the rest: loading it would only read back what the
      // store holds (the relay's open segment: every verdict, ≈ 35 MB of Automerge memory at 100k
      // events, which WebAssembly never gives back). Opened when a peer connects.
      this.#unloaded.add(id);
      return;
    }
    if (
      other &&
      (relaySealed || speculative) &&
      !this.#opening.has(id) &&
      this.#deps.takeWhole?.(device, index, id, !relaySealed) === true
    )
      return;
    const segment = await this.openSegment(device, index);
    // Another device's segment that a relay seal names is final: a peer sends it whole.
    if (relaySealed && device !== this.#ctx.deviceId) this.#host.receiveWhole(id);
    opened(segment);
  }

  /**
   * True when followed segment `id` is another device's (not the relay's, whose segments nobody
   * seals) and nothing of it has been read: a whole copy the relay sends of it may be taken in
   * outside the Repo ({@link Segments.takeReleased}).
   */
  wantsWhole(id: DocumentId, relay: DeviceId): boolean {
    const segment = this.#open.get(id);
    return (
      segment !== undefined &&
      segment.device !== this.#ctx.deviceId &&
      segment.device !== relay &&
      segment.processed === 0
    );
  }

  /**
   * Takes another device's segment that the relay sent whole (it releases a judged, sealed segment
   * as its stored copy) outside the Repo: handed to the bulk transfer's checks, which store it as sent
   * and commit its events by the relay's seal; the log stops following it (the Repo drops its
   * handle, see `RepoHost.takesWhole`). False, nothing done, when the segment holds anything here
   * already or the bulk transfer does not take it (it is being taken, or failed before): the Repo's
   * way then.
   *
   * @remarks The Repo would apply the document to the segment's handle, materializing each entry,
   * and the log would screen and verify the entries one list at a time: most of a device's CPU
   * while the relay works off a backlog (the relay's README, "Ingest path"). Should the checks
   * refuse it, the bulk transfer follows the segment again, the Repo's way.
   */
  takeReleased(id: DocumentId, data: Uint8Array, relay: DeviceId): boolean {
    const segment = this.#open.get(id);
    if (segment === undefined || !this.wantsWhole(id, relay)) return false;
    if (segment.handle.doc().events.length > 0) return false;
    if (this.#deps.takeGiven?.(segment.device, segment.index, id, data, relay) !== true) return false;
    this.#open.delete(id);
    segment.handle.off('change', segment.listener);
    return true;
  }

  /**
   * Offers another device's relay-sealed segment past the Repo's window to the bulk transfer alone
   * (`takeWhole`): nothing is opened here, whether the transfer takes it or not.
   */
  offerWhole(device: DeviceId, index: number, speculative = false): void {
    const id = segmentDocumentId(this.#ctx.facility, device, index);
    if (this.#sealed.has(id) || this.#open.has(id) || this.#opening.has(id)) return;
    if (!this.#deps.isComplete(device, index)) this.#deps.takeWhole?.(device, index, id, speculative);
  }

  /**
   * Counts segment `id`, taken in whole outside the Repo and stored (frozen) with every event,
   * as sealed: served from storage, never opened to be read.
   */
  sealWhole(id: DocumentId): void {
    this.#host.share(id);
    this.#sealed.add(id);
  }

  /** The followed segment with document id `id`, if open. */
  get(id: DocumentId): SegmentState | undefined {
    return this.#open.get(id);
  }

  /** True when segment `id` is sealed (not followed; served from storage). */
  isSealed(id: DocumentId): boolean {
    return this.#sealed.has(id);
  }

  /** The sealed segments' document ids. */
  sealedIds(): IterableIterator<DocumentId> {
    return this.#sealed.values();
  }

  /** The index of own segment `id`, if it is one this log opened. */
  ownIndex(id: DocumentId): number | undefined {
    return this.#ownIndex.get(id);
  }

  /** Forgets how far every followed segment was read, so that all of them are read again. */
  rereadAll(): void {
    for (const segment of this.#open.values()) markProcessed(segment, []);
  }

  /** Automerge heads of the root and every followed segment, by document id. */
  heads(): Record<string, readonly string[]> {
    const out: Record<string, readonly string[]> = {
      [String(this.#root.documentId)]: [...this.#root.heads()].sort(),
    };
    for (const segment of this.#open.values()) out[String(segment.id)] = [...segment.handle.heads()].sort();
    return out;
  }
}
