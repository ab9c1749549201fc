import {
  decodeSignedEvent,
  ErrorCode,
  isAccordError,
  isEventIdOf,
  isSignedEvent,
  MAX_EVENT_BYTES,
  ok,
  verifyEvents,
  type DeviceId,
  type HybridClock,
  type Result,
  type SignedEvent,
} from '@accord/protocol';
import type { EventVerifier, LogRoster, SecurityIncident } from './api.js';
import { bytesEqual } from './bytes.js';
import { eventsOfEntry } from './documents.js';
import type { Equivocations } from './equivocations.js';
import type { Incidents } from './incidents.js';
import type { LogEventStore } from './ports.js';
import type { Candidate, Entry, RelaySeals } from './relay-seals.js';
import {
  markProcessed,
  seqAtPosition,
  type LogContext,
  type SegmentState,
  type Segments,
} from './segments.js';
import type { VisibleSet } from './visible-set.js';
import type { WorkChain } from './work-chain.js';

/** What {@link Ingest} asks of the rest of the log. */
export interface IngestDeps {
  readonly ctx: LogContext;
  readonly roster: LogRoster;
  readonly visible: VisibleSet;
  readonly store: LogEventStore;
  /** Observes every ingested event's stamp. */
  readonly hlc: HybridClock;
  readonly incidents: Incidents;
  readonly seals: RelaySeals;
  readonly equivocations: Equivocations;
  readonly segments: Segments;
  /** Checks the signatures of events no seal covers ({@link verifyReceived} unless the log was given one). */
  readonly verify: EventVerifier;
  /** The log's serial work chain (document reads are queued on it). */
  readonly work: WorkChain;
  /** Makes a stored, verified event visible (or held back). */
  readonly add: (event: SignedEvent) => void;
  /** Told when storing or folding a verified batch failed while the log was open. */
  readonly onError: (err: unknown) => void;
  readonly isClosed: () => boolean;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes an entry of a segment taken whole, which is kept only if the relay's seal covers it:
 * the event's shape is checked, its canonical form is not (the relay sealed only events it
 * decoded with that check, and an entry the seal does not cover refuses the whole segment). An
 * entry this cannot read is decoded the full way, for the incident's own code.
 *
 * @remarks The canonical check serializes every event again and compares the texts: half of the
 * decoding, which was the largest share of a new device's CPU after the store (README, "Cold sync").
 */
function decodeSealedEntry(bytes: Uint8Array): Result<SignedEvent> {
  if (bytes.length <= MAX_EVENT_BYTES) {
    try {
      const value: unknown = JSON.parse(UTF8.decode(bytes));
      if (isSignedEvent(value)) return ok(value);
    } catch {
      // not UTF-8 or not JSON: decoded the full way below
    }
  }
  return decodeSignedEvent(bytes);
}

/**
 * Decodes an entry of a segment whose digest, in list order, is the relay's seal
 * ({@link RelaySeals.coversAsListed}): the relay decoded every event it sealed with the full check,
 * so the bytes are a canonical signed event and `JSON.parse` alone reads them. Only the fields the
 * screen reads are looked at (anything else is decoded the full way, for the incident's code).
 *
 * @remarks `isSignedEvent` allocated ≈ 1.1 KB per event (its key list, a match of each pattern):
 * a tenth of what a new device allocated over a cold sync (sampled heap profile, 20k events).
 */
function decodeListedSealedEntry(bytes: Uint8Array): Result<SignedEvent> {
  try {
    const value = JSON.parse(UTF8.decode(bytes)) as Partial<Record<keyof SignedEvent, unknown>> | null;
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof value.id === 'string' &&
      typeof value.device === 'string' &&
      typeof value.facility === 'string' &&
      typeof value.hlc === 'string' &&
      Number.isSafeInteger(value.seq)
    )
      return ok(value as SignedEvent);
  } catch {
    // decoded the full way below
  }
  return decodeSignedEvent(bytes);
}

/**
 * The event of an entry taken whole, decoded again once it is durable: its bytes were checked
 * when it was screened ({@link decodeSealedEntry}).
 */
const decodeStored = (entry: Entry): SignedEvent => JSON.parse(UTF8.decode(entry.bytes)) as SignedEvent;

/** The event of a candidate: decoded already. */
const decodedOf = (candidate: Candidate): SignedEvent => candidate.event;

/** A candidate's key alone (its decoded event is dropped: see {@link Ingest.screenWhole}). */
const keyOnly = ({ event, bytes }: Candidate): Entry => ({
  event: { id: event.id, device: event.device, seq: event.seq, hlc: event.hlc },
  bytes,
});

/**
 * `list` with its byte entries copied, in order, into one buffer (each entry a view of it); other
 * entries as they are.
 *
 * @remarks Automerge gives each value of a loaded document its own `ArrayBuffer`: 5000 per
 * segment, kept from the screen until the fold, each one swept by every young-generation
 * collection it lives through (`sweep_array_buffers` was a quarter of the scavenges' time in a
 * new device's `--trace-gc-nvp`). One buffer per segment is swept once.
 */
export function inOneBuffer(list: readonly unknown[]): unknown[] {
  let total = 0;
  for (const entry of list) if (entry instanceof Uint8Array) total += entry.length;
  const slab = new Uint8Array(total);
  let at = 0;
  return list.map((entry) => {
    if (!(entry instanceof Uint8Array)) return entry;
    const copy = slab.subarray(at, at + entry.length);
    copy.set(entry);
    at += entry.length;
    return copy;
  });
}

/** The default {@link IngestDeps.verify}: `verifyEvents` of the decoded events (WebCrypto, thread pool). */
export const verifyReceived: EventVerifier = (received) => verifyEvents(received.map(({ event }) => event));

/**
 * The ingest pipeline: screen → verify → commit.
 *
 * @remarks When a segment changes, its new entries are screened at once (decoded, canonical bytes
 * only; the id bound to the event's device and seq; facility and roster), their signatures are
 * verified (`deps.verify`, by default on the thread pool) one segment after another (each one
 * concurrent inside, or covered by a relay seal), and a second chain stores and folds verified
 * batches in order. Anything refused is a security incident: it is never stored, and a change
 * that deletes or rewrites entries of a document has no effect on the log. A batch the store
 * refuses as a conflict is retried event by event, so one bad event cannot hold back the others.
 */
export class Ingest {
  readonly #deps: IngestDeps;
  /** Verification of ingested segments, one after another. */
  #verifyChain: Promise<void> = Promise.resolve();
  /** Second stage: hands verified batches to the store, in order, without waiting for the last one to be durable. */
  #writeChain: Promise<void> = Promise.resolve();
  /** Third stage: folds each batch once it is durable, in order. */
  #commitChain: Promise<void> = Promise.resolve();
  /** Ids being verified or stored by the second stage. */
  readonly #inFlight = new Set<string>();
  readonly #verification = { oneByOne: 0, bySeal: 0 };

  constructor(deps: IngestDeps) {
    this.#deps = deps;
  }

  /** Queues a read of `segment`'s new entries on the serial work chain. */
  schedule(segment: SegmentState): void {
    this.#deps.work.enqueue(() => {
      this.read(segment);
      return Promise.resolve();
    });
  }

  /** Reads new entries of a segment document, keeps only valid facility events, stores them durably. */
  read(segment: SegmentState): void {
    const list = segment.handle.doc().events;
    if (!Array.isArray(list)) return;
    if (this.#deps.seals.shouldWait(segment, list)) return;
    const lastSeen = segment.processed > 0 ? list[segment.processed - 1] : undefined;
    const shifted =
      segment.lastSeen !== undefined &&
      (!(lastSeen instanceof Uint8Array) || !bytesEqual(lastSeen, segment.lastSeen));
    const start = list.length < segment.processed || shifted ? 0 : segment.processed;
    const firstPosition = start === 0 ? 0 : segment.processedEvents;
    const { candidates, conflicts, events } = this.#screen(
      segment,
      list,
      start,
      firstPosition,
      decodeSignedEvent,
      (c) => c,
    );
    markProcessed(segment, list, events);
    if (conflicts.length > 0) {
      this.#commitChain = this.#commitChain.then(() => this.#checkConflicts(conflicts));
    }
    if (candidates.length === 0) return;
    // Signatures are checked (off the main thread) while the next segment is scanned; storing
    // and folding stay strictly in order on their own chains.
    // One segment's verification at a time (each one concurrent inside): the first segment
    // is ready to commit as soon as possible instead of when the last one is.
    const verdicts = this.#verifyChain.then(() => this.#verify(segment, candidates));
    this.#verifyChain = verdicts.then(
      () => undefined,
      () => undefined,
    );
    void this.#commit(segment.device, candidates, verdicts, decodedOf);
  }

  /**
   * Screens a whole sealed segment taken in outside the Repo (`bulk-segments.ts`): its entries are
   * checked as a document's are (but for their canonical form: {@link decodeSealedEntry}), and
   * they are returned only when the relay's seal of segment `index` of `device` covers every one
   * of them (undefined otherwise: nothing may be stored).
   *
   * @remarks Each entry keeps its bytes and its event's key alone; the event is decoded again
   * when it is folded (a second `JSON.parse`, ≈ 35 ms per 5000 events). Kept decoded, a segment's
   * events lived from here through the store's write, across many young-generation collections
   * (≈ 750 for 100k events under the agent's 2 MB semi-space); decoded at the fold, each one dies
   * young. Runs at 100k on the loaded 2-core machine did not separate the two (README, "Cold sync").
   */
  async screenWhole(
    place: Pick<SegmentState, 'id' | 'device' | 'index'>,
    list: readonly unknown[],
  ): Promise<readonly Entry[] | undefined> {
    const { ctx, seals } = this.#deps;
    const entries = inOneBuffer(list);
    // The digest first, over the entries as listed: when it is the seal's, each entry is known to
    // be the relay-sealed event at its position, and is read without the shape check.
    const asListed = await seals.coversAsListed(place, entries);
    const decode = asListed ? decodeListedSealedEntry : decodeSealedEntry;
    const { candidates } = this.#screen(place, entries, 0, 0, decode, keyOnly);
    if (candidates.length !== ctx.segmentSize) return undefined;
    const first = place.index * ctx.segmentSize + 1;
    if (
      asListed &&
      candidates.every(({ event }, i) => event.device === place.device && event.seq === first + i)
    )
      return candidates;
    const sealed = await seals.covered(place, candidates);
    return sealed.size === candidates.length ? candidates : undefined;
  }

  /** Stores and folds the entries of {@link Ingest.screenWhole}, verified by their relay seal. */
  commitWhole(place: Pick<SegmentState, 'device'>, entries: readonly Entry[]): Promise<void> {
    this.#verification.bySeal += entries.length;
    return this.#commit(place.device, entries, Promise.resolve(entries.map(() => true)), decodeStored);
  }

  /**
   * Hands `candidates` (entries of a segment of `device`) to the store once `verdicts` are in, and
   * folds them once durable, in order with every earlier batch; then seals every followed segment
   * of `device` they completed. Resolves then. `decoded` gives an entry's whole event.
   *
   * @remarks Not only the segment they came from: a later segment committed first had its events
   * held back behind the hole these fill, so it was not complete when it was committed, and this
   * is the moment it becomes so (left open, it was never stored as received nor unloaded).
   */
  #commit<E extends Entry>(
    device: DeviceId,
    candidates: readonly E[],
    verdicts: Promise<boolean[]>,
    decoded: (entry: E) => SignedEvent,
  ): Promise<void> {
    for (const { event } of candidates) this.#inFlight.add(event.id);
    // The next batch goes to the store while the last one is still being made durable: the store
    // keeps their order and writes what arrived meanwhile in one synced batch (cold sync hands
    // it a segment after another faster than one sync each). Folding waits for each in order.
    const written = this.#writeChain.then(async () => this.#write(candidates, await verdicts, decoded));
    this.#writeChain = written.then(
      () => undefined,
      () => undefined,
    );
    this.#commitChain = this.#commitChain.then(async () => {
      try {
        this.#fold(await (await written).durable, decoded);
        if (device !== this.#deps.ctx.deviceId) this.#deps.segments.sealCompleted(device);
      } catch (err) {
        if (!this.#deps.isClosed()) this.#deps.onError(err);
      } finally {
        for (const { event } of candidates) this.#inFlight.delete(event.id);
      }
    });
    return this.#commitChain;
  }

  /**
   * Screens entries `start…` of a segment's list, each run split into its events
   * (`eventsOfEntry`): every piece that is not a well-formed event of a roster member of this
   * facility, with an id bound to its device and seq, is an incident. Returns the new events to
   * verify, the ones that contradict a held event of the same device and seq (equivocation, if
   * validly signed), and how many events the list holds up to its end when entry `start` holds
   * event `firstPosition` (what {@link markProcessed} records).
   */
  #screen<E extends Entry>(
    segment: Pick<SegmentState, 'id' | 'device' | 'index'>,
    list: readonly unknown[],
    start: number,
    firstPosition: number,
    decode: (bytes: Uint8Array) => Result<SignedEvent>,
    keep: (candidate: Candidate) => E,
  ): { candidates: E[]; conflicts: SignedEvent[]; events: number } {
    const { incidents, visible, roster, ctx, store } = this.#deps;
    const candidates: E[] = [];
    const conflicts: SignedEvent[] = [];
    const seenInBatch = new Set<string>();
    let position = firstPosition;
    for (let i = start; i < list.length; i++) {
      const entry: unknown = list[i];
      if (!(entry instanceof Uint8Array)) {
        incidents.report({
          code: 'PROTOCOL_SCHEMA',
          message: `segment ${segment.id} entry ${i} is not bytes`,
        });
        position++;
        continue;
      }
      // Each piece of a run is judged as an entry of its own was before runs: a bad one is an
      // incident, and the pieces around it go on to be judged on their own merits.
      for (const bytes of eventsOfEntry(entry)) {
        if (this.#storedAsIs(segment, position++, bytes)) continue; // known: nothing to decode
        const decoded = decode(bytes);
        if (!decoded.ok) {
          incidents.report({
            code: decoded.error.code as SecurityIncident['code'],
            message: decoded.error.message,
          });
          continue;
        }
        const event = decoded.value;
        if (!isEventIdOf(event.id, event.device, event.seq)) {
          // An id belongs to the device and seq it was made for: a copy of another device's id (or
          // of another seq) is a forgery, and must never displace the author's own event.
          incidents.report({
            code: 'LOG_FORGED_EVENT',
            message: `event id ${event.id} is not bound to device ${event.device} seq ${event.seq}`,
            eventId: event.id,
            device: event.device,
          });
          continue;
        }
        if (seenInBatch.has(event.id) || this.#inFlight.has(event.id)) continue;
        if (visible.has(event.id)) {
          // Same id, so same device and seq: either the same event or the device equivocated. The
          // stored bytes are compared (events are not kept in memory); a copy damaged on disk since
          // open cannot be compared, and is repaired from peers at the next start.
          let stored: Uint8Array | undefined;
          try {
            stored = store.readSync(event.id)?.bytes;
          } catch {
            continue;
          }
          if (stored === undefined || !bytesEqual(stored, bytes)) conflicts.push(event);
          continue;
        }
        if (event.facility !== ctx.facility) {
          incidents.report({
            code: 'LOG_WRONG_FACILITY',
            message: `event of facility ${event.facility}`,
            eventId: event.id,
            device: event.device,
          });
          continue;
        }
        const member = roster.lookup(event.device);
        if (member === undefined) {
          incidents.report({
            code: 'LOG_UNKNOWN_DEVICE',
            message: 'event from a device outside the roster',
            eventId: event.id,
            device: event.device,
          });
          continue;
        }
        if (member.facility !== ctx.facility) {
          incidents.report({
            code: 'LOG_WRONG_FACILITY',
            message: 'event from a device of another facility',
            eventId: event.id,
            device: event.device,
          });
          continue;
        }
        const other = visible.idAt(event.device, event.seq);
        if (other !== undefined) {
          conflicts.push(event);
          continue;
        }
        seenInBatch.add(event.id);
        candidates.push(keep({ event, bytes }));
      }
    }
    return { candidates, conflicts, events: position };
  }

  /**
   * True when event `position` of `segment` (counting runs' pieces) is, byte for byte, the stored event at the seq that
   * position holds in a segment written in order: a known event, which the screen skips without
   * decoding it (the full path would decode it only to find it held and compare the same bytes).
   *
   * @remarks A segment read from its start (the relay's open segment when a peer connects: every
   * verdict it holds, 27 KB of JSON each) costs one store read per known entry instead of a parse
   * of it as well. A lookup or a length that differs, an entry elsewhere than its place, or a
   * stored copy that cannot be read falls back to the full screen, which decides as before.
   */
  #storedAsIs(segment: Pick<SegmentState, 'device' | 'index'>, position: number, bytes: Uint8Array): boolean {
    const { visible, store, ctx } = this.#deps;
    const id = visible.idAt(segment.device, seqAtPosition(ctx, segment, position));
    if (id === undefined) return false;
    let stored: Uint8Array | undefined;
    try {
      stored = store.readSync(id)?.bytes;
    } catch {
      return false;
    }
    return stored !== undefined && bytesEqual(stored, bytes); // lengths first, then bytes
  }

  /**
   * Checks the signatures of a segment's new entries, with `deps.verify`.
   *
   * @remarks When the entries include exactly the events of a segment the relay has sealed, and
   * their digest matches the seal, those events are verified by that one relay signature (it
   * signed only after verifying each of them); the rest are verified one by one (DESIGN.md §8).
   */
  async #verify(
    segment: Pick<SegmentState, 'device' | 'index'>,
    candidates: readonly Candidate[],
  ): Promise<boolean[]> {
    const sealed = await this.#deps.seals.covered(segment, candidates);
    const results = new Array<boolean>(candidates.length).fill(true);
    const rest = candidates.flatMap((c, i) => (sealed.has(i) ? [] : [{ c, i }]));
    this.#verification.bySeal += sealed.size;
    this.#verification.oneByOne += rest.length;
    if (rest.length === 0) return results;
    const checked = await this.#deps.verify(rest.map(({ c }) => c));
    rest.forEach(({ i }, k) => (results[i] = checked[k] === true));
    return results;
  }

  /**
   * Hands verified events to the store (in one batch when possible); `durable` resolves with those
   * stored once they are durable. Resolves as soon as the write is queued in the store.
   *
   * @remarks A batch written while an earlier one is not folded yet cannot see that batch's events
   * here: another copy of one of them is never a candidate (it is in flight), and another event in
   * one of their slots makes the store refuse the batch, which is then retried event by event and
   * the contradicting one reported as an equivocation, as when it was folded already.
   */
  async #write<E extends Entry>(
    candidates: readonly E[],
    valid: readonly boolean[],
    decoded: (entry: E) => SignedEvent,
  ): Promise<{ readonly durable: Promise<readonly E[]> }> {
    const { incidents, visible, equivocations } = this.#deps;
    const accepted: E[] = [];
    const equivocated: SignedEvent[] = [];
    // Seqs taken in this batch, by device (a batch is one segment's: one device, as a rule). A
    // `device/seq` string per event was ≈ 180 B of garbage each on a new device's main thread.
    const seqTaken = new Map<DeviceId, Set<number>>();
    candidates.forEach((candidate, i) => {
      const { event } = candidate;
      if (valid[i] !== true) {
        incidents.report({
          code: 'LOG_FORGED_EVENT',
          message: 'bad signature',
          eventId: event.id,
          device: event.device,
        });
        return;
      }
      if (visible.has(event.id)) return; // arrived meanwhile through another document
      let taken = seqTaken.get(event.device);
      if (taken === undefined) seqTaken.set(event.device, (taken = new Set()));
      if (taken.has(event.seq) || visible.idAt(event.device, event.seq) !== undefined) {
        // Two validly signed events for one (device, seq): the device equivocated.
        equivocated.push(decoded(candidate));
        return;
      }
      taken.add(event.seq);
      accepted.push(candidate);
    });
    for (const event of equivocated) await equivocations.equivocated(event);
    if (accepted.length === 0 || this.#deps.isClosed()) return { durable: Promise.resolve([]) };
    const durable = this.#append(accepted, decoded);
    // Awaited in order by the fold; a failure must not count as unhandled meanwhile.
    durable.catch(() => undefined);
    return { durable };
  }

  /** Stores `accepted` durably; returns those stored (all but any the store found contradicting). */
  async #append<E extends Entry>(accepted: E[], decoded: (entry: E) => SignedEvent): Promise<readonly E[]> {
    const { store, equivocations } = this.#deps;
    const stored = accepted.map(({ event, bytes }) => ({
      device: event.device,
      seq: event.seq,
      id: event.id,
      bytes,
    }));
    try {
      await store.append(stored);
    } catch (err) {
      if (!isAccordError(err, ErrorCode.STORAGE_CONFLICT)) throw err;
      // One event contradicts what is stored: keep the others, report that one.
      const kept: E[] = [];
      for (const [i, one] of stored.entries()) {
        try {
          await store.append([one]);
          kept.push(accepted[i]!);
        } catch (inner) {
          if (!isAccordError(inner, ErrorCode.STORAGE_CONFLICT)) throw inner;
          // Verified, and the store holds another event in its slot: the device equivocated.
          await equivocations.equivocated(decoded(accepted[i]!));
        }
      }
      return kept;
    }
    return accepted;
  }

  /** Makes durable events visible (or held back), observing their stamps. */
  #fold<E extends Entry>(stored: readonly E[], decoded: (entry: E) => SignedEvent): void {
    this.#observe(stored);
    for (const entry of stored) this.#deps.add(decoded(entry));
  }

  /**
   * Observes the stamps of a batch: its latest alone when the clock takes it (then it is ahead of
   * every other one, and observing them too would change nothing), else each one.
   *
   * @remarks Stamps are fixed-width, so string order is stamp order. Parsing every stamp of a
   * 5000-event sealed segment was ≈ 1 % of a new device's CPU; a stamp too far ahead of the wall
   * clock is refused by the clock, and then the others must each be looked at.
   */
  #observe(stored: readonly Entry[]): void {
    let latest: Entry['event']['hlc'] | undefined;
    for (const { event } of stored) if (latest === undefined || event.hlc > latest) latest = event.hlc;
    if (latest === undefined || this.#deps.hlc.observe(latest)) return;
    for (const { event } of stored) this.#deps.hlc.observe(event.hlc);
  }

  /** Verifies entries that contradict held events: a valid one proves equivocation, an invalid one is forged. */
  async #checkConflicts(conflicts: readonly SignedEvent[]): Promise<void> {
    const valid = await verifyEvents(conflicts);
    for (const [i, event] of conflicts.entries()) {
      if (valid[i] === true) await this.#deps.equivocations.equivocated(event);
      else
        this.#deps.incidents.report({
          code: 'LOG_FORGED_EVENT',
          message: 'bad signature',
          eventId: event.id,
          device: event.device,
        });
    }
  }

  /** Resolves once the work queued so far (and what it queued) is stored. */
  async settled(): Promise<void> {
    const work = this.#deps.work;
    let chain: Promise<void>;
    let commits: Promise<void>;
    do {
      chain = work.tail;
      await chain;
      commits = this.#commitChain;
      await commits;
    } while (chain !== work.tail || commits !== this.#commitChain);
  }

  /** Resolves once the stores and folds queued so far are done. */
  get committed(): Promise<void> {
    return this.#commitChain;
  }

  /** How received events were verified since open: one by one, or covered by a relay seal. */
  verification(): { readonly oneByOne: number; readonly bySeal: number } {
    return { ...this.#verification };
  }
}
