import * as A from '@automerge/automerge';
import type { NetworkAdapterInterface } from '@automerge/automerge-repo';
import { prepareDraft, type Projection } from '@accord/domain';
import {
  AccordError,
  decodeSignedEvent,
  encodeSignedEvent,
  envelopeBytes,
  ErrorCode,
  type HybridClock,
  eventIdFor,
  isAccordError,
  isEventIdOf,
  MAX_EVENT_BYTES,
  parseDeadletterDiscardedData,
  parseRetryRequestedData,
  parseRosterUpdatedData,
  parseSegmentSealedData,
  parseVerdictData,
  parseAcceptedVerdictsData,
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
  OwnIntegrity,
  PeerSyncReport,
  SecurityIncident,
  SystemDraft,
  Withheld,
} from './api.js';
import { CommitQueue } from './commit-queue.js';
import { VisibleSet } from './visible-set.js';
import { Incidents, MAX_INCIDENTS_KEPT } from './incidents.js';
import { startupScan } from './startup-scan.js';
import { Views } from './views.js';
import { RepoHost } from './repo-host.js';
import { markProcessed, Segments, type SegmentState } from './segments.js';
import { OwnPush } from './own-push.js';
import { Following } from './following.js';
import { SealingSweep } from './sealing.js';
import type { OwnSeqMark, OwnSeqMarkState } from './own-seq-mark.js';
import { segmentDocumentId, seqsIn } from './documents.js';

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
 * document save (RepoHost's save debounce, 1 s) is done before a segment can count as idle.
 */
const DEFAULT_SWEEP_MS = 2000;
/**
 * How long a whole segment of another device, arriving at once, waits for the relay's seal of it
 * before its events are verified one by one; one window is shared by every segment of a burst.
 */
const SEAL_WAIT_MS = 1000;
/** Own sequence numbers reserved per durable write of the {@link OwnSeqMark}: one fsync per block. */
const OWN_SEQ_BLOCK = 1000;
/** How long an acknowledged own seq may wait before the mark records it (off the append path). */
const ACK_MARK_DELAY_MS = 500;
/** An own event signed and encoded once: the bytes are what the store keeps and peers get. */
interface SignedOwn {
  readonly event: SignedEvent;
  readonly bytes: Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The store's meta key holding the equivocation barriers (`{device: seq}` as JSON). */
const EQUIVOCATIONS = 'equivocations';

async function readEquivocations(store: EventStore): Promise<[DeviceId, number][]> {
  const bytes = await store.meta.get(EQUIVOCATIONS);
  if (bytes === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(utf8.decode(bytes));
    if (typeof parsed !== 'object' || parsed === null) return [];
    return Object.entries(parsed).flatMap(([device, seq]) =>
      Number.isSafeInteger(seq) && (seq as number) > 0 ? [[device as DeviceId, seq as number]] : [],
    );
  } catch {
    return []; // evidence is found again when the documents are read
  }
}

function writeEquivocations(store: EventStore, barriers: ReadonlyMap<DeviceId, number>): Promise<void> {
  return store.meta.put(
    EQUIVOCATIONS,
    new TextEncoder().encode(JSON.stringify(Object.fromEntries(barriers))),
  );
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

  readonly #opts: DeviceLogOptions;
  /** The Repo and all the log asks of it. */
  readonly #host: RepoHost;
  readonly #store: EventStore;
  readonly #segmentSize: number;
  readonly #clock: () => number;
  readonly #hlc: HybridClock;
  readonly #commit: CommitQueue<SignedOwn>;

  /** Which verified events the projections see, and which are held back (no I/O). */
  readonly #visible: VisibleSet;
  /** Digests of the relay's `SegmentSealed` statements, by `<device>/<index>` (DESIGN.md §8). */
  readonly #seals = new Map<string, string>();
  readonly #verification = { oneByOne: 0, bySeal: 0 };
  /** Segments waiting for their relay seal (by `<device>/<index>`), and when the shared wait ends. */
  readonly #awaitingSeal = new Map<string, SegmentState>();
  /** Segments that have waited once: a late reading never waits again. */
  readonly #waitedForSeal = new Set<string>();
  #sealWaitEnd = 0;
  #sealWaitTimer: ReturnType<typeof setTimeout> | undefined;

  /** The root index and the segment documents the log follows. */
  readonly #segments: Segments;
  /** Drops idle sealed documents from memory. */
  readonly #sweep: SealingSweep;
  /** Which devices and segments the log follows, on signed evidence only. */
  readonly #following: Following;

  #assignedSeq: number;
  // Own-sequence bookkeeping kept apart from the store (OwnSeqMark): numbers up to #reserved may
  // be handed out; #acked is the highest own seq known durable (here or, after a loss, at peers).
  #reserved = 0;
  #acked = 0;
  #reserving: Promise<void> | undefined;
  #recovering: Promise<void> | undefined;
  /** Set once #openDocuments is done (the own-history check reads the root and own segments). */
  #documentsOpen = false;
  #markChain: Promise<void> = Promise.resolve();
  #ackMarkTimer: ReturnType<typeof setTimeout> | undefined;
  #ownLoss: { readonly from: number; readonly to: number } | undefined;
  #suspiciousStart = false;
  #historyCheck: OwnIntegrity['check'] = 'not-needed';
  /** Set while appends wait for the own-history check with peers. */
  #historyGate: Promise<void> | undefined;
  #endHistoryCheck: (outcome: 'checked' | 'unchecked') => void = () => {};
  /** Refused data from peers (security incidents), bounded. */
  readonly #incidents: Incidents;
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
  /** Durable own events on their way into the segment documents. */
  readonly #push: OwnPush;
  #closed = false;
  readonly #listeners = new Set<EventsListener>();

  /** Infos, lists, counts and projections over the visible set (cached where it pays). */
  readonly #views: Views;

  /** Equivocations already reported, so a rescan does not report one again. */
  readonly #reportedEquivocations = new Set<string>();

  private constructor(opts: DeviceLogOptions, host: RepoHost, highestOwnSeq: number, hlc: HybridClock) {
    this.#host = host;
    this.#opts = opts;
    this.#store = opts.eventStore;
    this.deviceId = opts.key.deviceId;
    this.facility = opts.facility;
    this.#segmentSize = opts.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    this.#clock = opts.clock ?? Date.now;
    this.#hlc = hlc;
    this.#assignedSeq = highestOwnSeq;
    this.#incidents = new Incidents(this.#clock, opts.onIncident);
    this.#visible = new VisibleSet(opts.relay ?? null);
    this.#views = new Views(this.#visible, this.deviceId);
    const ctx = { facility: this.facility, deviceId: this.deviceId, segmentSize: this.#segmentSize };
    this.#segments = new Segments(host, ctx, {
      onChange: (segment) => this.#scheduleIngest(segment),
      isComplete: (device, index) => this.#complete(device, index),
    });
    this.#following = new Following({
      ctx,
      relay: opts.relay ?? undefined,
      roster: opts.roster,
      visible: this.#visible,
      segments: this.#segments,
      assigned: () => this.#assignedSeq,
      read: (segment) => this.#ingestSegment(segment),
      enqueue: (work) => this.#enqueue(work),
      isClosed: () => this.#closed,
    });
    this.#sweep = new SealingSweep({
      host,
      segments: this.#segments,
      markers: opts.eventStore.meta,
      clock: this.#clock,
      intervalMs: opts.sealSweepMs ?? DEFAULT_SWEEP_MS,
      enqueue: (work) => this.#enqueue(work),
    });
    this.#push = new OwnPush({
      push: (stored) => this.#segments.pushOwn(stored),
      onError: (err) =>
        this.#incidents.report({
          code: 'PROTOCOL_BAD_ENCODING',
          message: `could not add own events to the sync documents: ${String(err)}`,
        }),
      isClosed: () => this.#closed,
    });
    this.#commit = new CommitQueue<SignedOwn>(highestOwnSeq + 1, (batch) => this.#writeOwn(batch));
  }

  /**
   * Opens the log: checks the event store's integrity, loads it, opens the facility's
   * documents and reconciles them with the store.
   */
  static async open(opts: DeviceLogOptions): Promise<DeviceLog> {
    const store = opts.eventStore;
    const start = await startupScan(opts);
    const highestOwnSeq = start.highestOwnSeq;
    const host = new RepoHost({
      peerId: opts.key.deviceId,
      storage: opts.storage,
      network: opts.network ?? [],
    });
    const log = new DeviceLog(opts, host, highestOwnSeq, start.hlc);
    host.exposeTo(log);
    // Equivocation barriers are kept in the store's meta under EQUIVOCATIONS.
    for (const [device, seq] of await readEquivocations(store)) log.#visible.setBarrier(device, seq);
    log.#corruptChunksAtStart = start.corruptChunks;
    log.#corruptAtStart.push(...start.corrupt);
    log.#reserved = log.#acked = highestOwnSeq;
    log.#ownLoss = start.ownLoss;
    log.#suspiciousStart = start.suspicious;
    for (const event of start.loaded) log.#addVerified(event);
    // Own numbers missing below the highest: the store lost some of its own events.
    if (log.#visible.contiguous(log.deviceId) < highestOwnSeq) log.#suspiciousStart = true;
    // Listening before the documents open: a fast peer may be done syncing them by then.
    const checkOpened = log.#startHistoryCheck();
    await log.#openDocuments();
    log.#documentsOpen = true;
    checkOpened();
    return log;
  }

  // ---------------------------------------------------------------- appending

  /** Records a user action: resolves after the signed event is durable, with any local-rule warning. */
  async append(draft: Draft): Promise<AppendResult> {
    this.#assertOpen();
    // Re-checked right before the number is taken (no await in between): see #ownSeqWait.
    for (let wait = this.#ownSeqWait(); wait !== undefined; wait = this.#ownSeqWait()) await wait;
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
    for (let wait = this.#ownSeqWait(); wait !== undefined; wait = this.#ownSeqWait()) await wait;
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
    const seq = this.#assignedSeq + 1;
    const envelope: EventEnvelope = {
      v: 1,
      // Bound to this device and seq: no other device can claim it (see eventIdFor).
      id: eventIdFor(this.#clock(), this.deviceId, seq),
      facility: this.facility,
      device: this.deviceId,
      seq,
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
    this.#noteAcked(stored[stored.length - 1]!.seq);
    for (const { event } of batch) this.#addVerified(event);
    this.#push.schedule(stored);
  }

  // ---------------------------------------------------------------- own sequence

  /**
   * What an append must wait for before it takes a sequence number: the own-history check after
   * start, or a durable reservation of more numbers; undefined when it may take one now.
   *
   * @remarks Callers take the number synchronously after an undefined answer, so concurrent
   * appends never take one past the reservation.
   */
  #ownSeqWait(): Promise<void> | undefined {
    if (this.#closed) return undefined;
    if (this.#historyGate !== undefined) return this.#historyGate;
    if (this.#commit.failed) {
      // A failed write: once every number after the last written one is back, hand them out again.
      this.#recovering ??= this.#commit
        .recover(this.#assignedSeq)
        .then((last) => void (this.#assignedSeq = last))
        .finally(() => (this.#recovering = undefined));
      return this.#recovering;
    }
    if (this.#opts.ownSeqMark === undefined || this.#assignedSeq < this.#reserved) return undefined;
    this.#reserving ??= this.#writeMark(() => ({
      reserved: Math.max(this.#reserved, this.#assignedSeq) + OWN_SEQ_BLOCK,
      acked: this.#acked,
      clean: false,
    })).finally(() => (this.#reserving = undefined));
    return this.#reserving;
  }

  /** Writes the mark after the writes before it (the state is computed when its turn comes). */
  #writeMark(next: () => OwnSeqMarkState): Promise<void> {
    const mark = this.#opts.ownSeqMark as OwnSeqMark;
    const done = this.#markChain.then(async () => {
      const state = next();
      await mark.write(state);
      this.#reserved = state.reserved;
    });
    this.#markChain = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** Records that own events up to `seq` are durable; the mark learns it soon, off the append path. */
  #noteAcked(seq: number): void {
    if (seq <= this.#acked) return;
    this.#acked = seq;
    if (this.#opts.ownSeqMark === undefined || this.#ackMarkTimer !== undefined) return;
    this.#ackMarkTimer = setTimeout(() => {
      this.#ackMarkTimer = undefined;
      if (this.#closed) return;
      this.#writeMark(() => ({ reserved: this.#reserved, acked: this.#acked, clean: false })).catch(
        (err: unknown) =>
          this.#incidents.report({
            code: 'PROTOCOL_BAD_ENCODING',
            message: `could not record the own mark: ${String(err)}`,
          }),
      );
    }, ACK_MARK_DELAY_MS);
    this.#ackMarkTimer.unref();
  }

  /**
   * Holds appends until a peer or the relay has shown this device its own history (the root
   * index and its last own segment synced, and what they brought stored), or the wait ends.
   *
   * @remarks A data folder restored whole from an older backup looks like any clean start:
   * only the peers remember what the device wrote since. Own events that come back move the
   * sequence past them (#ownCameBack) before the first append takes a number.
   */
  #startHistoryCheck(): () => void {
    const waits = this.#opts.ownHistoryWaitMs;
    const ms = waits === undefined ? 0 : this.#suspiciousStart ? waits.suspicious : waits.clean;
    if (ms <= 0 || (this.#opts.network ?? []).length === 0) return () => {};
    this.#historyCheck = 'waiting';
    let open!: () => void;
    this.#historyGate = new Promise<void>((resolve) => (open = resolve));
    const theirHeads = new Map<string, Map<string, readonly string[]>>();
    const off = this.#host.onPeerHeads((e) => {
      let docs = theirHeads.get(e.peerId);
      if (docs === undefined) theirHeads.set(e.peerId, (docs = new Map<string, readonly string[]>()));
      docs.set(e.documentId, e.theirHeads);
      // Emitted before the received changes are applied: look once they are.
      setImmediate(() => this.#checkOwnHistory(docs));
    });
    const timer = setTimeout(() => this.#endHistoryCheck('unchecked'), ms);
    timer.unref();
    this.#endHistoryCheck = (outcome) => {
      if (this.#historyCheck !== 'waiting') return;
      this.#historyCheck = outcome;
      this.#historyGate = undefined;
      clearTimeout(timer);
      off();
      open();
    };
    // Called once the documents are open: look at what peers showed meanwhile.
    return () => {
      for (const docs of theirHeads.values()) this.#checkOwnHistory(docs);
    };
  }

  /** Ends the check when one peer's root index and last own segment are all here, and stored. */
  #checkOwnHistory(docs: ReadonlyMap<string, readonly string[]>): void {
    if (this.#historyCheck !== 'waiting' || this.#closed || !this.#documentsOpen) return;
    const has = (doc: A.Doc<unknown>, heads: readonly string[] | undefined): boolean =>
      heads !== undefined && A.getMissingDeps(doc, [...heads]).length === 0;
    const root = this.#segments.root;
    if (!has(root.doc(), docs.get(root.documentId))) return;
    // Any peer may raise the root index's count: look no further than the segments the log
    // follows on evidence (see Following.segmentBound), or one hostile entry would hold every append until
    // the wait ran out.
    const claimed = root.doc().devices[this.deviceId];
    const count =
      typeof claimed === 'number' ? Math.min(claimed, this.#following.segmentBound(this.deviceId)) : 0;
    if (count > 0) {
      const id = segmentDocumentId(this.facility, this.deviceId, count - 1);
      const segment = this.#segments.get(id);
      // A sealed own segment is full and stored: no peer can hold more of it.
      if (!this.#segments.isSealed(id) && (segment === undefined || !has(segment.handle.doc(), docs.get(id))))
        return;
    }
    void this.#ingestSettled().then(() => this.#endHistoryCheck('checked'));
  }

  /** Resolves once ingest work queued so far (and what it queued) is stored. */
  async #ingestSettled(): Promise<void> {
    let chain: Promise<void>;
    let commits: Promise<void>;
    do {
      chain = this.#ingestChain;
      await chain;
      commits = this.#commitChain;
      await commits;
    } while (chain !== this.#ingestChain || commits !== this.#commitChain);
  }

  /** The own-sequence part of {@link DeviceLog.integrity}. */
  #ownIntegrity(): OwnIntegrity {
    const loss = this.#ownLoss;
    return {
      ...(loss === undefined
        ? {}
        : { loss: { ...loss, repaired: this.#visible.contiguous(this.deviceId) >= loss.to } }),
      check: this.#historyCheck,
      suspiciousStart: this.#suspiciousStart,
    };
  }

  // ---------------------------------------------------------------- documents and ingest

  async #openDocuments(): Promise<void> {
    await this.#segments.openRoot(() => this.#following.refresh());
    // Own segments first: re-push any own event the documents lost (a crash between the
    // durable write and the document save, or a dropped corrupt chunk). Segments already
    // sealed after such a check are skipped.
    await this.#segments.openOwn(this.#assignedSeq, this.#store.meta, (segment) => {
      this.#segments.reconcileOwn(segment, this.#assignedSeq, (seq) => {
        const id = this.#visible.idAt(this.deviceId, seq);
        return id === undefined ? undefined : this.#known(id);
      });
      // Anything else in it (peers' copies of our later events after a restore, foreign entries).
      this.#ingestSegment(segment);
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
        this.#incidents.report({ code: 'PROTOCOL_BAD_ENCODING', message: `ingest failed: ${String(err)}` });
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
    /** Entries that contradict a held event of the same device and seq: equivocation, if signed. */
    const conflicts: SignedEvent[] = [];
    const seenInBatch = new Set<string>();
    for (let i = start; i < list.length; i++) {
      const bytes: unknown = list[i];
      if (!(bytes instanceof Uint8Array)) {
        this.#incidents.report({
          code: 'PROTOCOL_SCHEMA',
          message: `segment ${segment.id} entry ${i} is not bytes`,
        });
        continue;
      }
      const decoded = decodeSignedEvent(bytes);
      if (!decoded.ok) {
        this.#incidents.report({
          code: decoded.error.code as SecurityIncident['code'],
          message: decoded.error.message,
        });
        continue;
      }
      const event = decoded.value;
      if (!isEventIdOf(event.id, event.device, event.seq)) {
        // An id belongs to the device and seq it was made for: a copy of another device's id (or
        // of another seq) is a forgery, and must never displace the author's own event.
        this.#incidents.report({
          code: 'LOG_FORGED_EVENT',
          message: `event id ${event.id} is not bound to device ${event.device} seq ${event.seq}`,
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      if (seenInBatch.has(event.id) || this.#inFlight.has(event.id)) continue;
      const existing = this.#known(event.id);
      if (existing !== undefined) {
        // Same id, so same device and seq: either the same event or the device equivocated.
        if (!bytesEqual(encodeSignedEvent(existing), bytes)) conflicts.push(event);
        continue;
      }
      if (event.facility !== this.facility) {
        this.#incidents.report({
          code: 'LOG_WRONG_FACILITY',
          message: `event of facility ${event.facility}`,
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      const member = this.#opts.roster.lookup(event.device);
      if (member === undefined) {
        this.#incidents.report({
          code: 'LOG_UNKNOWN_DEVICE',
          message: 'event from a device outside the roster',
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      if (member.facility !== this.facility) {
        this.#incidents.report({
          code: 'LOG_WRONG_FACILITY',
          message: 'event from a device of another facility',
          eventId: event.id,
          device: event.device,
        });
        continue;
      }
      const other = this.#visible.idAt(event.device, event.seq);
      if (other !== undefined) {
        conflicts.push(event);
        continue;
      }
      seenInBatch.add(event.id);
      candidates.push({ event, bytes });
    }
    markProcessed(segment, list);
    if (conflicts.length > 0) {
      this.#commitChain = this.#commitChain.then(() => this.#checkConflicts(conflicts));
    }
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
        if (segment.device !== this.deviceId && this.#segments.get(segment.id) !== undefined)
          this.#segments.maybeSeal(segment);
      } catch (err) {
        if (!this.#closed)
          this.#incidents.report({ code: 'PROTOCOL_BAD_ENCODING', message: `ingest failed: ${String(err)}` });
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
    if (this.#visible.contiguous(segment.device) > segment.index * this.#segmentSize) return false;
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
    const equivocations: SignedEvent[] = [];
    const seqTaken = new Set<string>();
    candidates.forEach((candidate, i) => {
      const { event } = candidate;
      if (valid[i] !== true) {
        this.#incidents.report({
          code: 'LOG_FORGED_EVENT',
          message: 'bad signature',
          eventId: event.id,
          device: event.device,
        });
        return;
      }
      if (this.#known(event.id) !== undefined) return; // arrived meanwhile through another document
      const key = `${event.device}/${event.seq}`;
      if (seqTaken.has(key) || this.#visible.idAt(event.device, event.seq) !== undefined) {
        // Two validly signed events for one (device, seq): the device equivocated.
        equivocations.push(event);
        return;
      }
      seqTaken.add(key);
      accepted.push(candidate);
    });
    for (const event of equivocations) await this.#equivocated(event);
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
          // Verified, and the store holds another event in its slot: the device equivocated.
          await this.#equivocated(accepted[i]!.event);
        }
      }
      accepted.splice(0, accepted.length, ...kept);
    }
    for (const { event } of accepted) {
      this.#hlc.observe(event.hlc);
      this.#addVerified(event);
    }
  }

  /** Verifies entries that contradict held events: a valid one proves equivocation, an invalid one is forged. */
  async #checkConflicts(conflicts: readonly SignedEvent[]): Promise<void> {
    const valid = await verifyEvents(conflicts);
    for (const [i, event] of conflicts.entries()) {
      if (valid[i] === true) await this.#equivocated(event);
      else
        this.#incidents.report({
          code: 'LOG_FORGED_EVENT',
          message: 'bad signature',
          eventId: event.id,
          device: event.device,
        });
    }
  }

  /**
   * `event` is validly signed by its device but another event holds its (device, seq): the device
   * signed two histories. Reports it once, and withholds the device's events from that seq on.
   *
   * @remarks Every device applies the same rule to the same evidence (both copies end up in the
   * device's segment document, which every peer merges), whichever copy it happened to store:
   * the lowest equivocated seq is the barrier, so all devices show the same events.
   */
  async #equivocated(event: SignedEvent): Promise<void> {
    if (this.#closed) return;
    // Is it really a second event? (The copy we hold may be this very event after all.)
    const heldId = this.#visible.idAt(event.device, event.seq);
    const held = heldId === undefined ? undefined : this.#known(heldId);
    if (held !== undefined && bytesEqual(encodeSignedEvent(held), encodeSignedEvent(event))) return;
    const key = `${event.device}/${event.seq}/${event.id}/${event.sig}`;
    if (!this.#reportedEquivocations.has(key)) {
      if (this.#reportedEquivocations.size < MAX_INCIDENTS_KEPT) this.#reportedEquivocations.add(key);
      this.#incidents.report({
        code: 'LOG_EQUIVOCATION',
        message: `device ${event.device} signed two different events with seq ${event.seq}`,
        eventId: event.id,
        device: event.device,
      });
    }
    const barrier = this.#visible.barrier(event.device);
    if (barrier !== undefined && barrier <= event.seq) return;
    this.#visible.setBarrier(event.device, event.seq);
    await writeEquivocations(this.#store, this.#visible.barriers());
    if (this.#visible.withholdFrom(event.device, event.seq)) this.#views.reset();
  }

  // ---------------------------------------------------------------- in-memory state

  /** A verified event by id, visible or held back. */
  #known(id: EventId): SignedEvent | undefined {
    return this.#visible.known(id);
  }

  #addVerified(decoded: SignedEvent): void {
    const released = this.#visible.add(decoded, (e) => {
      if (e.type === SystemEventType.SegmentSealed) this.#noteSeal(e);
      else if (e.type === SystemEventType.RosterUpdated) this.#following.noteRoster(e);
    });
    if (released === undefined || released.length === 0) return;
    const event = released[0]!; // the event itself, then what it unblocked
    const contiguous = this.#visible.contiguous(event.device);
    if (contiguous % this.#segmentSize < released.length) this.#following.evidenceGrew(event.device);
    this.#views.onVisible(released);
    if (event.device === this.deviceId && event.seq > this.#assignedSeq) this.#ownCameBack(event.seq);
    this.#notify(released);
  }

  /** Remembers a relay-signed segment seal (see {@link DeviceLog.segmentEvents}). */
  #noteSeal(event: SignedEvent): void {
    if (this.#opts.relay === undefined || this.#opts.relay === null || event.device !== this.#opts.relay)
      return;
    const parsed = parseSegmentSealedData(event.data);
    if (!parsed.ok || parsed.value.size !== this.#segmentSize) return;
    const key = segmentName(parsed.value.device, parsed.value.index);
    this.#seals.set(key, parsed.value.digest);
    this.#following.noteSealed(parsed.value.device, parsed.value.index);
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
    this.#noteAcked(seq); // durable at peers and now here: the mark must not fall below it
    this.#commit.advanceTo(seq + 1);
  }

  #notify(events: readonly SignedEvent[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(events);
      } catch (err) {
        this.#incidents.report({
          code: 'PROTOCOL_BAD_ENCODING',
          message: `event listener failed: ${String(err)}`,
        });
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
    // Only signed evidence counts (own events held beyond what we assigned), never the root index's
    // count, which any peer may raise to make this device (or the relay) wait for good.
    let behind = this.#visible.maxSeq(this.deviceId) > assigned;
    if (!behind) {
      const last = Math.max(0, Math.ceil(assigned / this.#segmentSize) - 1);
      const segment = this.#segments.get(segmentDocumentId(this.facility, this.deviceId, last));
      const list = segment?.handle.doc().events;
      const expected = Math.min(this.#segmentSize, assigned - last * this.#segmentSize);
      if (Array.isArray(list) && list.length > expected) {
        for (const seq of seqsIn(list, this.deviceId)) if (seq > assigned) behind = true;
      }
    }
    return { assigned, behind };
  }

  // ---------------------------------------------------------------- queries

  /** The event, its status and latest verdict; undefined when unknown or still held back. */
  get(id: EventId): EventInfo | undefined {
    return this.#views.get(id);
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

  /** Every visible event of any kind, in no particular order. */
  visibleEvents(): IterableIterator<SignedEvent> {
    return this.#visible.folder.events.values();
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
    const corrupt = this.#corruptAtStart.filter(
      ({ device, seq }) => this.#visible.idAt(device as DeviceId, seq) === undefined,
    );
    return {
      holes: this.#visible.holes(),
      corrupt,
      incidents: this.#incidents.count,
      detectedAtStart: {
        corruptEvents: this.#corruptAtStart.length,
        corruptChunks: this.#corruptChunksAtStart,
      },
      ...(this.#opts.ownSeqMark === undefined ? {} : { own: this.#ownIntegrity() }),
      ...(this.#opts.storeSetAside === undefined ? {} : { setAside: this.#opts.storeSetAside }),
    };
  }

  /** Devices whose later events are withheld, and why; revoked devices are left out. */
  withheld(): Withheld[] {
    return this.#visible.withheld((device) => this.#opts.roster.lookup(device)?.revoked === true);
  }

  /** The most recent security incidents (bounded). */
  incidents(): readonly SecurityIncident[] {
    return this.#incidents.list();
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

  /** Resolves once queued appends and ingest work are done. */
  async settled(): Promise<void> {
    await this.#commit.idle();
    await this.#push.pushed();
    await this.#ingestSettled();
  }

  /** Waits for pending writes, saves documents and stops syncing. Does not close the event store. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#endHistoryCheck('unchecked');
    await this.#commit.idle();
    await this.#push.pushed();
    if (this.#ackMarkTimer !== undefined) clearTimeout(this.#ackMarkTimer);
    if (this.#opts.ownSeqMark !== undefined) {
      // A clean close: every number handed out and not acknowledged never left this process.
      await this.#writeMark(() => ({ reserved: this.#acked, acked: this.#acked, clean: true }));
    }
    this.#sweep.stop();
    if (this.#sealWaitTimer !== undefined) clearTimeout(this.#sealWaitTimer);
    this.#awaitingSeal.clear();
    await this.#ingestChain;
    await this.#commitChain;
    this.#closed = true;
    await this.#host.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AccordError(ErrorCode.LOG_CLOSED, 'the log is closed');
  }
}
