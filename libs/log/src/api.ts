import type { NetworkAdapterInterface } from '@automerge/automerge-repo';
import type { Projection, EventStatus } from '@accord/domain';
import type {
  AccordError,
  DeviceId,
  DeviceKeyPair,
  EventId,
  EventSigner,
  FacilityId,
  JsonValue,
  SignedEvent,
  Subject,
  SystemEventType,
} from '@accord/protocol';
import type { RuleVerdict } from '@accord/rules';
import type { OwnSeqMark } from './own-seq-mark.js';
import type { LogDocumentStorage, LogEventStore } from './ports.js';

/** Who belongs to the facility: the log refuses events from anyone else. */
export interface LogRoster {
  /** The membership of a device, or undefined when it is unknown. */
  lookup(device: DeviceId): { readonly facility: FacilityId; readonly revoked: boolean } | undefined;
}

/** A received event and the canonical bytes it arrived as (the log's screen decoded them to it). */
export interface ReceivedEvent {
  readonly event: SignedEvent;
  readonly bytes: Uint8Array;
}

/**
 * Checks received events' signatures: one boolean per event, in order, true when the event is
 * signed by the key of its device (as `verifyEvents` of `@accord/protocol` says). Never rejects.
 */
export type EventVerifier = (events: readonly ReceivedEvent[]) => Promise<readonly boolean[]>;

/** Something that happened that an operator must know about: forged, foreign or conflicting data. */
export interface SecurityIncident {
  readonly code:
    | 'LOG_FORGED_EVENT'
    | 'LOG_EQUIVOCATION'
    | 'LOG_UNKNOWN_DEVICE'
    | 'LOG_WRONG_FACILITY'
    | 'LOG_SEGMENT_UNASKED'
    | 'LOG_SEGMENT_MISMATCH'
    | 'PROTOCOL_BAD_ENCODING'
    | 'PROTOCOL_SCHEMA'
    | 'PROTOCOL_NOT_CANONICAL'
    | 'PROTOCOL_TOO_LARGE';
  readonly message: string;
  readonly eventId?: string;
  readonly device?: string;
  readonly at: string;
}

/** Options of {@link DeviceLog.open}. */
export interface DeviceLogOptions {
  readonly facility: FacilityId;
  readonly key: DeviceKeyPair;
  /** The local source of truth: every event, durably, by id and (device, seq). */
  readonly eventStore: LogEventStore;
  /** Where automerge-repo keeps the sync documents (may be rebuilt from the event store). */
  readonly storage: LogDocumentStorage;
  readonly roster: LogRoster;
  /** The relay's device id: only verdicts signed by it count. Null before a relay exists. */
  readonly relay?: DeviceId | null;
  /** Network adapters to start with (more can be added with {@link DeviceLog.addNetworkAdapter}). */
  readonly network?: readonly NetworkAdapterInterface[];
  /** Wall clock in ms (default Date.now): the log's only source of the time (see the README, Clock and timers). */
  readonly clock?: () => number;
  /**
   * Keeps the visible events in memory as objects (default false: they are read back from the
   * event store on demand, see the README, Memory). The relay sets it: its facility open and its
   * adjudicator walk every event several times, and it holds one facility's events only while
   * that facility is loaded.
   */
  readonly residentEvents?: boolean;
  /** Events per segment document (default 5000). */
  readonly segmentSize?: number;
  /** How often idle sealed segments are dropped from memory (default 2 s; they must stay idle for a whole interval). */
  readonly sealSweepMs?: number;
  /**
   * Whether the log may serve a document it follows to `peer` now (default: always). Asked for
   * each sync message a peer sends (`bringsChanges()`: the message names heads this log lacks,
   * so the peer has changes to bring) and when a document could be announced to a peer
   * (`bringsChanges()` false). A refused peer's message is answered "unavailable" and nothing of
   * the document is sent to it; call {@link DeviceLog.servingChanged} once the refusal is lifted.
   * Once a peer is served a document it stays served for the connection, whatever this says
   * later. The relay withholds a device's segment from the other devices until it has judged it.
   */
  readonly serves?: (peer: DeviceId, documentId: string, bringsChanges: () => boolean) => boolean;
  /**
   * Checks the signatures of events received from peers that no relay seal covers (default:
   * `verifyEvents` of `@accord/protocol`, WebCrypto on the thread pool). The relay passes its
   * worker pool, which verifies from the received bytes off its main thread.
   */
  readonly verifier?: EventVerifier;
  /**
   * Signs own events with `key` (default: `node:crypto` on libuv's threads, whose answer takes
   * wall time). The simulator passes a synchronous one, so that when an append completes does
   * not depend on the machine (its runs must replay byte for byte).
   */
  readonly signer?: EventSigner;
  readonly onIncident?: (incident: SecurityIncident) => void;
  /**
   * Called with each of the log's own failures, an `AccordError` with code `LOG_INTERNAL` (a push
   * into the sync documents that failed, an event listener that threw, a storage error while
   * storing received events, a mark write that failed). Never a security incident: a bug must not
   * look like a hostile peer. Errors thrown by this callback are ignored.
   */
  readonly onInternalError?: (error: AccordError) => void;
  /**
   * Called once while opening, after the start-up scans of the event store and the document
   * storage and before any document is loaded or any peer is served: nothing reads or writes
   * storage meanwhile. The device passes its database's `unmapTables`, so that the pages of
   * the whole database read by the scans do not stay resident.
   */
  readonly afterStartupScan?: () => Promise<void>;
  /**
   * The own-sequence high-water mark, kept apart from the event store (the device keeps it in a
   * file of its data folder). With it the next sequence number is never below a number handed
   * out before, even when the store lost its newest writes, and such a loss is reported in
   * {@link IntegrityReport.own}. Without it (the relay), numbers come from the store alone.
   */
  readonly ownSeqMark?: OwnSeqMark;
  /**
   * How long (ms, counted from open) appends wait for a peer or the relay to confirm this
   * device's own history: `clean` after an ordinary start, `suspicious` after a start whose mark
   * and store disagree (lost writes, a crash, a damaged or set-aside store, no mark). Default
   * none. Only when the log has network adapters; when the wait ends unconfirmed, appends go on
   * after the highest number known (never reusing one) and {@link OwnIntegrity.check} says so.
   */
  readonly ownHistoryWaitMs?: { readonly clean: number; readonly suspicious: number };
  /** The store was damaged and set aside before open (a suspicious start, shown in {@link IntegrityReport.setAside}). */
  readonly storeSetAside?: StoreSetAside;
}

/** A damaged database that the device set aside at start-up (kept for inspection, repaired from peers). */
export interface StoreSetAside {
  /** Where the damaged copy was moved. */
  readonly path: string;
  /** ISO 8601 time it was set aside. */
  readonly at: string;
  /** What was wrong (the storage error's message). */
  readonly reason: string;
}

/** A user's request to record something: the log fills in ids, deps, basis, clock and signature. */
export interface Draft {
  readonly type: string;
  readonly data: unknown;
  /** For amends: the dead-lettered event this one replaces. */
  readonly supersedes?: EventId;
}

/**
 * A statement of the sync system itself (not a user's domain fact): a relay's `Verdict` or
 * `RosterUpdated`, a device's `RetryRequested` or `DeadletterDiscarded`.
 *
 * @remarks `data` must match the type's schema in `@accord/protocol`; no local rules run.
 */
export interface SystemDraft {
  readonly type: SystemEventType;
  readonly subject: Subject;
  readonly data: JsonValue;
  readonly deps?: readonly EventId[];
}

/** Where the log's own history stands, for a writer that must never reuse a sequence number. */
export interface OwnHistory {
  /** The highest own sequence number held or handed out. */
  readonly assigned: number;
  /**
   * True when peers announce own events this log does not hold yet (its data was restored
   * from an older backup): appending now would fork the device's sequence.
   */
  readonly behind: boolean;
}

/** What {@link DeviceLog.onPeerSync} reports for one sync message received from a peer. */
export interface PeerSyncReport {
  /** The peer's id (a device id). */
  readonly peer: string;
  readonly documentId: string;
  /** True when the log now holds every change the peer held of the document when it sent the message. */
  readonly holdsTheirs: boolean;
}

/** Called with each batch of events that became visible, in the order they did. */
export type EventsListener = (events: readonly SignedEvent[]) => void;

/** The answer to an append: the durable, signed event and any warning from the local rules. */
export interface AppendResult {
  readonly event: SignedEvent;
  /** Present when the local rules (on the tentative view) would reject it; the relay decides. */
  readonly warning?: Extract<RuleVerdict, { outcome: 'deadletter' }>;
}

/** An event with what the log knows about its fate. */
export interface EventInfo {
  readonly event: SignedEvent;
  readonly status: EventStatus;
  /** The latest relay verdict, if any. */
  readonly verdict?: SignedEvent;
  readonly resolvedBy?: EventId;
}

/** Where an event sits in its author's sequence. */
export interface EventPlace {
  readonly device: DeviceId;
  readonly seq: number;
}

/** Start-up and running integrity of the log. */
export interface IntegrityReport {
  /** Missing sequence numbers per device (events after a hole are held back from projections). */
  readonly holes: readonly { readonly device: string; readonly missing: readonly number[] }[];
  /** Stored values that failed their checksum (quarantined, to be repaired from peers). */
  readonly corrupt: readonly { readonly device: string; readonly seq: number }[];
  readonly incidents: number;
  /** What the start-up check found damaged (stored events, sync-document chunks), repaired or not. */
  readonly detectedAtStart: { readonly corruptEvents: number; readonly corruptChunks: number };
  /** The device's own sequence (present when the log keeps an {@link OwnSeqMark}). */
  readonly own?: OwnIntegrity;
  /** The damaged database set aside at start-up, if any. */
  readonly setAside?: StoreSetAside;
}

/** What the log knows about its own sequence after start-up. */
export interface OwnIntegrity {
  /**
   * Own events acknowledged before that the store no longer held at open (inclusive range);
   * `repaired` once every one of them came back from peers. Their numbers are never reused.
   */
  readonly loss?: { readonly from: number; readonly to: number; readonly repaired: boolean };
  /**
   * The check of the own history with peers or the relay after start: `waiting` (appends are
   * held), `checked` (a peer or the relay answered), `unchecked` (the wait ended without an
   * answer: appends go on after the highest number known), `not-needed` (no wait configured).
   */
  readonly check: 'waiting' | 'checked' | 'unchecked' | 'not-needed';
  /** True when the start was suspicious (mark and store disagreed, the store was damaged, or no mark). */
  readonly suspiciousStart: boolean;
}

/**
 * A device some of whose verified events are not shown: they wait behind a missing sequence
 * number (`hole`, until a peer supplies it) or behind a sequence number the device signed twice
 * (`equivocation`, for good). Everything else stays visible.
 */
export interface Withheld {
  readonly device: DeviceId;
  /** The first sequence number of the device that is not shown. */
  readonly from: number;
  readonly reason: 'hole' | 'equivocation';
  /** For a hole: the missing sequence numbers (at most 1000 listed). */
  readonly missing: readonly number[];
  /** How many verified events of the device wait behind it. */
  readonly heldBack: number;
}

/** Counts shown by `GET /api/status`. */
export interface LogCounts {
  readonly total: number;
  readonly pending: number;
  readonly accepted: number;
  readonly deadletter: number;
  readonly resolved: number;
  /** This device's own events without a verdict. */
  readonly outbox: number;
}

/**
 * A device's append-only event log: durable in the event store, carried to peers by
 * Automerge documents through automerge-repo.
 */
export interface DeviceLogApi {
  readonly deviceId: DeviceId;
  readonly facility: FacilityId;
  append(draft: Draft): Promise<AppendResult>;
  /**
   * Records a system statement (see {@link SystemDraft}); resolves after the signed event is durable.
   *
   * @throws AccordError `PROTOCOL_SCHEMA` when the type is not a system type or the data does not
   * match its schema; `LOG_CLOSED` after close.
   */
  appendSystem(draft: SystemDraft): Promise<SignedEvent>;
  /**
   * Subscribes to events as they become visible (own appends and verified ingest, in sequence
   * order per device; also every stored event at open, before this can be called: use
   * {@link DeviceLogApi.list} for those). Returns the unsubscribe function. Listener errors are
   * caught and reported as internal errors (`LOG_INTERNAL`, see `onInternalError`), not incidents.
   */
  onEvents(listener: EventsListener): () => void;
  /** Own-history state (see {@link OwnHistory}). */
  ownHistory(): OwnHistory;
  get(id: EventId): EventInfo | undefined;
  /**
   * The device and sequence number of a visible event, from its id alone; undefined when no
   * visible event has this id.
   *
   * @remarks Reads nothing (an id is bound to its author and seq): for a caller that needs where
   * an event sits, not the event, such as the clock-skew check over every verdict's targets.
   */
  locate(id: EventId): EventPlace | undefined;
  list(filter?: { status?: EventStatus; device?: DeviceId }): EventInfo[];
  outbox(): EventInfo[];
  /**
   * Every visible event of any kind (domain facts, verdicts, rosters, resolutions), in no
   * particular order; `list` leaves out verdicts and rosters.
   *
   * @remarks Events are read from the store as the iteration reaches them (a whole pass at 100k
   * events takes seconds): a caller that looks only at system events (verdicts, rosters, seals,
   * retries, discards) passes `systemOnly`, which reads nothing. With `systemOnly`, `naming` leaves
   * out the relay's `AcceptedVerdicts` batches that do not name that event (a caller looking for
   * what names one event: the others are held as event numbers and would each be made again, see
   * `@accord/domain`'s `AcceptedBatch`); every other system event still comes. Throws
   * `STORAGE_CORRUPT` at an event damaged on disk since open.
   */
  visibleEvents(opts?: {
    readonly systemOnly?: boolean;
    readonly naming?: EventId;
  }): IterableIterator<SignedEvent>;
  counts(): LogCounts;
  tentative(): Projection;
  confirmed(): Projection;
  integrity(): IntegrityReport;
  /**
   * Devices whose later events are withheld, and why (holes and equivocations); devices the
   * roster has revoked are left out: what they withhold no longer matters.
   */
  withheld(): Withheld[];
  incidents(): readonly SecurityIncident[];
  addNetworkAdapter(adapter: NetworkAdapterInterface): void;
  /**
   * Tells the log that the roster changed: segments of newly enrolled devices are opened, and
   * entries skipped as coming from unknown devices are read again.
   */
  rosterChanged(): void;
  /** A digest of the Automerge heads of every document, for convergence checks. */
  heads(): Record<string, readonly string[]>;
  close(): Promise<void>;
}
