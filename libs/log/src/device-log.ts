import * as A from '@automerge/automerge';
import {
  Repo,
  type DocHandle,
  type DocumentId,
  type NetworkAdapterInterface,
  type PeerId,
} from '@automerge/automerge-repo';
import {
  compareTentative,
  isSystemEventType,
  prepareDraft,
  ProjectionFolder,
  type EventStatusInfo,
  type Projection,
} from '@accord/domain';
import {
  AccordError,
  compareHlc,
  decodeSignedEvent,
  encodeSignedEvent,
  envelopeBytes,
  ErrorCode,
  HybridClock,
  isAccordError,
  MAX_EVENT_BYTES,
  newEventId,
  parseDeadletterDiscardedData,
  parseRetryRequestedData,
  parseRosterUpdatedData,
  parseSegmentSealedData,
  parseVerdictData,
  parseAcceptedVerdictsData,
  readAcceptedVerdicts,
  segmentDigest,
  segmentName,
  signEventEncoded,
  SystemEventType,
  verifyEvents,
  type DeviceId,
  type EventEnvelope,
  type EventId,
  type FacilityId,
  type Result,
  type SignedEvent,
} from '@accord/protocol';
import { localWarnings } from '@accord/rules';
import type { EventStore, StoredEvent } from '@accord/storage-level';
import type {
  AppendResult,
  DeviceLogApi,
  DeviceLogOptions,
  Draft,
  EventInfo,
  EventsListener,
  IntegrityReport,
  LogCounts,
  OwnHistory,
  SecurityIncident,
  SystemDraft,
} from './api.js';
import { CommitQueue } from './commit-queue.js';
import { FrozenDocumentsStorage } from './frozen-storage.js';
import { SeqIds } from './seq-ids.js';
import {
  rootDocumentId,
  rootInitialBytes,
  segmentDocumentId,
  segmentInitialBytes,
  type RootDoc,
  type SegmentDoc,
} from './documents.js';

const DEFAULT_SEGMENT_SIZE = 5000;

/** The schema check of each system event type's data. */
const SYSTEM_DATA: Readonly<Record<SystemEventType, (data: unknown) => Result<unknown>>> = {
  [SystemEventType.Verdict]: parseVerdictData,
  [SystemEventType.AcceptedVerdicts]: parseAcceptedVerdictsData,
  [SystemEventType.RetryRequested]: parseRetryRequestedData,
  [SystemEventType.DeadletterDiscarded]: parseDeadletterDiscardedData,
  [SystemEventType.RosterUpdated]: parseRosterUpdatedData,
  [SystemEventType.SegmentSealed]: parseSegmentSealedData,
};
/**
 * How often idle sealed segments are dropped from memory. Short: a device appending thousands of
 * events a second seals a segment every second or two, and each one kept loaded holds every
 * event's bytes twice (Automerge's copy, the materialized one). Long enough that the throttled
 * document save (DOCUMENT_SAVE_DEBOUNCE_MS) is done before a segment can count as idle.
 */
const DEFAULT_SWEEP_MS = 2000;
/**
 * How long a whole segment of another device, arriving at once, waits for the relay's seal of it
 * before its events are verified one by one; one window is shared by every segment of a burst.
 */
const SEAL_WAIT_MS = 1000;
const MAX_INTERNED_STRINGS = 10_000;
const DOCUMENT_SAVE_DEBOUNCE_MS = 1000;
/** How long durable own events wait to be grouped into one Automerge change. */
const PUSH_DELAY_MS = 50;
const SEALED = new Uint8Array([1]);
const sealMarker = (index: number): string => `sealed/${index}`;
const MAX_INCIDENTS_KEPT = 1000;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** An own event signed and encoded once: the bytes are what the store keeps and peers get. */
interface SignedOwn {
  readonly event: SignedEvent;
  readonly bytes: Uint8Array;
}
/** The one `deps` list of every event that depends on nothing (frozen: events are immutable). */
const NO_DEPS: SignedEvent['deps'] = Object.freeze([]);

interface SegmentState {
  readonly id: DocumentId;
  readonly device: DeviceId;
  readonly index: number;
  readonly handle: DocHandle<SegmentDoc>;
  readonly listener: () => void;
  /** How many list entries have been looked at; a shorter list means a rescan. */
  processed: number;
  /**
   * The entry at `processed - 1` when it was looked at. If another entry is found there later,
   * something was merged in before it (a concurrent or hostile insertion), so the whole list is
   * read again: reading only past `processed` would miss the inserted entry for good.
   */
  lastSeen?: Uint8Array;
}

/** Records that `list` has been read up to its end. */
function markProcessed(segment: SegmentState, list: readonly unknown[]): void {
  segment.processed = list.length;
  const last = list[list.length - 1];
  if (last instanceof Uint8Array) segment.lastSeen = last;
  else delete segment.lastSeen;
}

/** A storage adapter that can list its corrupt chunks (ours can; foreign ones may not). */
interface ScannableStorage {
  scan(): Promise<{ corrupt: readonly (readonly string[])[] }>;
  remove(key: string[]): Promise<void>;
}

function isScannable(storage: unknown): storage is ScannableStorage {
  return (
    typeof storage === 'object' &&
    storage !== null &&
    typeof (storage as { scan?: unknown }).scan === 'function' &&
    typeof (storage as { remove?: unknown }).remove === 'function'
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads back an event the log itself stored; undefined when the bytes do not match their slot. */
function parseStoredEvent(stored: StoredEvent): SignedEvent | undefined {
  try {
    const event = JSON.parse(utf8.decode(stored.bytes)) as SignedEvent;
    return event.id === stored.id && event.device === stored.device && event.seq === stored.seq
      ? event
      : undefined;
  } catch {
    return undefined;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
  readonly repo: Repo;

  readonly #opts: DeviceLogOptions;
  readonly #storage: FrozenDocumentsStorage;
  readonly #store: EventStore;
  readonly #segmentSize: number;
  readonly #clock: () => number;
  readonly #hlc: HybridClock;
  readonly #commit: CommitQueue<SignedOwn>;

  // Every verified event is either visible (its device's prefix up to it is contiguous: the
  // projection folder holds it, `#folder.events`) or held back behind a hole (`#held`). One map
  // per event across the log: at 100k events each extra map costs several megabytes.
  /** Verified events held back behind a hole in their device's sequence. */
  readonly #held = new Map<EventId, SignedEvent>();
  /** Per device: sequence number → event id. */
  readonly #seqs = new Map<DeviceId, SeqIds>();
  /** Per device: the highest n such that 1…n are all present. */
  readonly #contiguous = new Map<DeviceId, number>();
  /** Digests of the relay's `SegmentSealed` statements, by `<device>/<index>` (DESIGN.md §8). */
  readonly #seals = new Map<string, string>();
  readonly #verification = { oneByOne: 0, bySeal: 0 };
  /** Segments waiting for their relay seal (by `<device>/<index>`), and when the shared wait ends. */
  readonly #awaitingSeal = new Map<string, SegmentState>();
  /** Segments that have waited once: a late reading never waits again. */
  readonly #waitedForSeal = new Set<string>();
  #sealWaitEnd = 0;
  #sealWaitTimer: ReturnType<typeof setTimeout> | undefined;

  readonly #segments = new Map<DocumentId, SegmentState>();
  /** Full segments whose events are all in the store: unloaded, served from storage on demand. */
  readonly #sealed = new Set<DocumentId>();
  #janitor: ReturnType<typeof setInterval> | undefined;
  readonly #janitorHeads = new Map<DocumentId, string>();
  /** Own segments by document id, so the sweep can record that they were sealed. */
  readonly #ownSealIndex = new Map<DocumentId, number>();
  /** When a sync message about a document last went in or out. */
  readonly #traffic = new Map<DocumentId, number>();
  readonly #opening = new Map<DocumentId, Promise<SegmentState>>();
  #root!: DocHandle<RootDoc>;

  #assignedSeq: number;
  readonly #incidents: SecurityIncident[] = [];
  readonly #strings = new Map<string, string>();
  #incidentCount = 0;
  /** Sync-document chunks dropped at start-up because their checksum failed. */
  #corruptChunksAtStart = 0;
  readonly #corruptAtStart: { device: string; seq: number }[] = [];
  #ingestChain: Promise<void> = Promise.resolve();
  /** Verification of ingested segments, one after another. */
  #verifyChain: Promise<void> = Promise.resolve();
  /** Second ingest stage: stores and folds verified events, in order. */
  #commitChain: Promise<void> = Promise.resolve();
  /** Ids being verified or stored by the second stage. */
  readonly #inFlight = new Set<string>();
  #toPush: StoredEvent[] = [];
  #pushScheduled = false;
  #pushChain: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #listeners = new Set<EventsListener>();

  /** Incremental statuses and confirmed fold over the visible events. */
  readonly #folder: ProjectionFolder;
  // Derived views, rebuilt lazily when the visible set changes.
  #counts: LogCounts | undefined;
  #tentative: { projection: Projection; last: SignedEvent | undefined } | undefined;

  private constructor(
    opts: DeviceLogOptions,
    repo: Repo,
    storage: FrozenDocumentsStorage,
    highestOwnSeq: number,
    hlc: HybridClock,
  ) {
    this.#storage = storage;
    this.#opts = opts;
    this.#store = opts.eventStore;
    this.deviceId = opts.key.deviceId;
    this.facility = opts.facility;
    this.repo = repo;
    this.#segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.#clock = opts.clock ?? Date.now;
    this.#hlc = hlc;
    this.#assignedSeq = highestOwnSeq;
    this.#folder = new ProjectionFolder(opts.relay ?? null);
    this.#commit = new CommitQueue<SignedOwn>(highestOwnSeq + 1, (batch) => this.#writeOwn(batch));
  }

  /**
   * Opens the log: checks the event store's integrity, loads it, opens the facility's
   * documents and reconciles them with the store.
   */
  static async open(opts: DeviceLogOptions): Promise<DeviceLog> {
    const store = opts.eventStore;
    // One pass over the store: intact events are loaded, damaged ones listed for repair.
    const corrupt: { device: string; seq: number }[] = [];
    const loaded: SignedEvent[] = [];
    const skipped = ({ device, seq }: { device: string; seq: number }): void =>
      void corrupt.push({ device, seq });
    for await (const stored of store.iterate({ skipCorrupt: true, onSkipped: skipped })) {
      // The store only ever holds events that were fully decoded, schema-checked and verified
      // before they were written, behind a checksum: reading them back needs no second
      // validation (a quarter of start-up time at 100k events). A value that no longer parses,
      // or parses to something else, is corruption.
      const event = parseStoredEvent(stored);
      if (event !== undefined) loaded.push(event);
      else corrupt.push({ device: stored.device, seq: stored.seq });
    }
    const clock = opts.clock ?? Date.now;
    let last = undefined as SignedEvent['hlc'] | undefined;
    let highestOwnSeq = 0;
    for (const event of loaded) {
      if (last === undefined || compareHlc(event.hlc, last) > 0) last = event.hlc;
      if (event.device === opts.key.deviceId && event.seq > highestOwnSeq) highestOwnSeq = event.seq;
    }
    const hlc = new HybridClock({ wallClock: clock, ...(last !== undefined ? { last } : {}) });
    // A damaged own event still used its sequence number: never hand that number out again.
    highestOwnSeq = Math.max(highestOwnSeq, await store.highestSeq(opts.key.deviceId));

    let corruptChunks = 0;
    if (isScannable(opts.storage)) {
      // Corrupt sync-document chunks are dropped; peers (and our event store) supply them again.
      const { corrupt } = await opts.storage.scan();
      for (const key of corrupt) await opts.storage.remove([...key]);
      corruptChunks = corrupt.length;
    }
    await opts.afterStartupScan?.();

    const storage = new FrozenDocumentsStorage(opts.storage);
    const repo = new Repo({
      peerId: opts.key.deviceId as unknown as PeerId,
      storage,
      network: [...(opts.network ?? [])],
      sharePolicy: () => Promise.resolve(true),
      // Peers must not keep sync state for us across connections: a reconnect after any
      // transport fault restarts sync from scratch, or lost messages could stall it
      // (DESIGN.md §7). Whatever adapter carries the connection.
      isEphemeral: true,
      // The event store is the durable copy; document saves (each one may compact a whole
      // segment) can lag behind it.
      saveDebounceRate: DOCUMENT_SAVE_DEBOUNCE_MS,
    });
    const log = new DeviceLog(opts, repo, storage, highestOwnSeq, hlc);
    log.#corruptChunksAtStart = corruptChunks;
    log.#corruptAtStart.push(...corrupt);
    for (const event of loaded) log.#addVerified(event);
    await log.#openDocuments();
    return log;
  }

  // ---------------------------------------------------------------- appending

  /** Records a user action: resolves after the signed event is durable, with any local-rule warning. */
  async append(draft: Draft): Promise<AppendResult> {
    this.#assertOpen();
    const view = this.tentative();
    const prepared = prepareDraft(view, { type: draft.type, data: draft.data });
    if (!prepared.ok) throw prepared.error;
    const p = prepared.value;
    const envelope = this.#envelope({
      type: p.type,
      schema: p.schema,
      subject: p.subject,
      deps: p.deps,
      ...(p.basis !== undefined ? { basis: p.basis } : {}),
      ...(draft.supersedes !== undefined ? { supersedes: draft.supersedes } : {}),
      data: p.data,
    });
    // Warnings are computed on the view the user saw, before this event joins it.
    const verdict = localWarnings(view, { ...envelope, sig: '' }, { nowMs: this.#clock() });
    const event = await this.#signAndCommit(envelope);
    return verdict.outcome === 'deadletter' ? { event, warning: verdict } : { event };
  }

  /** Records a system statement (verdict, roster, retry, discard): no local rules, schema-checked data. */
  async appendSystem(draft: SystemDraft): Promise<SignedEvent> {
    this.#assertOpen();
    const check = Object.hasOwn(SYSTEM_DATA, draft.type) ? SYSTEM_DATA[draft.type] : undefined;
    if (check === undefined) {
      throw new AccordError(ErrorCode.PROTOCOL_SCHEMA, `${String(draft.type)} is not a system event type`);
    }
    const checked = check(draft.data);
    if (!checked.ok) throw checked.error;
    const envelope = this.#envelope(
      {
        type: draft.type,
        schema: 1,
        subject: draft.subject,
        deps: [...new Set(draft.deps ?? [])].sort(),
        data: draft.data,
      },
      true,
    );
    return this.#signAndCommit(envelope);
  }

  /**
   * The next own envelope: a fresh id, the next sequence number and clock reading.
   *
   * @remarks With `checkSize`, an envelope whose signed event would exceed the size limit is
   * refused (`PROTOCOL_TOO_LARGE`) before it takes a number: the relay appends many verdicts at
   * once, so a failure found while signing would leave a hole behind later numbers, and a hole
   * stops the log. It costs one more encoding, so only system events (verdicts, rosters) pay it.
   */
  #envelope(
    parts: Omit<EventEnvelope, 'v' | 'id' | 'facility' | 'device' | 'seq' | 'hlc'>,
    checkSize = false,
  ): EventEnvelope {
    const envelope: EventEnvelope = {
      v: 1,
      id: newEventId(this.#clock()),
      facility: this.facility,
      device: this.deviceId,
      seq: this.#assignedSeq + 1,
      hlc: this.#hlc.now(),
      ...parts,
    };
    if (checkSize) {
      // The signed form adds `,"sig":"<86 characters>"`: 95 bytes.
      const size = envelopeBytes(envelope).length + 95;
      if (size > MAX_EVENT_BYTES) {
        throw new AccordError(
          ErrorCode.PROTOCOL_TOO_LARGE,
          `signed event would be ${size} bytes (limit ${MAX_EVENT_BYTES})`,
          { details: { size, maxBytes: MAX_EVENT_BYTES } },
        );
      }
    }
    this.#assignedSeq = envelope.seq;
    return envelope;
  }

  async #signAndCommit(envelope: EventEnvelope): Promise<SignedEvent> {
    let signed: SignedOwn;
    try {
      signed = await signEventEncoded(envelope, this.#opts.key);
    } catch (err) {
      // Nothing took a later number meanwhile: give this one back instead of stopping the log.
      if (envelope.seq === this.#assignedSeq) {
        this.#assignedSeq--;
        throw err;
      }
      this.#commit.abandon(envelope.seq, err);
      throw err;
    }
    await this.#commit.submit(envelope.seq, signed);
    return signed.event;
  }

  /** Writes a contiguous run of own events durably, then makes them visible and sends them to peers. */
  async #writeOwn(batch: readonly SignedOwn[]): Promise<void> {
    const stored: StoredEvent[] = batch.map(({ event, bytes }) => ({
      device: event.device,
      seq: event.seq,
      id: event.id,
      bytes,
    }));
    await this.#store.append(stored);
    for (const { event } of batch) this.#addVerified(event);
    this.#schedulePush(stored);
  }

  /**
   * Hands durable own events to the sync documents in large groups.
   *
   * @remarks Each Automerge change has a fixed cost (DESIGN.md §7), so events that became
   * durable while the previous push ran go out together in one change. The push is not
   * on the acknowledgement path: the event store is the durable copy, and start-up
   * re-adds to the documents anything a crash kept from them.
   */
  #schedulePush(stored: readonly StoredEvent[]): void {
    this.#toPush.push(...stored);
    if (this.#pushScheduled) return;
    this.#pushScheduled = true;
    setTimeout(() => {
      this.#pushChain = this.#pushChain.then(async () => {
        this.#pushScheduled = false;
        const batch = this.#toPush;
        this.#toPush = [];
        if (batch.length === 0 || this.#closed) return;
        try {
          await this.#pushOwn(batch);
        } catch (err) {
          this.#incident({
            code: 'PROTOCOL_BAD_ENCODING',
            message: `could not add own events to the sync documents: ${String(err)}`,
          });
        }
      });
    }, PUSH_DELAY_MS);
  }

  /** Appends own events to their segment documents, creating segments (and announcing them) as needed. */
  async #pushOwn(stored: readonly StoredEvent[]): Promise<void> {
    const bySegment = new Map<number, StoredEvent[]>();
    for (const event of stored) {
      const index = Math.floor((event.seq - 1) / this.#segmentSize);
      let list = bySegment.get(index);
      if (list === undefined) bySegment.set(index, (list = []));
      list.push(event);
    }
    for (const [index, events] of bySegment) {
      const segment = await this.#ownSegment(index);
      // Our own pushes need no re-ingest, unless entries from peers still wait to be read.
      const upToDate = segment.processed === segment.handle.doc().events.length;
      segment.handle.change((doc) => {
        doc.events.push(...events.map((event) => event.bytes));
      });
      if (upToDate) markProcessed(segment, segment.handle.doc().events);
      this.#maybeSeal(segment);
    }
  }

  async #ownSegment(index: number): Promise<SegmentState> {
    const segment = await this.#openSegment(this.deviceId, index);
    const known = this.#root.doc().devices[this.deviceId] ?? 0;
    if (known < index + 1) {
      this.#root.change((doc) => {
        doc.devices[this.deviceId] = index + 1;
      });
    }
    return segment;
  }

  // ---------------------------------------------------------------- documents and ingest

  async #openDocuments(): Promise<void> {
    const rootId = rootDocumentId(this.facility);
    this.#root = await this.#openDoc<RootDoc>(rootId, () => rootInitialBytes(this.facility));
    this.#root.on('change', () => this.#onRootChange());
    // Own segments first: re-push any own event the documents lost (a crash between the
    // durable write and the document save, or a dropped corrupt chunk). Segments already
    // sealed after such a check are skipped.
    const ownSegments = Math.max(1, Math.ceil(this.#assignedSeq / this.#segmentSize));
    for (let index = 0; index < ownSegments; index++) {
      if ((await this.#store.meta.get(sealMarker(index))) !== undefined) {
        const id = segmentDocumentId(this.facility, this.deviceId, index);
        this.#sealed.add(id);
        this.#storage.freeze(id); // flushed before the marker was written
        continue;
      }
      const id = segmentDocumentId(this.facility, this.deviceId, index);
      if (
        (index + 1) * this.#segmentSize <= this.#assignedSeq &&
        (await this.#storedSegmentComplete(id, index))
      ) {
        // Full, and its stored document holds every event: seal it without loading it into the Repo.
        await this.#store.meta.put(sealMarker(index), SEALED);
        this.#sealed.add(id);
        this.#storage.freeze(id);
        continue;
      }
      const segment = await this.#ownSegment(index);
      this.#reconcileOwn(segment);
      this.#maybeSeal(segment);
    }
    await this.#onRootChangeNow();
    const touch = (message: object): void => {
      const id = 'documentId' in message ? (message.documentId as DocumentId) : undefined;
      if (id !== undefined && this.#sealed.has(id)) this.#traffic.set(id, this.#clock());
    };
    this.repo.networkSubsystem.on('message', touch);
    this.repo.synchronizer.on('message', touch);
    this.#janitor = setInterval(
      () => this.#enqueue(() => this.#sweep()),
      this.#opts.sealSweepMs ?? DEFAULT_SWEEP_MS,
    );
    this.#janitor.unref();
  }

  /**
   * Reads an own segment's stored document outside the Repo and tells whether it holds
   * every one of the segment's events (so nothing needs re-adding after a crash).
   */
  async #storedSegmentComplete(id: DocumentId, index: number): Promise<boolean> {
    const chunks = await this.#storedChunks(id);
    if (chunks.length === 0) return false;
    let doc = A.init<SegmentDoc>();
    try {
      for (const data of chunks) doc = A.loadIncremental(doc, data);
    } catch {
      return false;
    }
    const list: unknown = doc.events;
    if (!Array.isArray(list)) return false;
    const first = index * this.#segmentSize + 1;
    let count = 0;
    for (const seq of this.#ownSeqsIn(list)) if (seq >= first && seq < first + this.#segmentSize) count++;
    return count === this.#segmentSize;
  }

  /** The stored Automerge chunks (snapshots and incremental changes) of a document. */
  async #storedChunks(id: DocumentId): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const chunk of await this.#opts.storage.loadRange([id])) {
      const kind = chunk.key[1];
      if (chunk.data !== undefined && (kind === 'incremental' || kind === 'snapshot')) out.push(chunk.data);
    }
    return out;
  }

  /** Sequence numbers of this device's events among a segment document's entries (invalid entries skipped). */
  #ownSeqsIn(list: readonly unknown[]): Set<number> {
    const seqs = new Set<number>();
    for (const bytes of list) {
      const decoded = bytes instanceof Uint8Array ? decodeSignedEvent(bytes) : undefined;
      if (decoded?.ok === true && decoded.value.device === this.deviceId) seqs.add(decoded.value.seq);
    }
    return seqs;
  }

  /** True when the store holds every event of segment `index` of `device`. */
  #complete(device: DeviceId, index: number): boolean {
    return (this.#contiguous.get(device) ?? 0) >= (index + 1) * this.#segmentSize;
  }

  /**
   * Seals a full segment whose events are all durable here: the log stops following it,
   * and the sweep drops its document from memory once it has been idle. The Repo loads it
   * from storage again when a peer asks for it, so append cost and memory stay flat as
   * history grows (DESIGN.md §7).
   */
  #maybeSeal(segment: SegmentState): void {
    if (!this.#complete(segment.device, segment.index)) return;
    if (segment.handle.doc().events.length < this.#segmentSize) return; // peers still need what is missing
    this.#sealed.add(segment.id);
    this.#segments.delete(segment.id);
    segment.handle.off('change', segment.listener);
  }

  /**
   * Unloads sealed documents (just sealed, or reloaded by the Repo to serve a peer) once
   * their heads have not moved and no sync message about them has passed for a whole
   * sweep interval (a peer being served is never cut off mid-sync).
   *
   * @remarks Waiting for idleness matters: automerge-repo's throttled save and an explicit
   * flush racing on the same document can compact its stored chunks away.
   */
  async #sweep(): Promise<void> {
    for (const id of this.#sealed) {
      const handle = this.repo.handles[id];
      if (handle === undefined || !handle.isReady()) {
        this.#janitorHeads.delete(id);
        continue;
      }
      const heads = handle.heads().join(',');
      const busy =
        (this.#traffic.get(id) ?? 0) > this.#clock() - (this.#opts.sealSweepMs ?? DEFAULT_SWEEP_MS);
      if (busy || this.#janitorHeads.get(id) !== heads) {
        this.#janitorHeads.set(id, heads);
        continue;
      }
      this.#janitorHeads.delete(id);
      this.#traffic.delete(id);
      if (!this.#storage.isFrozen(id)) {
        await this.repo.flush([id]);
        this.#storage.freeze(id);
        const own = this.#ownSealIndex.get(id);
        if (own !== undefined) await this.#store.meta.put(sealMarker(own), SEALED);
      }
      await this.repo.removeFromCache(id);
    }
  }

  #reconcileOwn(segment: SegmentState): void {
    const list = segment.handle.doc().events;
    const first = segment.index * this.#segmentSize + 1;
    const last = Math.min(first + this.#segmentSize - 1, this.#assignedSeq);
    // Distinct seqs, not entries: after a crash a peer may hand back an entry we pushed again,
    // so the list can hold duplicates and still miss an event the store has.
    const present = this.#ownSeqsIn(list);
    const missing: Uint8Array[] = [];
    const ids = this.#seqs.get(this.deviceId);
    for (let seq = first; seq <= last; seq++) {
      const id = ids?.get(seq);
      const event = id === undefined ? undefined : this.#known(id);
      if (!present.has(seq) && event !== undefined) missing.push(encodeSignedEvent(event));
    }
    if (missing.length > 0) {
      segment.handle.change((doc) => {
        for (const bytes of missing) doc.events.push(bytes);
      });
    }
    // Anything else in it (peers' copies of our later events after a restore, foreign entries).
    this.#ingestSegment(segment);
  }

  /**
   * Opens a shared document whose first change is known (deterministic), never waiting
   * on the network.
   *
   * @remarks `repo.find` can wait forever for a document the Repo already tried to fetch
   * from peers ('requesting'/'unavailable'). Instead we merge the known first change and
   * every stored chunk into the handle ourselves (as the Repo's own loader does; both are
   * idempotent) and mark it loaded. Sync then brings whatever peers have beyond that.
   */
  async #openDoc<T>(id: DocumentId, initial: () => Uint8Array): Promise<DocHandle<T>> {
    const handle = this.repo.import<T>(initial(), { docId: id });
    for (const data of await this.#storedChunks(id)) this.repo.import<T>(data, { docId: id });
    if (!handle.isReady()) handle.doneLoading();
    await handle.whenReady();
    return handle;
  }

  #openSegment(device: DeviceId, index: number): Promise<SegmentState> {
    const id = segmentDocumentId(this.facility, device, index);
    const known = this.#segments.get(id);
    if (known !== undefined) return Promise.resolve(known);
    let opening = this.#opening.get(id);
    if (opening === undefined) {
      opening = this.#openDoc<SegmentDoc>(id, () => segmentInitialBytes(this.facility, device, index)).then(
        (handle) => {
          const listener = (): void => this.#scheduleIngest(state);
          const state: SegmentState = { id, device, index, handle, listener, processed: 0 };
          this.#segments.set(id, state);
          this.#opening.delete(id);
          if (device === this.deviceId) this.#ownSealIndex.set(id, index);
          handle.on('change', listener);
          return state;
        },
      );
      this.#opening.set(id, opening);
    }
    return opening;
  }

  #onRootChange(): void {
    this.#enqueue(() => this.#onRootChangeNow());
  }

  async #onRootChangeNow(): Promise<void> {
    const devices = this.#root.doc().devices;
    // The relay's segments first: the seals in them spare verifying sealed segments one by one.
    const relay = this.#opts.relay ?? undefined;
    const entries = Object.entries(devices).sort(([a], [b]) => Number(b === relay) - Number(a === relay));
    for (const [device, count] of entries) {
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0 || count > 1_000_000)
        continue;
      const member = this.#opts.roster.lookup(device as DeviceId);
      // The index is writable by anyone; only the roster's devices get documents opened.
      if (member === undefined || member.facility !== this.facility) continue;
      for (let index = 0; index < count; index++) {
        const id = segmentDocumentId(this.facility, device as DeviceId, index);
        if (this.#sealed.has(id)) continue;
        if (
          device !== this.deviceId &&
          this.#complete(device as DeviceId, index) &&
          !this.#segments.has(id)
        ) {
          this.#sealed.add(id); // every event already here: nothing to read from it
          continue;
        }
        const segment = await this.#openSegment(device as DeviceId, index);
        this.#ingestSegment(segment);
      }
    }
  }

  #scheduleIngest(segment: SegmentState): void {
    this.#enqueue(() => {
      this.#ingestSegment(segment);
      return Promise.resolve();
    });
  }

  /** Serializes ingest work so that concurrent document changes never race on the store. */
  #enqueue(work: () => Promise<void>): void {
    this.#ingestChain = this.#ingestChain.then(async () => {
      if (this.#closed) return;
      try {
        await work();
      } catch (err) {
        if (this.#closed) return;
        this.#incident({ code: 'PROTOCOL_BAD_ENCODING', message: `ingest failed: ${String(err)}` });
      }
    });
  }

  /** Reads new entries of a segment document, keeps only valid facility events, stores them durably. */
  #ingestSegment(segment: SegmentState): void {
    const list = segment.handle.doc().events;
    if (!Array.isArray(list)) return;
    if (this.#waitForSeal(segment, list)) return;
    const lastSeen = segment.processed > 0 ? list[segment.processed - 1] : undefined;
    const shifted =
      segment.lastSeen !== undefined &&
      (!(lastSeen instanceof Uint8Array) || !bytesEqual(lastSeen, segment.lastSeen));
    const start = list.length < segment.processed || shifted ? 0 : segment.processed;
    const candidates: { event: SignedEvent; bytes: Uint8Array }[] = [];
    const seenInBatch = new Set<string>();
    for (let i = start; i < list.length; i++) {
      const bytes: unknown = list[i];
      if (!(bytes instanceof Uint8Array)) {
        this.#incident({ code: 'PROTOCOL_SCHEMA', message: `segment ${segment.id} entry ${i} is not bytes` });
        continue;
      }
      const decoded = decodeSignedEvent(bytes);
      if (!decoded.ok) {
        this.#incident({
          code: decoded.error.code as SecurityIncident['code'],
          message: decoded.error.message,
        });
        continue;
      }
      const event = decoded.value;
      if (seenInBatch.has(event.id) || this.#inFlight.has(event.id)) continue;
      const existing = this.#known(event.id);
      if (existing !== undefined) {
        if (!bytesEqual(encodeSignedEvent(existing), bytes)) {
          this.#incident({
            code: 'LOG_CONFLICTING_EVENT',
            message: 'an event id arrived with different bytes',
            eventId: event.id,
            device: event.device,
          });
        }
        continue;
      }
      if (event.facility !== this.facility) {
        this.#incident({
          code: 'LOG_WRONG_FACILITY',
          message: `event of facility ${event.facility}`,
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      const member = this.#opts.roster.lookup(event.device);
      if (member === undefined) {
        this.#incident({
          code: 'LOG_UNKNOWN_DEVICE',
          message: 'event from a device outside the roster',
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      if (member.facility !== this.facility) {
        this.#incident({
          code: 'LOG_WRONG_FACILITY',
          message: 'event from a device of another facility',
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      const other = this.#seqs.get(event.device)?.get(event.seq);
      if (other !== undefined) {
        this.#incident({
          code: 'LOG_CONFLICTING_EVENT',
          message: `device ${event.device} used seq ${event.seq} twice`,
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      seenInBatch.add(event.id);
      candidates.push({ event, bytes });
    }
    markProcessed(segment, list);
    if (candidates.length === 0) return;
    // Signatures are checked on the thread pool while the next segment is scanned; storing
    // and folding stay strictly in order on their own chain.
    for (const { event } of candidates) this.#inFlight.add(event.id);
    // One segment's verification at a time (each one concurrent inside): the first segment
    // is ready to commit as soon as possible instead of when the last one is.
    const verdicts = this.#verifyChain.then(() => this.#verify(segment, candidates));
    this.#verifyChain = verdicts.then(
      () => undefined,
      () => undefined,
    );
    this.#commitChain = this.#commitChain.then(async () => {
      try {
        await this.#commitIngested(candidates, await verdicts);
        if (segment.device !== this.deviceId && this.#segments.has(segment.id)) this.#maybeSeal(segment);
      } catch (err) {
        if (!this.#closed)
          this.#incident({ code: 'PROTOCOL_BAD_ENCODING', message: `ingest failed: ${String(err)}` });
      } finally {
        for (const { event } of candidates) this.#inFlight.delete(event.id);
      }
    });
  }

  /**
   * True when `segment` arrived whole, none of it is held yet, the relay has not been heard to
   * seal it, and the shared wait for seals is open: it is read again when the seal arrives or the
   * wait ends. Verifying one relay signature is much cheaper than a whole segment of device
   * signatures, and the relay's own segment usually arrives in the same burst.
   */
  #waitForSeal(segment: SegmentState, list: readonly unknown[]): boolean {
    const relay = this.#opts.relay;
    const key = segmentName(segment.device, segment.index);
    // (The relay itself never waits: it seals what it verified.)
    if (relay === undefined || relay === null || relay === this.deviceId) return false;
    if (segment.device === relay || segment.device === this.deviceId) return false;
    if (list.length < this.#segmentSize || segment.processed > 0 || this.#seals.has(key)) return false;
    if (this.#awaitingSeal.has(key)) return true; // still waiting (the document changed again)
    if (this.#waitedForSeal.has(key)) return false;
    if ((this.#contiguous.get(segment.device) ?? 0) > segment.index * this.#segmentSize) return false;
    const now = Date.now();
    if (now > this.#sealWaitEnd + SEAL_WAIT_MS) {
      // A new burst: open a new window (at most one wait per two windows' time).
      this.#sealWaitEnd = now + SEAL_WAIT_MS;
      this.#sealWaitTimer = setTimeout(() => this.#sealWaitOver(), SEAL_WAIT_MS);
      this.#sealWaitTimer.unref();
    }
    if (now >= this.#sealWaitEnd) return false;
    this.#awaitingSeal.set(key, segment);
    this.#waitedForSeal.add(key);
    return true;
  }

  /** The shared wait for seals is over: read every segment still waiting (one by one now). */
  #sealWaitOver(): void {
    this.#sealWaitTimer = undefined;
    const waiting = [...this.#awaitingSeal.values()];
    this.#awaitingSeal.clear();
    for (const segment of waiting) this.#scheduleIngest(segment);
  }

  /**
   * Checks the signatures of a segment's new entries, on the thread pool.
   *
   * @remarks When the entries include exactly the events of a segment the relay has sealed, and
   * their digest matches the seal, those events are verified by that one relay signature (it
   * signed only after verifying each of them); the rest are verified one by one (DESIGN.md §8).
   */
  async #verify(
    segment: SegmentState,
    candidates: readonly { event: SignedEvent; bytes: Uint8Array }[],
  ): Promise<boolean[]> {
    const sealed = await this.#sealedEntries(segment, candidates);
    const results = new Array<boolean>(candidates.length).fill(true);
    const rest = candidates.flatMap((c, i) => (sealed.has(i) ? [] : [{ c, i }]));
    this.#verification.bySeal += sealed.size;
    this.#verification.oneByOne += rest.length;
    if (rest.length === 0) return results;
    const checked = await verifyEvents(rest.map(({ c }) => c.event));
    rest.forEach(({ i }, k) => (results[i] = checked[k] === true));
    return results;
  }

  /** Indexes of `candidates` that a relay seal of `segment` covers (empty unless all of it matches). */
  async #sealedEntries(
    segment: SegmentState,
    candidates: readonly { event: SignedEvent; bytes: Uint8Array }[],
  ): Promise<Set<number>> {
    const digest = this.#seals.get(segmentName(segment.device, segment.index));
    if (digest === undefined || candidates.length < this.#segmentSize) return new Set();
    const first = segment.index * this.#segmentSize + 1;
    const bySeq = new Array<number>(this.#segmentSize);
    for (const [i, { event }] of candidates.entries()) {
      const at = event.seq - first;
      if (event.device !== segment.device || at < 0 || at >= this.#segmentSize) continue;
      if (bySeq[at] !== undefined) return new Set(); // two entries claim one seq: verify them all
      bySeq[at] = i;
    }
    for (let at = 0; at < this.#segmentSize; at++) if (bySeq[at] === undefined) return new Set();
    const ordered = bySeq.map((i) => candidates[i]!.bytes);
    return (await segmentDigest(ordered)) === digest ? new Set(bySeq) : new Set();
  }

  /** Stores verified events durably (in one batch when possible), then makes them visible. */
  async #commitIngested(
    candidates: readonly { event: SignedEvent; bytes: Uint8Array }[],
    valid: readonly boolean[],
  ): Promise<void> {
    const accepted: { event: SignedEvent; bytes: Uint8Array }[] = [];
    const seqTaken = new Set<string>();
    candidates.forEach((candidate, i) => {
      const { event } = candidate;
      if (valid[i] !== true) {
        this.#incident({
          code: 'LOG_FORGED_EVENT',
          message: 'bad signature',
          eventId: event.id,
          device: event.device,
        });
        return;
      }
      if (this.#known(event.id) !== undefined) return; // arrived meanwhile through another document
      const key = `${event.device}/${event.seq}`;
      if (seqTaken.has(key) || this.#seqs.get(event.device)?.get(event.seq) !== undefined) {
        this.#incident({
          code: 'LOG_CONFLICTING_EVENT',
          message: `device ${event.device} used seq ${event.seq} twice`,
          eventId: event.id,
          device: event.device,
        });
        return;
      }
      seqTaken.add(key);
      accepted.push(candidate);
    });
    if (accepted.length === 0 || this.#closed) return;
    const stored = accepted.map(({ event, bytes }) => ({
      device: event.device,
      seq: event.seq,
      id: event.id,
      bytes,
    }));
    try {
      await this.#store.append(stored);
    } catch (err) {
      if (!isAccordError(err, ErrorCode.STORAGE_CONFLICT)) throw err;
      // One event contradicts what is stored: keep the others, report that one.
      const kept: { event: SignedEvent; bytes: Uint8Array }[] = [];
      for (const [i, one] of stored.entries()) {
        try {
          await this.#store.append([one]);
          kept.push(accepted[i]!);
        } catch (inner) {
          if (!isAccordError(inner, ErrorCode.STORAGE_CONFLICT)) throw inner;
          this.#incident({
            code: 'LOG_CONFLICTING_EVENT',
            message: inner.message,
            eventId: one.id,
            device: one.device,
          });
        }
      }
      accepted.splice(0, accepted.length, ...kept);
    }
    for (const { event } of accepted) {
      this.#hlc.observe(event.hlc);
      this.#addVerified(event);
    }
  }

  // ---------------------------------------------------------------- in-memory state

  /** A verified event by id, visible or held back. */
  #known(id: EventId): SignedEvent | undefined {
    return this.#folder.events.get(id) ?? this.#held.get(id);
  }

  /**
   * One shared instance of each short string that repeats across events (device and
   * facility ids, types, subject kinds), of an event's id wherever a statement names it, of a
   * subject id that is also a data field, and of the empty `deps` list: a decoded event gets
   * fresh copies of them all, and at 100k events the copies alone cost tens of megabytes.
   */
  #interned(event: SignedEvent): SignedEvent {
    // In place: every event reaching the log is a fresh object of its own (decoded from bytes, or
    // just signed), and a copy would briefly double the memory of a whole history at start-up.
    const e = event as Mutable<SignedEvent>;
    if (e.type === SystemEventType.AcceptedVerdicts && readAcceptedVerdicts(e.data) !== undefined) {
      const targets = (e.data as { targets: string[] }).targets;
      for (let i = 0; i < targets.length; i++)
        targets[i] = this.#known(targets[i] as EventId)?.id ?? targets[i]!;
    }
    const str = (s: string): string => {
      const known = this.#strings.get(s);
      if (known !== undefined) return known;
      if (this.#strings.size < MAX_INTERNED_STRINGS) this.#strings.set(s, s);
      return s;
    };
    // The subject's id is usually also a field of the data (a patient's id, a lot's id).
    let subjectId = e.subject.id;
    const data = e.data;
    if (typeof data === 'object' && data !== null && !Array.isArray(data)) {
      for (const value of Object.values(data)) {
        if (value === subjectId) {
          subjectId = value;
          break;
        }
      }
    }
    e.id = this.#folder.sharedId(e.id) ?? e.id;
    e.facility = str(e.facility) as SignedEvent['facility'];
    e.device = str(e.device) as SignedEvent['device'];
    e.type = str(e.type);
    const subject = e.subject as Mutable<SignedEvent['subject']>;
    subject.kind = str(subject.kind);
    subject.id = subjectId;
    if (e.deps.length === 0) e.deps = NO_DEPS;
    return event;
  }

  #addVerified(decoded: SignedEvent): void {
    if (this.#known(decoded.id) !== undefined) return;
    const event = this.#interned(decoded);
    let ids = this.#seqs.get(event.device);
    if (ids === undefined) this.#seqs.set(event.device, (ids = new SeqIds()));
    ids.set(event.seq, event.id);
    let contiguous = this.#contiguous.get(event.device) ?? 0;
    if (event.seq !== contiguous + 1) {
      this.#held.set(event.id, event); // held back behind a hole (or already covered)
      return;
    }
    // The event and every held one it unblocks, in seq order (a seq above `contiguous` is held).
    const released: SignedEvent[] = [];
    for (let e: SignedEvent | undefined = event; e !== undefined;) {
      contiguous++;
      this.#folder.add(e);
      if (e.type === SystemEventType.SegmentSealed) this.#noteSeal(e);
      released.push(e);
      const next = ids.get(contiguous + 1);
      e = next === undefined ? undefined : this.#held.get(next);
      if (next !== undefined) this.#held.delete(next);
    }
    this.#contiguous.set(event.device, contiguous);
    this.#onVisible(released);
    if (event.device === this.deviceId && event.seq > this.#assignedSeq) this.#ownCameBack(event.seq);
    if (released.length > 0) this.#notify(released);
  }

  /** Remembers a relay-signed segment seal (see {@link DeviceLog.segmentEvents}). */
  #noteSeal(event: SignedEvent): void {
    if (this.#opts.relay === undefined || this.#opts.relay === null || event.device !== this.#opts.relay)
      return;
    const parsed = parseSegmentSealedData(event.data);
    if (!parsed.ok || parsed.value.size !== this.#segmentSize) return;
    const key = segmentName(parsed.value.device, parsed.value.index);
    this.#seals.set(key, parsed.value.digest);
    const waiting = this.#awaitingSeal.get(key);
    if (waiting !== undefined) {
      this.#awaitingSeal.delete(key);
      this.#scheduleIngest(waiting);
    }
  }

  /**
   * An own event we did not know came back from a peer: the data folder was restored from an
   * older backup. Continue the sequence after it (never hand its number out again).
   */
  #ownCameBack(seq: number): void {
    if (!this.#commit.isIdle) return; // a racing append: the store refuses the duplicate seq
    this.#assignedSeq = seq;
    this.#commit.advanceTo(seq + 1);
  }

  #notify(events: readonly SignedEvent[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (err) {
        this.#incident({ code: 'PROTOCOL_BAD_ENCODING', message: `event listener failed: ${String(err)}` });
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
    const assigned = this.#assignedSeq;
    const announced = this.#root.doc().devices[this.deviceId] ?? 0;
    let behind = typeof announced === 'number' && announced > Math.ceil(assigned / this.#segmentSize);
    if (!behind) {
      const last = Math.max(0, Math.ceil(assigned / this.#segmentSize) - 1);
      const segment = this.#segments.get(segmentDocumentId(this.facility, this.deviceId, last));
      const list = segment?.handle.doc().events;
      const expected = Math.min(this.#segmentSize, assigned - last * this.#segmentSize);
      if (Array.isArray(list) && list.length > expected) {
        for (const seq of this.#ownSeqsIn(list)) if (seq > assigned) behind = true;
      }
    }
    return { assigned, behind };
  }

  /** Keeps derived views current: a plain new domain event that sorts last extends them in place. */
  #onVisible(released: readonly SignedEvent[]): void {
    const tentative = this.#tentative;
    const counts = this.#counts;
    const fastPath =
      released.length === 1 &&
      tentative !== undefined &&
      !isSystemEventType(released[0]!.type) &&
      released[0]!.supersedes === undefined &&
      !this.#folder.targeted(released[0]!.id) &&
      (tentative.last === undefined || compareTentative(tentative.last, released[0]!) < 0);
    if (fastPath) {
      const event = released[0]!;
      tentative.projection.apply(event);
      tentative.last = event;
      if (counts !== undefined) {
        // A new domain event nobody has answered yet: pending.
        this.#counts = {
          ...counts,
          total: counts.total + 1,
          pending: counts.pending + 1,
          outbox: counts.outbox + (event.device === this.deviceId ? 1 : 0),
        };
      }
      return;
    }
    this.#counts = undefined;
    this.#tentative = undefined;
  }

  // ---------------------------------------------------------------- queries

  /** The event, its status and latest verdict; undefined when unknown or still held back. */
  get(id: EventId): EventInfo | undefined {
    const event = this.#folder.events.get(id);
    if (event === undefined) return undefined;
    return this.#info(event, this.#folder.status(id));
  }

  #info(event: SignedEvent, info: EventStatusInfo | undefined): EventInfo {
    if (info === undefined) return { event, status: 'accepted' };
    return {
      event,
      status: info.status,
      ...(info.verdict !== undefined ? { verdict: info.verdict } : {}),
      ...(info.resolvedBy !== undefined ? { resolvedBy: info.resolvedBy } : {}),
    };
  }

  /** Visible non-verdict events, optionally filtered, in (device, seq) order. */
  list(filter: { status?: EventInfo['status']; device?: DeviceId } = {}): EventInfo[] {
    const out: EventInfo[] = [];
    for (const event of this.#folder.events.values()) {
      if (filter.device !== undefined && event.device !== filter.device) continue;
      const info = this.#folder.status(event.id);
      if (info === undefined) continue; // relay statements have no status
      if (filter.status !== undefined && info.status !== filter.status) continue;
      out.push(this.#info(event, info));
    }
    return out.sort((a, b) =>
      a.event.device < b.event.device ? -1 : a.event.device > b.event.device ? 1 : a.event.seq - b.event.seq,
    );
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
    if (!this.#complete(device, index)) return undefined;
    const seqs = this.#seqs.get(device);
    const out: SignedEvent[] = [];
    for (let seq = index * this.#segmentSize + 1; seq <= (index + 1) * this.#segmentSize; seq++) {
      const id = seqs?.get(seq);
      const event = id === undefined ? undefined : this.#folder.events.get(id);
      if (event === undefined) return undefined;
      out.push(event);
    }
    return out;
  }

  /** Every visible event of any kind, in no particular order. */
  visibleEvents(): IterableIterator<SignedEvent> {
    return this.#folder.events.values();
  }

  /** This device's own events with no verdict yet (derived, not a queue). */
  outbox(): EventInfo[] {
    return this.list({ status: 'pending', device: this.deviceId });
  }

  /** Event counts by status, as shown by `GET /api/status`. */
  counts(): LogCounts {
    if (this.#counts !== undefined) return { ...this.#counts };
    const counts = { total: 0, pending: 0, accepted: 0, deadletter: 0, resolved: 0, outbox: 0 };
    for (const event of this.#folder.events.values()) {
      const info = this.#folder.status(event.id);
      if (info === undefined) continue;
      counts.total++;
      counts[info.status]++;
      if (info.status === 'pending' && event.device === this.deviceId) counts.outbox++;
    }
    this.#counts = counts;
    return { ...counts };
  }

  /** Confirmed state: accepted events in relay order. A copy: callers may not mutate the cache. */
  confirmed(): Projection {
    return this.#folder.confirmed().clone();
  }

  /**
   * Tentative state: confirmed plus pending events in (HLC, device, seq) order.
   *
   * @remarks Returns the cached projection itself: treat it as read-only.
   */
  tentative(): Projection {
    if (this.#tentative === undefined) {
      this.#tentative = { projection: this.#folder.tentative(), last: this.#folder.pending().at(-1) };
    }
    return this.#tentative.projection;
  }

  /** Holes (per device) and corrupt values found at start-up or since. */
  integrity(): IntegrityReport {
    const holes: { device: string; missing: number[] }[] = [];
    for (const [device, seqs] of this.#seqs) {
      const contiguous = this.#contiguous.get(device) ?? 0;
      const max = seqs.max();
      if (max <= contiguous) continue;
      const missing: number[] = [];
      for (let seq = contiguous + 1; seq < max && missing.length < 1000; seq++)
        if (seqs.get(seq) === undefined) missing.push(seq);
      holes.push({ device, missing });
    }
    const corrupt = this.#corruptAtStart.filter(
      ({ device, seq }) => this.#seqs.get(device as DeviceId)?.get(seq) === undefined,
    );
    return {
      holes,
      corrupt,
      incidents: this.#incidentCount,
      detectedAtStart: {
        corruptEvents: this.#corruptAtStart.length,
        corruptChunks: this.#corruptChunksAtStart,
      },
    };
  }

  /** The most recent security incidents (bounded). */
  incidents(): readonly SecurityIncident[] {
    return this.#incidents;
  }

  /**
   * How received events were verified since open: one signature check each, or covered by a
   * relay seal of their whole segment (see {@link DeviceLog.segmentEvents}).
   */
  verification(): { readonly oneByOne: number; readonly bySeal: number } {
    return { ...this.#verification };
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
    for (const segment of this.#segments.values()) markProcessed(segment, []);
    this.#onRootChange();
  }

  /** Adds a network adapter (a peer server or client) to the running log. */
  addNetworkAdapter(adapter: NetworkAdapterInterface): void {
    this.repo.networkSubsystem.addNetworkAdapter(adapter);
  }

  /** Automerge heads of every facility document this log holds, by document id. */
  heads(): Record<string, readonly string[]> {
    const out: Record<string, readonly string[]> = {
      [String(this.#root.documentId)]: [...this.#root.heads()].sort(),
    };
    for (const segment of this.#segments.values())
      out[String(segment.id)] = [...segment.handle.heads()].sort();
    return out;
  }

  /** Number of verified events held (visible or behind a hole). */
  size(): number {
    return this.#folder.size + this.#held.size;
  }

  /** Resolves once queued appends and ingest work are done. */
  async settled(): Promise<void> {
    await this.#commit.idle();
    await this.#pushed();
    let chain: Promise<void>;
    let commits: Promise<void>;
    do {
      chain = this.#ingestChain;
      await chain;
      commits = this.#commitChain;
      await commits;
    } while (chain !== this.#ingestChain || commits !== this.#commitChain);
  }

  /** Resolves when every durable own event has been handed to the sync documents. */
  async #pushed(): Promise<void> {
    while (this.#pushScheduled || this.#toPush.length > 0) {
      await new Promise((resolve) => setImmediate(resolve));
      await this.#pushChain;
    }
    await this.#pushChain;
  }

  /** Waits for pending writes, saves documents and stops syncing. Does not close the event store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#commit.idle();
    await this.#pushed();
    if (this.#janitor !== undefined) clearInterval(this.#janitor);
    if (this.#sealWaitTimer !== undefined) clearTimeout(this.#sealWaitTimer);
    this.#awaitingSeal.clear();
    await this.#ingestChain;
    await this.#commitChain;
    this.#closed = true;
    // A peer asking for a document we never had leaves a handle that never becomes ready, and
    // automerge-repo 2.5.6's flush (also run by shutdown) throws "DocHandle is not ready" on it.
    // Such a handle holds nothing to save; `repo.handles` is the Repo's own cache.
    const handles = this.repo.handles;
    for (const [id, handle] of Object.entries(handles)) {
      if (!handle.isReady()) delete handles[id as DocumentId];
    }
    await this.repo.flush();
    await this.repo.shutdown();
    this.#storage.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AccordError(ErrorCode.LOG_CLOSED, 'the log is closed');
  }

  #incident(incident: Omit<SecurityIncident, 'at'>): void {
    const full: SecurityIncident = { ...incident, at: new Date(this.#clock()).toISOString() };
    this.#incidentCount++;
    this.#incidents.push(full);
    if (this.#incidents.length > MAX_INCIDENTS_KEPT) this.#incidents.shift();
    this.#opts.onIncident?.(full);
  }
}
