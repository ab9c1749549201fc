import * as A from '@automerge/automerge';
import type { DocumentId, NetworkAdapterInterface } from '@automerge/automerge-repo';
import { markPrepared, prepareDraft, type Projection } from '@accord/domain';
import {
  AccordError,
  ErrorCode,
  SystemEventType,
  decodeSignedEvent,
  type DeviceId,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { localWarnings } from '@accord/rules';
import type {
  AppendResult,
  DeviceLogApi,
  DeviceLogOptions,
  Draft,
  EventInfo,
  EventPlace,
  EventsListener,
  IntegrityReport,
  LogCounts,
  OwnHistory,
  OwnIntegrity,
  PeerSyncReport,
  SecurityIncident,
  SystemDraft,
  Withheld,
} from './api.js';
import type { LogStoredEvent } from './ports.js';
import { VisibleSet } from './visible-set.js';
import { StoredEvents } from './stored-events.js';
import { Incidents } from './incidents.js';
import { InternalErrors } from './internal-errors.js';
import { startupScan, type StartupState } from './startup-scan.js';
import { Views } from './views.js';
import { RepoHost } from './repo-host.js';
import { Segments } from './segments.js';
import { OwnPush } from './own-push.js';
import { Following } from './following.js';
import { DEFAULT_SWEEP_MS, SealingSweep } from './sealing.js';
import { WorkChain } from './work-chain.js';
import { RelaySeals } from './relay-seals.js';
import { Equivocations, restoreBarriers } from './equivocations.js';
import { Ingest, verifyReceived } from './ingest.js';
import { MarkKeeper } from './mark-keeper.js';
import { OwnAppends } from './own-appends.js';
import { OwnHistoryCheck } from './own-history.js';
import { BulkSegments } from './bulk-segments.js';
import { documentChunkHeads } from './automerge-chunks.js';

const DEFAULT_SEGMENT_SIZE = 5000;

/** An own event as the store holds it, decoded again (its bytes are canonical: encoding gives them back). */
function decodeStored(stored: LogStoredEvent): SignedEvent {
  const decoded = decodeSignedEvent(stored.bytes);
  if (!decoded.ok) throw new AccordError(ErrorCode.LOG_INTERNAL, `own event ${stored.id} does not decode`);
  return decoded.value;
}

/**
 * A device's append-only event log.
 *
 * @remarks The event store is the local source of truth: an append resolves only after
 * its event is durable there (group commit). Automerge documents, one root index plus
 * per-device segments of opaque signed bytes, carry events to peers through
 * automerge-repo; whatever arrives is decoded, checked against the roster, verified and
 * stored before it is used. Projections only ever see, per device, the contiguous prefix
 * of its sequence numbers: events after a hole wait until the hole is filled.
 */
export class DeviceLog implements DeviceLogApi {
  readonly deviceId: DeviceId;
  readonly facility: FacilityId;

  readonly #opts: DeviceLogOptions;
  /** The Repo and all the log asks of it. */
  readonly #host: RepoHost;
  readonly #segmentSize: number;
  readonly #clock: () => number;
  /** This device's sequence: numbers, envelopes, signing, group commit. */
  readonly #own: OwnAppends;
  /** The check of the own history with peers before the first append. */
  readonly #history: OwnHistoryCheck;

  /** The events themselves, read from the event store on demand (they are not kept in memory). */
  readonly #stored: StoredEvents;
  /** Which verified events the projections see, and which are held back (no I/O of its own). */
  readonly #visible: VisibleSet;
  /** The log's serial work: document reads, following, sweeps. */
  readonly #work: WorkChain;
  /** Relay seals of whole segments, and the short wait for them. */
  readonly #seals: RelaySeals;
  /** Devices caught signing two histories, and their barriers. */
  readonly #equivocations: Equivocations;
  /** Screen → verify → commit of what peers write into the documents. */
  readonly #ingest: Ingest;
  /** Relay-sealed segments taken from peers, and served to them, as stored documents. */
  readonly #bulk: BulkSegments;

  /** The root index and the segment documents the log follows. */
  readonly #segments: Segments;
  /** Drops idle sealed documents from memory. */
  readonly #sweep: SealingSweep;
  /** Which devices and segments the log follows, on signed evidence only. */
  readonly #following: Following;

  /** What the start-up scan found damaged or lost, and whether the start was suspicious. */
  readonly #found: {
    readonly corrupt: readonly { readonly device: string; readonly seq: number }[];
    readonly corruptChunks: number;
    readonly ownLoss: { readonly from: number; readonly to: number } | undefined;
    suspicious: boolean;
  };
  /** The own-sequence mark's keeper (when the log keeps an `OwnSeqMark`). */
  readonly #marks: MarkKeeper | undefined;
  /** The log's own failures (`LOG_INTERNAL`), kept apart from the incidents. */
  readonly #internal: InternalErrors;
  /** Refused data from peers (security incidents), bounded. */
  readonly #incidents: Incidents;
  /** Durable own events on their way into the segment documents. */
  readonly #push: OwnPush;
  #closed = false;
  readonly #listeners = new Set<EventsListener>();

  /** Infos, lists, counts and projections over the visible set (cached where it pays). */
  readonly #views: Views;

  private constructor(
    opts: DeviceLogOptions,
    host: RepoHost,
    start: StartupState,
    clock: () => number,
    loaded: { readonly stored: StoredEvents; readonly visible: VisibleSet },
  ) {
    const { highestOwnSeq, hlc } = start;
    this.#found = {
      corrupt: start.corrupt,
      corruptChunks: start.corruptChunks,
      ownLoss: start.ownLoss,
      suspicious: start.suspicious,
    };
    this.#host = host;
    this.#opts = opts;
    this.deviceId = opts.key.deviceId;
    this.facility = opts.facility;
    this.#segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.#clock = clock;
    this.#incidents = new Incidents(this.#clock, opts.onIncident);
    this.#internal = new InternalErrors(opts.onInternalError);
    this.#stored = loaded.stored;
    this.#visible = loaded.visible;
    this.#views = new Views(this.#visible, this.deviceId);
    const ctx = { facility: this.facility, deviceId: this.deviceId, segmentSize: this.#segmentSize };
    const relay = opts.relay ?? undefined;
    const isClosed = (): boolean => this.#closed;
    this.#work = new WorkChain({
      isClosed,
      onError: (err) => this.#internal.report('reading the sync documents failed', err),
    });
    this.#segments = new Segments(host, ctx, {
      onChange: (segment) => this.#ingest.schedule(segment),
      isComplete: (device, index) => this.#complete(device, index),
      holdsPart: (device, index) => this.#visible.contiguous(device) > index * this.#segmentSize,
      onWanted: () => this.#following.refresh(),
      takeWhole: (device, index, id, speculative) => this.#bulk.take(device, index, id, speculative),
      takeGiven: (device, index, id, data, peer) => this.#bulk.takeGiven(device, index, id, data, peer),
    });
    this.#following = new Following({
      ctx,
      relay,
      roster: opts.roster,
      visible: this.#visible,
      segments: this.#segments,
      assigned: () => this.#own.assigned,
      read: (segment) => this.#ingest.read(segment),
      speculates: (device) => this.#bulk.speculates(device),
      enqueue: (work) => this.#work.enqueue(work),
      isClosed,
    });
    this.#seals = new RelaySeals({
      ctx,
      relay,
      visible: this.#visible,
      onSealed: (device, index) => {
        this.#bulk.sealNoted(device, index);
        this.#following.noteSealed(device, index);
      },
      reread: (segment) => this.#ingest.schedule(segment),
    });
    this.#equivocations = new Equivocations({
      markers: opts.eventStore.meta,
      visible: this.#visible,
      incidents: this.#incidents,
      onWithheld: () => this.#views.reset(),
      isClosed,
    });
    this.#ingest = new Ingest({
      ctx,
      roster: opts.roster,
      visible: this.#visible,
      store: opts.eventStore,
      hlc,
      incidents: this.#incidents,
      seals: this.#seals,
      equivocations: this.#equivocations,
      segments: this.#segments,
      work: this.#work,
      verify: opts.verifier ?? verifyReceived,
      add: (event) => this.#addVerified(event),
      onError: (err) => this.#internal.report('storing received events failed', err),
      isClosed,
    });
    this.#bulk = new BulkSegments({
      ctx,
      host,
      segments: this.#segments,
      ingest: this.#ingest,
      incidents: this.#incidents,
      serves: opts.serves,
      isSealed: (device, index) => this.#seals.isSealed(device, index),
      enqueue: (work) => this.#work.enqueue(work),
      refollow: () => this.#following.refresh(),
      isClosed,
    });
    this.#sweep = new SealingSweep({
      host,
      segments: this.#segments,
      markers: opts.eventStore.meta,
      intervalMs: opts.sealSweepMs ?? DEFAULT_SWEEP_MS,
      enqueue: (work) => this.#work.enqueue(work),
    });
    this.#push = new OwnPush({
      push: (stored) => this.#segments.pushOwn(stored),
      repair: async (stored) => {
        await this.#segments.republish(stored.map(decodeStored), true);
      },
      onError: (err) => this.#internal.report('could not add own events to the sync documents', err),
      isClosed: () => this.#closed,
    });
    const marks =
      opts.ownSeqMark === undefined
        ? undefined
        : new MarkKeeper(
            {
              mark: opts.ownSeqMark,
              onError: (err) => this.#internal.report('could not record the own mark', err),
              isClosed,
            },
            highestOwnSeq,
          );
    this.#marks = marks;
    this.#history = new OwnHistoryCheck({
      ctx,
      host,
      segments: this.#segments,
      following: this.#following,
      visible: this.#visible,
      ingested: () => this.#ingest.settled(),
      isClosed,
    });
    this.#own = new OwnAppends(
      {
        ctx,
        key: opts.key,
        signer: opts.signer,
        clock: this.#clock,
        hlc,
        store: opts.eventStore,
        marks,
        historyGate: () => this.#history.gate,
        onDurable: (batch, stored) => {
          for (const { event } of batch) this.#addVerified(event);
          this.#push.schedule(stored);
        },
        isClosed,
      },
      highestOwnSeq,
    );
  }

  /**
   * Opens the log: checks the event store's integrity, loads it, opens the facility's
   * documents and reconciles them with the store.
   */
  static async open(opts: DeviceLogOptions): Promise<DeviceLog> {
    const clock = opts.clock ?? Date.now;
    const stored = new StoredEvents(opts.eventStore);
    const visible = new VisibleSet(opts.relay ?? null, stored, { resident: opts.residentEvents === true });
    // Equivocation barriers (kept in the store's meta) hold before any event is added.
    await restoreBarriers(opts.eventStore.meta, visible);
    // Stored events join the visible set as the scan reads them, and none is kept past its turn
    // (a history loaded first and added after would be resident at once). Of what #addVerified
    // does besides, only the seal and roster notes matter before the documents open (no view is
    // built, no listener subscribed, no own number above the store's): they wait for the parts.
    const notes: SignedEvent[] = [];
    const start = await startupScan(opts, clock, (event) => {
      visible.add(event, (e) => {
        if (e.type === SystemEventType.SegmentSealed || e.type === SystemEventType.RosterUpdated)
          notes.push(e);
      });
    });
    /** The log, once made: the Repo host is made first and asks it about whole documents. */
    const made: { log?: DeviceLog } = {};
    const host = new RepoHost({
      peerId: opts.key.deviceId,
      storage: opts.storage,
      network: opts.network ?? [],
      ...(opts.serves === undefined ? {} : { serves: opts.serves }),
      // Not the relay: its catch-up reads onPeerSync of its own sealed segments.
      answersFromStorage: opts.relay !== opts.key.deviceId,
      // Released segments the relay sends whole (a relay takes segments in through the Repo).
      ...(opts.relay === undefined || opts.relay === opts.key.deviceId
        ? {}
        : {
            takesWhole: {
              wants: (id: DocumentId) =>
                made.log !== undefined && made.log.#segments.wantsWhole(id, opts.relay!),
              // Only the relay's copies: it sends whole only segments it sealed (their seals follow).
              take: (peer: string, id: DocumentId, chunk: Uint8Array) =>
                peer === opts.relay &&
                made.log !== undefined &&
                made.log.#segments.takeReleased(id, chunk, opts.relay),
            },
          }),
    });
    const log = new DeviceLog(opts, host, start, clock, { stored, visible });
    made.log = log;
    host.exposeTo(log);
    for (const e of notes) log.#note(e);
    // The confirmed fold is built while the folder still has the last events in hand (see
    // ProjectionFolder): a first query reads back only what it must.
    log.#visible.folder.confirmed();
    // Own numbers missing below the highest: the store lost some of its own events.
    if (log.#visible.contiguous(log.deviceId) < start.highestOwnSeq) log.#found.suspicious = true;
    // Listening before the documents open: a fast peer may be done syncing them by then.
    const waits = opts.ownHistoryWaitMs;
    const waitMs = waits === undefined ? 0 : log.#found.suspicious ? waits.suspicious : waits.clean;
    log.#history.start((opts.network ?? []).length === 0 ? 0 : waitMs);
    await log.#openDocuments();
    log.#history.documentsOpened();
    return log;
  }

  // ---------------------------------------------------------------- appending

  /** Records a user action: resolves after the signed event is durable, with any local-rule warning. */
  async append(draft: Draft): Promise<AppendResult> {
    this.#assertOpen();
    // Re-checked right before the number is taken (no await in between): see OwnAppends.wait.
    for (let wait = this.#own.wait(); wait !== undefined; wait = this.#own.wait()) await wait;
    this.#assertOpen();
    const view = this.tentative();
    const prepared = prepareDraft(view, draft);
    if (!prepared.ok) throw prepared.error;
    const p = prepared.value;
    // The prepared draft is the envelope's parts (type, schema, subject, deps, basis, data).
    const unsigned = this.#own.envelope(
      draft.supersedes === undefined ? p : { ...p, supersedes: draft.supersedes },
    );
    // Warnings are computed on the view the user saw, before this event joins it. Neither they
    // nor the projections check the data again: prepareDraft did (markPrepared).
    markPrepared(unsigned, p);
    const verdict = localWarnings(view, unsigned, { nowMs: this.#clock() });
    // Only a warning outlives the signature and the write (64 appends in flight keep theirs).
    const warning = verdict.outcome === 'deadletter' ? verdict : undefined;
    const event = await this.#own.signAndCommit(unsigned, (signed) => markPrepared(signed, p));
    return warning === undefined ? { event } : { event, warning };
  }

  /** Records a system statement (verdict, roster, retry, discard): no local rules, schema-checked data. */
  async appendSystem(draft: SystemDraft): Promise<SignedEvent> {
    this.#assertOpen();
    for (let wait = this.#own.wait(); wait !== undefined; wait = this.#own.wait()) await wait;
    this.#assertOpen();
    // Checked and numbered synchronously after the wait (see OwnAppends.wait).
    const envelope = this.#own.systemEnvelope(draft);
    return this.#own.signAndCommit(envelope);
  }

  /** The own-sequence part of {@link DeviceLog.integrity}. */
  #ownIntegrity(): OwnIntegrity {
    const loss = this.#found.ownLoss;
    return {
      ...(loss === undefined
        ? {}
        : { loss: { ...loss, repaired: this.#visible.contiguous(this.deviceId) >= loss.to } }),
      check: this.#history.state,
      suspiciousStart: this.#found.suspicious,
    };
  }

  // ---------------------------------------------------------------- documents and ingest

  async #openDocuments(): Promise<void> {
    await this.#segments.openRoot(() => this.#following.refresh());
    // Own segments first: re-push any own event the documents lost (a crash between the
    // durable write and the document save, or a dropped corrupt chunk). Segments already
    // sealed after such a check are skipped.
    await this.#segments.openOwn(this.#own.assigned, this.#opts.eventStore.meta, (segment) => {
      this.#segments.reconcileOwn(segment, this.#own.assigned, (seq) => {
        const id = this.#visible.idAt(this.deviceId, seq);
        return id === undefined ? undefined : this.#visible.known(id);
      });
      // Anything else in it (peers' copies of our later events after a restore, foreign entries).
      this.#ingest.read(segment);
    });
    await this.#following.refreshNow();
    this.#sweep.start();
  }

  /**
   * Writes `events` again at the end of their authors' segment documents, and announces those
   * segments in the root index, so that peers lacking them take them in through ordinary sync.
   * With `onlyMissing`, an event a document already lists is not written again. Returns how many
   * entries were written.
   *
   * @remarks For the relay's start-up repair (documents that lost what the store holds) and a
   * device's re-submit (a relay that lacks events its documents list). The bytes are the signed
   * originals: logs ignore an event they already hold, only the documents' lists grow. Documents
   * are opened as the log opens its own (first change plus stored chunks), never by waiting on
   * the network.
   */
  async republish(events: readonly SignedEvent[], opts: { onlyMissing?: boolean } = {}): Promise<number> {
    this.#assertOpen();
    return this.#segments.republish(events, opts.onlyMissing === true);
  }

  /** True when the store holds every event of segment `index` of `device`. */
  #complete(device: DeviceId, index: number): boolean {
    return this.#visible.complete(device, index, this.#segmentSize);
  }

  // ---------------------------------------------------------------- visible events

  /** A stored, verified event joins the visible set; what it released is shown and announced. */
  #addVerified(decoded: SignedEvent): void {
    const released = this.#visible.add(decoded, (e) => this.#note(e));
    if (released === undefined || released.length === 0) return;
    const event = released[0]!; // the event itself, then what it unblocked
    const contiguous = this.#visible.contiguous(event.device);
    if (contiguous % this.#segmentSize < released.length) this.#following.evidenceGrew(event.device);
    this.#views.onVisible(released);
    if (event.device === this.deviceId && event.seq > this.#own.assigned) this.#own.cameBack(event.seq);
    this.#notify(released);
  }

  /** Relay seals and rosters are noted as they become visible (the following and the seal wait use them). */
  #note(e: SignedEvent): void {
    if (e.type === SystemEventType.SegmentSealed) this.#seals.note(e);
    else if (e.type === SystemEventType.RosterUpdated) this.#following.noteRoster(e);
  }

  #notify(events: readonly SignedEvent[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (err) {
        this.#internal.report('an event listener threw', err);
      }
    }
  }

  /** Subscribes to events as they become visible; returns the unsubscribe function. */
  onEvents(listener: EventsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Own-history state: whether peers announce own events this log does not hold yet. */
  ownHistory(): OwnHistory {
    return this.#history.history(this.#own.assigned);
  }

  // ---------------------------------------------------------------- queries

  /** The event, its status and latest verdict; undefined when unknown or still held back. */
  get(id: EventId): EventInfo | undefined {
    return this.#views.get(id);
  }

  /** The device and sequence number of a visible event, from its id alone (no read); undefined when not visible. */
  locate(id: EventId): EventPlace | undefined {
    return this.#visible.locate(id);
  }

  /** Visible non-verdict events, optionally filtered, in (device, seq) order. */
  list(filter: { status?: EventInfo['status']; device?: DeviceId } = {}): EventInfo[] {
    return this.#views.list(filter);
  }

  /** Events per segment document (segment `k` of a device holds seqs `k*size+1 … (k+1)*size`). */
  get segmentSize(): number {
    return this.#segmentSize;
  }

  /**
   * The events of segment `index` of `device` in sequence order, or undefined unless every one
   * of them is held and visible (what a relay seals).
   */
  segmentEvents(device: DeviceId, index: number): SignedEvent[] | undefined {
    return this.#visible.segmentEvents(device, index, this.#segmentSize);
  }

  /** Every visible event of any kind, in no particular order (read from the store one at a time). */
  visibleEvents(opts: { systemOnly?: boolean; naming?: EventId } = {}): IterableIterator<SignedEvent> {
    return this.#visible.visibleEvents(opts.systemOnly === true, opts.naming);
  }

  /** This device's own events with no verdict yet (derived, not a queue). */
  outbox(): EventInfo[] {
    return this.list({ status: 'pending', device: this.deviceId });
  }

  /** Event counts by status, as shown by `GET /api/status`. */
  counts(): LogCounts {
    return this.#views.counts();
  }

  /** Confirmed state: accepted events in relay order. A copy: callers may not mutate the cache. */
  confirmed(): Projection {
    return this.#views.confirmed();
  }

  /**
   * Tentative state: confirmed plus pending events in (HLC, device, seq) order.
   *
   * @remarks Returns the cached projection itself: treat it as read-only.
   */
  tentative(): Projection {
    return this.#views.tentative();
  }

  /** Holes (per device) and corrupt values found at start-up or since. */
  integrity(): IntegrityReport {
    const corrupt = this.#found.corrupt.filter(
      ({ device, seq }) => this.#visible.idAt(device as DeviceId, seq) === undefined,
    );
    // Damaged since the start-up scan, found when read back on demand (repaired at the next open).
    for (const { device, seq } of this.#stored.damaged())
      if (device !== undefined && seq !== undefined) corrupt.push({ device, seq });
    return {
      holes: this.#visible.holes(),
      corrupt,
      incidents: this.#incidents.count,
      detectedAtStart: {
        corruptEvents: this.#found.corrupt.length,
        corruptChunks: this.#found.corruptChunks,
      },
      ...(this.#opts.ownSeqMark === undefined ? {} : { own: this.#ownIntegrity() }),
      ...(this.#opts.storeSetAside === undefined ? {} : { setAside: this.#opts.storeSetAside }),
    };
  }

  /** Devices whose later events are withheld, and why; revoked devices are left out. */
  withheld(): Withheld[] {
    return this.#visible.withheld((device) => this.#opts.roster.lookup(device)?.revoked === true);
  }

  /**
   * The log's most recent own failures (`LOG_INTERNAL`, bounded): a push into the sync documents
   * that failed, a listener that threw, a storage error while storing received events.
   */
  internalErrors(): readonly AccordError[] {
    return this.#internal.list();
  }

  /** The most recent security incidents (bounded). */
  incidents(): readonly SecurityIncident[] {
    return this.#incidents.list();
  }

  /**
   * Whole documents handled outside the Repo: peers' syncs of sealed (frozen) documents answered
   * from their stored copies, and released segments taken in as the relay sent them (see
   * `RepoHost.wholeDocuments`; never on the relay).
   */
  wholeDocuments(): {
    readonly sentAsStored: number;
    readonly alreadyHeld: number;
    readonly takenAsSent: number;
  } {
    return this.#host.wholeDocuments();
  }

  /**
   * How received events were verified since open: one signature check each, or covered by a
   * relay seal of their whole segment (see {@link DeviceLog.segmentEvents}).
   */
  verification(): { readonly oneByOne: number; readonly bySeal: number } {
    return this.#ingest.verification();
  }

  /**
   * Re-reads the root index and every followed segment after a roster change.
   *
   * @remarks A device's segments are only followed once the roster knows the device, and its
   * entries are only accepted then; a device enrolled after its first events arrived would
   * otherwise never be read.
   */
  rosterChanged(): void {
    if (this.#closed) return;
    this.#segments.rereadAll();
    this.#following.refresh();
  }

  /**
   * Calls `listener` each time a peer's sync message about a document `wants` accepts (default:
   * all) has been taken in, saying whether the log now holds every change the peer held of that
   * document; returns the unsubscribe function.
   *
   * @remarks For a process that must not write before it has learned what its peers hold (a relay
   * restored from an older backup). Listener errors are swallowed.
   */
  onPeerSync(
    listener: (report: PeerSyncReport) => void,
    wants?: (peer: string, documentId: string) => boolean,
  ): () => void {
    return this.#host.onPeerSync(listener, wants);
  }

  /**
   * The documents held in memory, and whether each is ready: the root, the segments the log
   * follows, and sealed ones reloaded to serve a peer (for tests and benchmarks).
   */
  documentsInMemory(): { readonly documentId: string; readonly ready: boolean }[] {
    return this.#host.documents();
  }

  /**
   * Serves documents that `DeviceLogOptions.serves` refused until now to the peers that asked for
   * them (see `serves`). Resolves once their sync has started.
   */
  servingChanged(documentIds: readonly string[]): Promise<void> {
    return this.#host.servingChanged(documentIds);
  }

  /**
   * The sync message that gives a peer holding none of sealed segment `documentId` all of it: the
   * document as stored here, one document chunk, which is what Automerge's own sync sends such a
   * peer. Undefined unless the segment is sealed here and stored as one such chunk.
   *
   * @remarks For the relay, which releases a judged segment to the devices that asked for it
   * ({@link DeviceLog.servingChanged}): automerge-repo 2.5.6 generates that message anew for every
   * peer (`generateSyncMessage` saves the whole document, DEFLATE and SHA-256 in WebAssembly,
   * ≈ 50–120 ms per 5000 events), while the stored snapshot already holds those bytes. The heads
   * are the chunk header's. A copy that lags behind the Repo's costs bytes only: the Repo's sync
   * that follows brings the rest.
   */
  async storedSyncMessage(documentId: string): Promise<Uint8Array | undefined> {
    const id = documentId as DocumentId;
    if (!this.#segments.isSealed(id)) return undefined;
    const chunks = await this.#host.storedChunks(id);
    const only = chunks.length === 1 ? chunks[0] : undefined;
    const heads = only === undefined ? undefined : documentChunkHeads(only);
    if (only === undefined || heads === undefined) return undefined;
    return A.encodeSyncMessage({ heads, need: [], have: [], changes: [only] });
  }

  /** Adds a network adapter (a peer server or client) to the running log. */
  addNetworkAdapter(adapter: NetworkAdapterInterface): void {
    this.#host.addNetworkAdapter(adapter);
  }

  /** Automerge heads of every facility document this log holds, by document id. */
  heads(): Record<string, readonly string[]> {
    return this.#segments.heads();
  }

  /** Number of verified events held (visible or behind a hole). */
  size(): number {
    return this.#visible.size;
  }

  /** Resolves once queued appends and ingest work are done (segments received whole stored). */
  async settled(): Promise<void> {
    await this.#own.idle();
    await this.#push.pushed();
    await this.#ingest.settled();
    await this.#segments.stored();
  }

  /** Waits for pending writes, saves documents and stops syncing. Does not close the event store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#history.stop();
    await this.#own.idle();
    await this.#push.pushed();
    this.#push.stop();
    await this.#marks?.closeClean();
    this.#sweep.stop();
    this.#seals.close();
    this.#bulk.close();
    await this.#work.tail;
    await this.#ingest.committed;
    this.#closed = true;
    await this.#host.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AccordError(ErrorCode.LOG_CLOSED, 'the log is closed');
  }
}
