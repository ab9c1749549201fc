import { EventNumbers, isSystemEventType, ProjectionFolder, type EventSource } from '@accord/domain';
import { eventIdSeq, type DeviceId, type EventId, type SignedEvent } from '@accord/protocol';
import type { Withheld } from './api.js';
import { Interner } from './interner.js';
import { SeqIds } from './seq-ids.js';

/** Missing sequence numbers listed per device by {@link VisibleSet.holes} and {@link VisibleSet.withheld}. */
const MAX_MISSING_LISTED = 1000;

/**
 * Which verified events the projections see: per device, the contiguous prefix of its sequence
 * numbers, stopped at its equivocation barrier if it has one. Everything else is held back.
 *
 * @remarks No I/O of its own: the log stores an event before it adds it here, and events are read
 * back through the {@link EventSource} it is given (the event store). Events are not resident:
 * what stays in memory is per event an id (and its status in the folder), while the folder keeps
 * system events and amends (few, and read by every status query). Every verified event is either
 * visible (the projection folder holds it) or held back (a small map of its own): one map entry
 * per event across the log, since at 100k events each extra map costs several megabytes. Each
 * device's ids by seq are numbers in a typed array ({@link SeqIds}, numbered in one
 * `EventNumbers` table shared with the folder: no index holds an event's id string). Events are interned as they arrive.
 */
export class VisibleSet {
  readonly #relay: DeviceId | null;
  readonly #source: EventSource;
  /** What the folder reads events back from; undefined when visible events stay resident. */
  readonly #folderSource: EventSource | undefined;
  /** Verified events held back behind a hole or a barrier in their device's sequence: id → device. */
  readonly #held = new Map<EventId, DeviceId>();
  /** Per device: sequence number → event id, visible or held. */
  readonly #seqs = new Map<DeviceId, SeqIds>();
  /** Per device: the highest n such that 1…n are all visible. */
  readonly #contiguous = new Map<DeviceId, number>();
  /**
   * Per device: the lowest sequence number it was caught signing twice (equivocation). Its events
   * from there on are withheld on every device, whichever copy each one stored first, so that all
   * devices agree (issue #13, scenario 5).
   */
  readonly #barriers = new Map<DeviceId, number>();
  readonly #interner = new Interner();
  /**
   * One number per event id, shared by the folder (statuses, the confirmed fold, its applied set
   * and patients) and each device's ids by seq: those indexes hold numbers, and no id string.
   */
  readonly #numbers = new EventNumbers();
  /** Incremental statuses and confirmed fold over the visible events. */
  #folder: ProjectionFolder;

  /**
   * `relay` is the relay's device id: only verdicts signed by it count. `source` reads back an
   * event added earlier (the log's event store). With `resident`, visible events are kept in
   * memory by the folder instead (see `DeviceLogOptions.residentEvents`); held ones are still
   * read back when released.
   */
  constructor(relay: DeviceId | null, source: EventSource, opts: { readonly resident?: boolean } = {}) {
    this.#relay = relay;
    this.#source = source;
    this.#folderSource = opts.resident === true ? undefined : source;
    this.#folder = new ProjectionFolder(relay, this.#folderSource, { numbers: this.#numbers });
  }

  /** The fold of the visible events (a new instance after {@link VisibleSet.withholdFrom}). */
  get folder(): ProjectionFolder {
    return this.#folder;
  }

  /** Number of verified events held (visible or held back). */
  get size(): number {
    return this.#folder.size + this.#held.size;
  }

  /** True when a verified event with this id was added (visible or held back); no read. */
  has(id: EventId): boolean {
    return this.#folder.has(id) || this.#held.has(id);
  }

  /** A verified event by id, visible or held back (read back from the source). */
  known(id: EventId): SignedEvent | undefined {
    if (this.#held.has(id)) return this.#source.event(id);
    return this.#folder.event(id);
  }

  /** A visible event by id (read back from the source unless the folder keeps it). */
  visible(id: EventId): SignedEvent | undefined {
    return this.#folder.event(id);
  }

  /**
   * Every visible event, in no particular order, read back one at a time; with `systemOnly` only
   * the system events (verdicts, rosters, seals, retries, discards), which are resident: no read;
   * with `naming` too, of the relay's accepted-verdict batches only those that name that event.
   */
  *visibleEvents(systemOnly = false, naming?: EventId): Generator<SignedEvent> {
    const folder = this.#folder;
    if (systemOnly) {
      for (const event of folder.residentEvents(naming)) if (isSystemEventType(event.type)) yield event;
      return;
    }
    for (const id of folder.ids()) yield folder.event(id)!;
  }

  /**
   * Adds a verified event: returns the events that became visible, in seq order (the event first,
   * then every held one it unblocks; empty when it is held back), or undefined when it was known.
   *
   * @remarks `onRelease` is called for each released event as it joins the fold, before the next.
   */
  add(decoded: SignedEvent, onRelease: (event: SignedEvent) => void = () => {}): SignedEvent[] | undefined {
    if (this.has(decoded.id)) return undefined;
    const event = this.#interner.intern(decoded, {
      visibleId: (id) => this.#folder.idOf(id),
      sharedId: (id) => this.#folder.sharedId(id),
    });
    let ids = this.#seqs.get(event.device);
    if (ids === undefined) this.#seqs.set(event.device, (ids = new SeqIds(this.#numbers)));
    ids.set(event.seq, event.id);
    let contiguous = this.#contiguous.get(event.device) ?? 0;
    const barrier = this.#barriers.get(event.device) ?? Infinity;
    if (event.seq !== contiguous + 1 || event.seq >= barrier) {
      this.#held.set(event.id, event.device); // held back behind a hole or an equivocation (or already covered)
      return [];
    }
    // The event and every held one it unblocks, in seq order (a seq above `contiguous` is held).
    const released: SignedEvent[] = [];
    for (let e: SignedEvent | undefined = event; e !== undefined;) {
      contiguous++;
      this.#folder.add(e);
      onRelease(e);
      released.push(e);
      const next = contiguous + 1 < barrier ? ids.get(contiguous + 1) : undefined;
      // A held event is read back as it is released.
      e = next === undefined || !this.#held.delete(next) ? undefined : this.#source.event(next);
    }
    this.#contiguous.set(event.device, contiguous);
    return released;
  }

  /** The equivocation barrier of `device`, if any. */
  barrier(device: DeviceId): number | undefined {
    return this.#barriers.get(device);
  }

  /** Every equivocation barrier (what the log persists). */
  barriers(): ReadonlyMap<DeviceId, number> {
    return this.#barriers;
  }

  /** Sets `device`'s barrier to `seq` (callers only ever lower it); see {@link VisibleSet.withholdFrom}. */
  setBarrier(device: DeviceId, seq: number): void {
    this.#barriers.set(device, seq);
  }

  /** Makes `device`'s visible events from `seq` on held back again; true when the visible set changed. */
  withholdFrom(device: DeviceId, seq: number): boolean {
    const contiguous = this.#contiguous.get(device) ?? 0;
    if (contiguous < seq) return false; // nothing visible from there on yet
    const keep = new ProjectionFolder(this.#relay, this.#folderSource, { numbers: this.#numbers });
    // Rare (a device caught equivocating): every visible event is read back into a new folder.
    for (const id of this.#folder.ids()) {
      const event = this.#folder.event(id)!;
      if (event.device === device && event.seq >= seq) this.#held.set(event.id, event.device);
      else keep.add(event);
    }
    this.#folder = keep;
    this.#contiguous.set(device, seq - 1);
    return true;
  }

  /** The highest n such that `device`'s events 1…n are all visible. */
  contiguous(device: DeviceId): number {
    return this.#contiguous.get(device) ?? 0;
  }

  /** The id of `device`'s event `seq`, visible or held back. */
  idAt(device: DeviceId, seq: number): EventId | undefined {
    return this.#seqs.get(device)?.get(seq);
  }

  /**
   * Where a visible event sits (its device and sequence number), from its id alone: no read, and
   * no index from ids to places (a log's ids are bound to their device and seq, see
   * `eventIdFor`). Undefined when no visible event has this id.
   */
  locate(id: EventId): { readonly device: DeviceId; readonly seq: number } | undefined {
    const seq = eventIdSeq(id);
    if (seq === undefined) return undefined;
    // A facility has a few devices; the id is held at its seq by its author only.
    for (const [device, ids] of this.#seqs)
      if (seq <= this.contiguous(device) && ids.holds(seq, id)) return { device, seq };
    return undefined;
  }

  /** The highest sequence number of `device` held (0 when none). */
  maxSeq(device: DeviceId): number {
    return this.#seqs.get(device)?.max() ?? 0;
  }

  /** Every device with at least one verified event. */
  devices(): IterableIterator<DeviceId> {
    return this.#seqs.keys();
  }

  /** True when `device`'s events of segment `index` (of `size` events) are all visible. */
  complete(device: DeviceId, index: number, size: number): boolean {
    return this.contiguous(device) >= (index + 1) * size;
  }

  /** The events of segment `index` of `device` in seq order (read back), or undefined unless all are visible. */
  segmentEvents(device: DeviceId, index: number, size: number): SignedEvent[] | undefined {
    if (!this.complete(device, index, size)) return undefined;
    const seqs = this.#seqs.get(device);
    const out: SignedEvent[] = [];
    for (let seq = index * size + 1; seq <= (index + 1) * size; seq++) {
      const id = seqs?.get(seq);
      const event = id === undefined ? undefined : this.#folder.event(id);
      if (event === undefined) return undefined;
      out.push(event);
    }
    return out;
  }

  /** The ids of `device`'s visible events in seq order (1 … contiguous). */
  *visibleIds(device: DeviceId): Generator<EventId> {
    const seqs = this.#seqs.get(device);
    const contiguous = this.contiguous(device);
    for (let seq = 1; seq <= contiguous; seq++) {
      const id = seqs?.get(seq);
      if (id !== undefined) yield id;
    }
  }

  /** Per device, the missing sequence numbers below its highest one (at most 1000 listed). */
  holes(): { device: string; missing: number[] }[] {
    const holes: { device: string; missing: number[] }[] = [];
    for (const [device, seqs] of this.#seqs) {
      const contiguous = this.contiguous(device);
      const max = seqs.max();
      if (max <= contiguous) continue;
      holes.push({ device, missing: this.#missing(device, contiguous + 1, max) });
    }
    return holes;
  }

  /** Devices whose later events are held back, and why, sorted by device; `skip` leaves some out. */
  withheld(skip: (device: DeviceId) => boolean): Withheld[] {
    const heldBy = new Map<DeviceId, number>();
    for (const device of this.#held.values()) heldBy.set(device, (heldBy.get(device) ?? 0) + 1);
    const out: Withheld[] = [];
    for (const [device, heldBack] of heldBy) {
      if (skip(device)) continue;
      const from = this.contiguous(device) + 1;
      const barrier = this.#barriers.get(device);
      if (barrier !== undefined && barrier <= from) {
        out.push({ device, from, reason: 'equivocation', missing: [], heldBack });
        continue;
      }
      const end = Math.min(this.maxSeq(device), barrier ?? Infinity);
      out.push({ device, from, reason: 'hole', missing: this.#missing(device, from, end), heldBack });
    }
    return out.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  }

  /** The sequence numbers of `device` in `[from, end)` that no held event has (the first 1000). */
  #missing(device: DeviceId, from: number, end: number): number[] {
    const seqs = this.#seqs.get(device);
    const missing: number[] = [];
    for (let seq = from; seq < end && missing.length < MAX_MISSING_LISTED; seq++)
      if (seqs?.get(seq) === undefined) missing.push(seq);
    return missing;
  }
}
