import {
  parseSegmentSealedData,
  segmentDigest,
  segmentName,
  type DeviceId,
  type SignedEvent,
} from '@accord/protocol';
import { eventCountOfList, eventsOfList } from './documents.js';
import type { LogContext, SegmentState } from './segments.js';
import type { VisibleSet } from './visible-set.js';

/**
 * How long a whole segment of another device, arriving at once, waits for the relay's seal of it
 * before its events are verified one by one; one window is shared by every segment of a burst,
 * and the next window opens no sooner than this long after it closed.
 */
const SEAL_WAIT_MS = 1000;

/** What the commit needs of an event: where it goes, and its stamp. */
export type EventKey = Pick<SignedEvent, 'id' | 'device' | 'seq' | 'hlc'>;

/** A segment's new entry: its signed bytes and (at least) the key of the event they decode to. */
export interface Entry {
  readonly event: EventKey;
  readonly bytes: Uint8Array;
}

/** A segment's new entry: the decoded event and its signed bytes. */
export interface Candidate extends Entry {
  readonly event: SignedEvent;
}

/** What {@link RelaySeals} asks of the rest of the log. */
export interface RelaySealsDeps {
  readonly ctx: LogContext;
  /** The relay's device id: only its seals count. Undefined before a relay exists. */
  readonly relay: DeviceId | undefined;
  readonly visible: VisibleSet;
  /** Told of each new seal: segment `index` of `device` is sealed. */
  readonly onSealed: (device: DeviceId, index: number) => void;
  /** Reads a segment again (its seal arrived, or the wait for it ended). */
  readonly reread: (segment: SegmentState) => void;
}

/**
 * The relay's `SegmentSealed` statements (DESIGN.md §8): a whole segment of another device whose
 * digest matches the relay's seal is verified by that one relay signature instead of one by one.
 *
 * @remarks A whole segment that arrives before its seal waits for it, at most one second: one
 * window shared by every segment of the burst (the relay's own segment usually arrives in it).
 * The window is driven by timers alone (open → cooling → closed), never by reading a clock: the
 * log's injected clock may stand still or jump, and a window must still end.
 */
export class RelaySeals {
  readonly #deps: RelaySealsDeps;
  /** Digests of the relay's seals, by `<device>/<index>`. */
  readonly #digests = new Map<string, string>();
  /** Segments waiting for their relay seal (by `<device>/<index>`). */
  readonly #awaiting = new Map<string, SegmentState>();
  /** Segments that have waited once: a late reading never waits again. */
  readonly #waited = new Set<string>();
  /** The shared wait: `open` while segments may wait, then `cooling` for as long, then `closed`. */
  #window: 'closed' | 'open' | 'cooling' = 'closed';
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(deps: RelaySealsDeps) {
    this.#deps = deps;
  }

  /** Remembers a relay-signed segment seal (a `SegmentSealed` event that became visible). */
  note(event: SignedEvent): void {
    const { relay, ctx } = this.#deps;
    if (relay === undefined || event.device !== relay) return;
    const parsed = parseSegmentSealedData(event.data);
    if (!parsed.ok || parsed.value.size !== ctx.segmentSize) return;
    const key = segmentName(parsed.value.device, parsed.value.index);
    this.#digests.set(key, parsed.value.digest);
    this.#deps.onSealed(parsed.value.device, parsed.value.index);
    const waiting = this.#awaiting.get(key);
    if (waiting !== undefined) {
      this.#awaiting.delete(key);
      this.#deps.reread(waiting);
    }
  }

  /** True when the relay has been heard to seal segment `index` of `device`. */
  isSealed(device: DeviceId, index: number): boolean {
    return this.#digests.has(segmentName(device, index));
  }

  /**
   * True when `segment` arrived whole, none of it is held yet, the relay has not been heard to
   * seal it, and the shared wait for seals is open: it is read again when the seal arrives or the
   * wait ends. Verifying one relay signature is much cheaper than a whole segment of device
   * signatures, and the relay's own segment usually arrives in the same burst.
   */
  shouldWait(segment: SegmentState, list: readonly unknown[]): boolean {
    const { relay, ctx, visible } = this.#deps;
    const key = segmentName(segment.device, segment.index);
    // (The relay itself never waits: it seals what it verified.)
    if (relay === undefined || relay === ctx.deviceId) return false;
    if (segment.device === relay || segment.device === ctx.deviceId) return false;
    if (segment.processed > 0 || this.#digests.has(key)) return false;
    if (eventCountOfList(list) < ctx.segmentSize) return false; // events, not entries: runs hold many
    if (this.#awaiting.has(key)) return true; // still waiting (the document changed again)
    if (this.#waited.has(key)) return false;
    if (visible.contiguous(segment.device) > segment.index * ctx.segmentSize) return false;
    if (this.#window === 'closed') {
      // A new burst: open a new window (at most one wait per two windows' time).
      this.#window = 'open';
      this.#timer = setTimeout(() => this.#waitOver(), SEAL_WAIT_MS);
      this.#timer.unref();
    }
    if (this.#window !== 'open') return false;
    this.#awaiting.set(key, segment);
    this.#waited.add(key);
    return true;
  }

  /** The shared wait for seals is over: read every segment still waiting (one by one now). */
  #waitOver(): void {
    this.#window = 'cooling';
    this.#timer = setTimeout(() => (this.#window = 'closed'), SEAL_WAIT_MS);
    this.#timer.unref();
    const waiting = [...this.#awaiting.values()];
    this.#awaiting.clear();
    for (const segment of waiting) this.#deps.reread(segment);
  }

  /** Indexes of `candidates` that a relay seal of `segment` covers (empty unless all of it matches). */
  async covered(
    segment: Pick<SegmentState, 'device' | 'index'>,
    candidates: readonly Entry[],
  ): Promise<Set<number>> {
    const size = this.#deps.ctx.segmentSize;
    const digest = this.#digests.get(segmentName(segment.device, segment.index));
    if (digest === undefined || candidates.length < size) return new Set();
    const first = segment.index * size + 1;
    const bySeq = new Array<number>(size);
    for (const [i, { event }] of candidates.entries()) {
      const at = event.seq - first;
      if (event.device !== segment.device || at < 0 || at >= size) continue;
      if (bySeq[at] !== undefined) return new Set(); // two entries claim one seq: verify them all
      bySeq[at] = i;
    }
    for (let at = 0; at < size; at++) if (bySeq[at] === undefined) return new Set();
    const ordered = bySeq.map((i) => candidates[i]!.bytes);
    return (await segmentDigest(ordered)) === digest ? new Set(bySeq) : new Set();
  }

  /**
   * True when the events of `list` (a segment document's entries, runs split by
   * `eventsOfList`), as listed, are the relay-sealed events of segment `index` of `device`: one
   * event per seq of the segment whose digest, taken in list order, is the seal's. Then event `i`
   * is, byte for byte, the event the relay sealed at the segment's seq `i + 1`.
   *
   * @remarks A segment document lists its device's events in order; one that does not (or any
   * other mismatch) is checked as before, by {@link RelaySeals.covered} once its entries are decoded.
   * The digest is over events, however they are grouped in runs, so seals are the same as before.
   */
  async coversAsListed(
    segment: Pick<SegmentState, 'device' | 'index'>,
    list: readonly unknown[],
  ): Promise<boolean> {
    const digest = this.#digests.get(segmentName(segment.device, segment.index));
    if (digest === undefined) return false;
    const entries = eventsOfList(list);
    if (entries.length !== this.#deps.ctx.segmentSize) return false;
    for (const entry of entries) if (!(entry instanceof Uint8Array)) return false;
    return (await segmentDigest(entries as readonly Uint8Array[])) === digest;
  }

  /** Stops waiting: no segment is read again because of a wait. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#awaiting.clear();
  }
}
