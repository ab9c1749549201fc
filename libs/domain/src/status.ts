import type { DeviceId, EventId, SignedEvent } from '@accord/protocol';
import { forEachVerdictIn, readTarget, SystemEventType } from '@accord/protocol';
import { AcceptedBatch, AcceptedBatches } from './accepted-batches.js';
import { ConfirmedFold } from './confirmed-fold.js';
import { EventNumbers, Int32Column } from './event-numbers.js';
import type { Projection } from './projection.js';
import { isSystemEventType } from './system-event.js';

/** Where an event stands: no verdict yet, accepted, rejected and unresolved, or rejected and answered. */
export type EventStatus = 'pending' | 'accepted' | 'deadletter' | 'resolved';

/**
 * Everything a device's log holds: every event of the facility, keyed by id, and the relay's device id.
 *
 * @remarks `events` holds domain events, `Verdict` events (signed by the relay, data
 * `VerdictData`), `AcceptedVerdicts` (signed by the relay: one accepted verdict per target),
 * `RetryRequested`, `DeadletterDiscarded` and amends (domain events with
 * `supersedes`). Verdicts from any device other than `relay` are ignored; with `relay` null every
 * event is pending.
 */
export interface LogState {
  readonly events: ReadonlyMap<EventId, SignedEvent>;
  readonly relay: DeviceId | null;
}

/** The status of one event, the relay verdict it rests on, and what resolved it. */
export interface EventStatusInfo {
  readonly status: EventStatus;
  /**
   * The relay event stating the latest verdict for the event (highest relay envelope `seq`): a
   * `Verdict`, or an `AcceptedVerdicts` naming it (`verdictAbout` of `@accord/protocol` reads it).
   */
  readonly verdict?: SignedEvent;
  /** The discard or amend that resolved a deadletter (the earliest by HLC, then id). */
  readonly resolvedBy?: EventId;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** How many added events a {@link ProjectionFolder} with a source keeps in hand until a sync (default). */
const MAX_IN_HAND = 10_000;

/** Options of a {@link ProjectionFolder}. */
export interface ProjectionFolderOptions {
  /**
   * With a source: how many added events are kept whole until a sync, and how many accepted
   * events wait whole in the fold before later ones wait by id (default 10,000; tests lower it).
   */
  readonly maxInHand?: number;
  /**
   * The numbers the folder gives the ids it keeps (see {@link EventNumbers}): a log passes the
   * table its own indexes use, so that every index of the history shares one number per event.
   * Default: a table of the folder's own.
   */
  readonly numbers?: EventNumbers;
}

const PENDING: EventStatusInfo = Object.freeze({ status: 'pending' });
/** One shared (frozen) status per accepting verdict event: an `AcceptedVerdicts` accepts up to 1000. */
const ACCEPTED_BY = new WeakMap<SignedEvent, EventStatusInfo>();
function acceptedBy(verdict: SignedEvent): EventStatusInfo {
  let info = ACCEPTED_BY.get(verdict);
  if (info === undefined) ACCEPTED_BY.set(verdict, (info = Object.freeze({ status: 'accepted', verdict })));
  return info;
}

/**
 * What names an event (a verdict, retries, resolutions), and the event itself once added.
 *
 * @remarks A class, so that a tracker's slot tells it from an event (a plain object) at a glance.
 * Every field is set in the constructor: one object shape.
 */
class Target {
  /** The id as first named (so a log can share one string between the statement and the event). */
  readonly id: EventId;
  /** The event once added: itself, or its id when it is a plain domain event kept by id. */
  held: SignedEvent | EventId | undefined = undefined;
  verdict: SignedEvent | undefined = undefined;
  /** The latest verdict's outcome and (accepted) confirmed seq, kept flat: one object per target. */
  outcome: 'accepted' | 'deadletter' | undefined = undefined;
  seq: number | undefined = undefined;
  retries: Set<EventId> | undefined = undefined;
  resolvers: Set<EventId> | undefined = undefined;

  constructor(id: EventId) {
    this.id = id;
  }
}

/**
 * A tracker's one entry per id (see {@link Tracker}): a present event nothing names (itself, or
 * its id string when kept by id), a present event kept by id and accepted by an `AcceptedVerdicts`
 * with nothing else naming it (that acceptance's confirmed seq), or a {@link Target}.
 */
type Slot = SignedEvent | EventId | number | Target | AcceptedBatch;

/** A tracker's state of a number with no slot (numbers are shared: the log numbers held-back events too). */
const ABSENT = 0;
/** A tracker's state of a present event kept by id that nothing names. */
const BY_ID = -1;
/** A tracker's state of a number whose slot is an object (a resident event, a batch or a {@link Target}). */
const SIDE = -2;

/** True when `seq` can stand for itself in a tracker's state column (a positive 32-bit integer). */
function compactSeq(seq: number): boolean {
  return Number.isInteger(seq) && seq > 0 && seq <= 0x7fffffff;
}

/**
 * Where a {@link ProjectionFolder} reads back an event it does not keep in memory.
 *
 * @remarks A device's log keeps its events in a store: given a source, the folder keeps only the
 * ids of plain domain events (no `supersedes`), the bulk of a history, and reads them here when a
 * fold needs them. System events and amends stay in memory: statuses read them on every query,
 * and they are few.
 */
export interface EventSource {
  /** The event with this id, added to the folder earlier; throws (with a code) when it cannot be read. */
  event(id: EventId): SignedEvent;
}

/** True for an event a folder with a source keeps only by id: a domain event that amends nothing. */
function plainDomainEvent(event: SignedEvent): boolean {
  return event.supersedes === undefined && !isSystemEventType(event.type);
}

/**
 * Incremental classification of a facility's events (the engine behind {@link classify}).
 *
 * @remarks Order-independent: the latest verdict is the one with the highest relay envelope
 * `seq`; retries and resolutions are sets. `add` reports which event ids may have changed status.
 * Holds every event, or with `byId` every plain domain event as its id alone (the id string
 * itself: the map's key and value share it, and a log can share it further, see `idOf`).
 *
 * One map entry per id ({@link Slot}), for the event and for what names it: two maps (events, and
 * targets) cost two hash-table entries per event, ≈ 37 bytes each at 100k events. A present event
 * kept by id and accepted by an `AcceptedVerdicts`, with no retry or resolution, is the common case
 * of a long history: its entry is that acceptance's confirmed seq alone (a number, no object; the
 * verdict is found again in {@link AcceptedBatches}, which hold targets as numbers), and becomes a
 * {@link Target} again when anything else names it. An entry made by a statement naming an event
 * not added yet stays where it is when the event comes (moving it to the end, a delete and a set,
 * left the map's deleted entries to double its table: 7 MB instead of 3.5 at 100k events when the
 * verdicts come first, as a log's start-up scan reads them).
 */
class Tracker {
  readonly #relay: DeviceId | null;
  readonly #byId: boolean;
  readonly #numbers: EventNumbers;
  /**
   * Per event number: {@link ABSENT}, {@link BY_ID} (a present event kept by id that nothing
   * names), {@link SIDE} (its slot is in `#side`), or a positive confirmed seq (see above).
   */
  readonly #state = new Int32Column();
  /**
   * The slots that are objects: resident events nothing names, the relay's `AcceptedVerdicts`
   * nothing names as their batches (targets as numbers, the event made again on demand: see
   * {@link AcceptedBatch}), and {@link Target}s (few).
   */
  readonly #side = new Map<number, SignedEvent | Target | AcceptedBatch>();
  /** Number of events added (the slots of targets not added yet do not count). */
  #size = 0;
  readonly #accepted: AcceptedBatches;

  constructor(relay: DeviceId | null, byId: boolean, numbers: EventNumbers) {
    this.#relay = relay;
    this.#byId = byId;
    this.#numbers = numbers;
    this.#accepted = new AcceptedBatches(numbers);
  }

  /** The slot of `id` (see {@link Slot}; a kept-by-id event's slot is the string asked with). */
  #get(id: EventId): Slot | undefined {
    const n = this.#numbers.find(id);
    if (n === undefined) return undefined;
    const state = this.#state.get(n);
    if (state === ABSENT) return undefined;
    if (state === BY_ID) return id;
    if (state > 0) return state;
    return this.#side.get(n);
  }

  /** Sets the slot of `id` (a number only when {@link compactSeq} holds). */
  #set(id: EventId, slot: Slot): void {
    const n = this.#numbers.number(id);
    if (typeof slot === 'string' || typeof slot === 'number') {
      this.#side.delete(n);
      this.#state.set(n, typeof slot === 'string' ? BY_ID : slot);
    } else {
      this.#side.set(n, slot);
      this.#state.set(n, SIDE);
    }
  }

  /** Number of distinct events added. */
  get size(): number {
    return this.#size;
  }

  /** The event as held: itself, or its id when it is a plain domain event kept by id. */
  held(id: EventId): SignedEvent | EventId | undefined {
    const slot = this.#get(id);
    if (typeof slot === 'number') return id; // a present event kept by id, accepted by a batch
    if (slot instanceof AcceptedBatch) return slot.event();
    return slot instanceof Target ? slot.held : slot;
  }

  /** True when an event with this id was added (no batch event made again to tell). */
  has(id: EventId): boolean {
    const slot = this.#get(id);
    return slot !== undefined && (!(slot instanceof Target) || slot.held !== undefined);
  }

  /** The id string held for an added event (`id` itself when none is held: see `held`). */
  idOf(id: EventId): EventId | undefined {
    const slot = this.#get(id);
    if (typeof slot === 'number' || typeof slot === 'string') return id;
    if (slot instanceof Target) return typeof slot.held === 'string' ? slot.held : slot.held?.id;
    return slot?.id;
  }

  /**
   * Every event id added, in no particular order: in the order added, except that an event named
   * by a statement added before it comes where the statement named it.
   */
  *ids(): IterableIterator<EventId> {
    const numbers = this.#numbers;
    for (let n = 0; n < numbers.size; n++) {
      const state = this.#state.get(n);
      if (state === ABSENT) continue;
      if (state !== SIDE) yield numbers.id(n);
      else {
        const slot = this.#side.get(n)!;
        if (!(slot instanceof Target) || slot.held !== undefined) yield slot.id;
      }
    }
  }

  /**
   * Every resident event added (system events and amends with a source), in no particular order;
   * with `naming`, of the relay's `AcceptedVerdicts` batches only those whose targets include it
   * (the others are not made again from their numbers; every other event comes as without it).
   */
  *residentEvents(naming?: EventId): IterableIterator<SignedEvent> {
    const named = naming === undefined ? undefined : (this.#numbers.find(naming) ?? -1);
    for (const slot of this.#side.values()) {
      if (slot instanceof AcceptedBatch && named !== undefined && !slot.targets.includes(named)) continue;
      const held = slot instanceof Target ? slot.held : slot instanceof AcceptedBatch ? slot.event() : slot;
      if (held !== undefined && typeof held !== 'string') yield held;
    }
  }

  /** The resident event `id` (a system event or an amend), if it is one. */
  #resident(id: EventId): SignedEvent | undefined {
    const held = this.held(id);
    return typeof held === 'string' ? undefined : held;
  }

  /** True when some verdict, retry, discard or amend names `id` (present or not). */
  targeted(id: EventId): boolean {
    const slot = this.#get(id);
    return typeof slot === 'number' || slot instanceof Target;
  }

  /**
   * The string of `id` as a verdict, retry, discard or amend first named it, if one has (a batch
   * holds numbers, not strings: for an event it accepted, `id` itself).
   */
  sharedId(id: EventId): EventId | undefined {
    const slot = this.#get(id);
    if (typeof slot === 'number') return id;
    return slot instanceof Target ? slot.id : undefined;
  }

  /** The record of `id` (made, or made again from its confirmed seq or its event), to change it. */
  #info(id: EventId): Target {
    const slot = this.#get(id);
    if (slot instanceof Target) return slot;
    let info: Target;
    if (slot === undefined) info = new Target(id);
    else if (typeof slot === 'number') {
      const batch = this.#accepted.stating(id, slot)!;
      info = new Target(id);
      info.held = id;
      info.verdict = batch;
      info.outcome = 'accepted';
      info.seq = slot;
    } else {
      info = new Target(typeof slot === 'string' ? slot : slot.id);
      info.held = slot instanceof AcceptedBatch ? slot.event() : slot;
    }
    this.#set(id, info);
    return info;
  }

  /** Keeps a present event's entry as its confirmed seq alone when nothing else names it (see above). */
  #compact(id: EventId): void {
    const info = this.#get(id);
    if (
      info instanceof Target &&
      typeof info.held === 'string' &&
      info.outcome === 'accepted' &&
      info.retries === undefined &&
      info.resolvers === undefined &&
      info.verdict?.type === SystemEventType.AcceptedVerdicts &&
      compactSeq(info.seq!) &&
      this.#accepted.stating(id, info.seq!) === info.verdict
    )
      this.#set(id, info.seq!);
  }

  /** Records an event; calls `touch` with every id whose status may have changed (possibly not yet present). */
  add(event: SignedEvent, touch: (id: EventId) => void): void {
    const slot = this.#get(event.id);
    if (slot !== undefined && (!(slot instanceof Target) || slot.held !== undefined)) return;
    const held = this.#byId && plainDomainEvent(event) ? event.id : event;
    this.#size++;
    if (slot === undefined) this.#set(event.id, held);
    else {
      // Named before it arrived; its acceptance may have, too.
      slot.held = held;
      this.#compact(event.id);
    }
    switch (event.type) {
      case SystemEventType.Verdict:
      case SystemEventType.AcceptedVerdicts: {
        if (this.#relay === null || event.device !== this.#relay) return;
        forEachVerdictIn(event, (v) => {
          this.#verdict(event, v.target, v.outcome, v.outcome === 'accepted' ? v.seq : 0, touch);
        });
        if (event.type === SystemEventType.AcceptedVerdicts) {
          // Known only now, after its verdicts were recorded: a record made again meanwhile
          // found the verdict it rested on among the batches before this one.
          const batch = this.#accepted.add(event);
          // Nothing names it (the common case): its slot is its batch, which holds no id string.
          if (batch !== undefined && this.#get(event.id) === event) this.#set(event.id, batch);
          forEachVerdictIn(event, (v) => this.#compact(v.target));
        }
        return;
      }
      case SystemEventType.RetryRequested: {
        touch(event.id);
        const target = readTarget(event.data);
        if (target === undefined) return;
        (this.#info(target).retries ??= new Set()).add(event.id);
        touch(target);
        return;
      }
      case SystemEventType.DeadletterDiscarded: {
        touch(event.id);
        const target = readTarget(event.data);
        if (target === undefined) return;
        (this.#info(target).resolvers ??= new Set()).add(event.id);
        touch(target);
        return;
      }
      default: {
        // A verdict for this event may have arrived before it.
        touch(event.id);
        if (typeof event.supersedes === 'string') {
          (this.#info(event.supersedes).resolvers ??= new Set()).add(event.id);
          touch(event.supersedes);
        }
      }
    }
  }

  /** Records a relay verdict stated by `event` (a `Verdict` or an `AcceptedVerdicts`). */
  #verdict(
    event: SignedEvent,
    id: EventId,
    outcome: 'accepted' | 'deadletter',
    seq: number,
    touch: (id: EventId) => void,
  ): void {
    const info = this.#info(id);
    if (info.verdict !== undefined && event.seq <= info.verdict.seq) return;
    info.verdict = event;
    info.outcome = outcome;
    info.seq = seq;
    touch(id);
    // The target may itself be a retry or discard (always resident), whose standing changes its own target.
    const target = this.#resident(id);
    const upstream = target === undefined ? undefined : this.#resolutionTarget(target);
    if (upstream !== undefined) touch(upstream);
  }

  #resolutionTarget(event: SignedEvent): EventId | undefined {
    if (event.type === SystemEventType.RetryRequested || event.type === SystemEventType.DeadletterDiscarded) {
      return readTarget(event.data);
    }
    return undefined;
  }

  /** True when the relay has rejected this (retry or discard) event itself. */
  #selfRejected(id: EventId): boolean {
    const target = this.#get(id);
    return target instanceof Target && target.outcome === 'deadletter';
  }

  /** The accepted verdict's confirmed sequence number, if the event's latest verdict accepts it. */
  acceptedSeq(id: EventId): number | undefined {
    const info = this.#get(id);
    if (typeof info === 'number') return info;
    return info instanceof Target && info.outcome === 'accepted' ? info.seq : undefined;
  }

  /** The status of a present, non-verdict event; undefined for verdicts and unknown ids. */
  status(id: EventId): EventStatusInfo | undefined {
    const slot = this.#get(id);
    if (typeof slot === 'number') return acceptedBy(this.#accepted.stating(id, slot)!);
    // A batch is a relay statement: no status.
    if (slot instanceof AcceptedBatch) return undefined;
    const event = slot instanceof Target ? slot.held : slot;
    if (event === undefined) return undefined;
    // Relay statements (verdicts, rosters) are not submissions: they have no status. (An event
    // held by id is a plain domain event.)
    if (typeof event !== 'string') {
      if (event.type === SystemEventType.Verdict || event.type === SystemEventType.AcceptedVerdicts)
        return undefined;
      if (
        (event.type === SystemEventType.RosterUpdated || event.type === SystemEventType.SegmentSealed) &&
        event.device === this.#relay
      )
        return undefined;
    }
    const info = slot instanceof Target ? slot : undefined;
    const verdict = info?.verdict;
    if (verdict === undefined || info?.outcome === undefined) return PENDING;
    if (info.outcome === 'accepted') return acceptedBy(verdict);
    // Deadletter: resolved by a discard (unless the relay refused the discard) or any amend.
    let resolvedBy: SignedEvent | undefined;
    for (const rid of info?.resolvers ?? []) {
      const r = this.#resident(rid); // discards and amends are resident
      if (r === undefined) continue;
      if (r.type === SystemEventType.DeadletterDiscarded && this.#selfRejected(rid)) continue;
      if (
        resolvedBy === undefined ||
        cmp(r.hlc, resolvedBy.hlc) < 0 ||
        (r.hlc === resolvedBy.hlc && r.id < resolvedBy.id)
      ) {
        resolvedBy = r;
      }
    }
    if (resolvedBy !== undefined) return { status: 'resolved', verdict, resolvedBy: resolvedBy.id };
    for (const rid of info?.retries ?? []) {
      const r = this.#resident(rid);
      if (r === undefined || this.#selfRejected(rid)) continue;
      // A retry the relay has not answered yet: its HLC is after the latest verdict's.
      if (cmp(r.hlc, verdict.hlc) > 0) return { status: 'pending', verdict };
    }
    return { status: 'deadletter', verdict };
  }
}

/** Orders events for the tentative fold: HLC, then device, then device sequence. */
export function compareTentative(a: SignedEvent, b: SignedEvent): number {
  return cmp(a.hlc, b.hlc) || cmp(a.device, b.device) || a.seq - b.seq || cmp(a.id, b.id);
}

/**
 * Puts events in tentative order: each one after the events of the set it depends on (`deps`),
 * and otherwise by {@link compareTentative}.
 *
 * @remarks HLC order alone breaks causality when a device's clock is far ahead: a peer that
 * depends on its event cannot adopt a stamp beyond the drift bound, so its own later event gets
 * an earlier stamp, and would be folded before what it depends on (a vaccination before the
 * registration of its patient). The result depends only on the set (signed fields), so every
 * device folds the same order (P2); a dependency cycle, which only a hostile device can make, is
 * broken deterministically by skipping the edge that closes it.
 */
export function tentativeOrder(events: readonly SignedEvent[]): SignedEvent[] {
  const sorted = [...events].sort(compareTentative);
  const byId = new Map<EventId, SignedEvent>();
  for (const e of sorted) byId.set(e.id, e);
  const out: SignedEvent[] = [];
  const state = new Map<EventId, 'visiting' | 'done'>();
  // Iterative depth-first walk: deps first (in their own tentative order), then the event.
  for (const root of sorted) {
    if (state.has(root.id)) continue;
    const stack: { event: SignedEvent; deps: SignedEvent[]; next: number }[] = [];
    const enter = (event: SignedEvent): void => {
      state.set(event.id, 'visiting');
      const deps = event.deps.flatMap((id) => {
        const dep = byId.get(id);
        return dep === undefined || state.has(dep.id) ? [] : [dep];
      });
      stack.push({ event, deps: deps.sort(compareTentative), next: 0 });
    };
    enter(root);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const dep = top.deps[top.next++];
      if (dep !== undefined) {
        if (!state.has(dep.id)) enter(dep); // 'visiting' would close a cycle: skip that edge
        continue;
      }
      stack.pop();
      state.set(top.event.id, 'done');
      out.push(top.event);
    }
  }
  return out;
}

/**
 * Classifies every non-verdict event of a log.
 *
 * @remarks Verdicts from devices other than `state.relay` are ignored; the latest relay
 * verdict (highest envelope `seq`) wins. An `accepted` latest verdict is never reopened by
 * retries or resolutions. A `deadletter` answered by a `DeadletterDiscarded` (that the relay has
 * not itself rejected) or by an amend (an event whose `supersedes` is its id) is `resolved`;
 * otherwise a `RetryRequested` (not rejected) whose HLC is after the latest verdict's makes it
 * `pending` again. System events (retries, discards) are classified by their own verdicts the
 * same way. Independent of the map's insertion order.
 */
export function classify(state: LogState): Map<EventId, EventStatusInfo> {
  return ProjectionFolder.from(state).classify();
}

/** The confirmed projection: accepted domain events folded in the relay's `seq` order. */
export function confirmed(state: LogState): Projection {
  return ProjectionFolder.from(state).confirmed();
}

/**
 * The tentative projection: the confirmed one plus pending domain events (no verdict yet, or a
 * retry requested) in (HLC, device, seq) order; deadlettered and resolved events are left out.
 */
export function tentative(state: LogState): Projection {
  return ProjectionFolder.from(state).tentative();
}

/**
 * Keeps the confirmed projection of a growing log up to date incrementally, and derives
 * tentative views from it.
 *
 * @remarks Feed every event of the facility to {@link ProjectionFolder.add} in any order (duplicates
 * are ignored). Work is lazy: on the next query, every event whose status may have changed is
 * handed to the folder's {@link ConfirmedFold} (accepted at its `seq`, or not accepted), which
 * folds newly accepted events in `seq` order on top of what it holds, and refolds from scratch
 * when one arrives below the last folded `seq` (a verdict that overtook an earlier one) or an
 * accepted event changes status (still O(n), and rare in practice since the relay issues `seq`
 * in order). {@link ProjectionFolder.tentative} clones the confirmed projection and applies the
 * pending events. Results equal {@link confirmed} / {@link tentative} of the same events.
 *
 * Memory: without a source the folder holds every event added. With an {@link EventSource} it
 * holds plain domain events by id only and reads them from the source when it folds them (the
 * confirmed fold, a refold, the pending events of {@link ProjectionFolder.tentative}).
 */
export class ProjectionFolder {
  readonly #tracker: Tracker;
  readonly #source: EventSource | undefined;
  // A device folds each event once: no cache of parsed data to keep for a second fold.
  readonly #fold: ConfirmedFold;
  /** Ids whose status may have changed since the last sync. */
  readonly #touched = new Set<EventId>();
  /** Present domain events that are not accepted (candidates for the tentative fold). */
  readonly #notAccepted = new Set<EventId>();
  /**
   * With a source: the plain domain events added since the last sync, as given. The sync hands
   * them to the confirmed fold whole, so that a history added in one go (a log opening) is folded
   * without reading it back; cleared by every sync, so they are kept only until the next query,
   * or until {@link MAX_IN_HAND} of them wait (then a sync runs: the accepted ones wait in the
   * fold for the next query, the others are dropped and read back if a refold needs them).
   */
  readonly #inHand = new Map<EventId, SignedEvent>();
  readonly #maxInHand: number;

  /**
   * A folder for a facility whose relay is `relay` (null: no relay known, everything pending);
   * with `source`, plain domain events are held by id and read back from it (see above).
   */
  constructor(relay: DeviceId | null, source?: EventSource, options: ProjectionFolderOptions = {}) {
    const numbers = options.numbers ?? new EventNumbers();
    this.#tracker = new Tracker(relay, source !== undefined, numbers);
    this.#source = source;
    this.#maxInHand = options.maxInHand ?? MAX_IN_HAND;
    this.#fold = new ConfirmedFold(
      source === undefined ? { once: true } : { once: true, load: (id) => source.event(id), numbers },
    );
  }

  /** A folder loaded with every event of `state`. */
  static from(state: LogState): ProjectionFolder {
    const f = new ProjectionFolder(state.relay);
    for (const e of state.events.values()) f.add(e);
    return f;
  }

  /** Number of distinct events added. */
  get size(): number {
    return this.#tracker.size;
  }

  /** True when an event with this id was added. */
  has(id: EventId): boolean {
    return this.#tracker.has(id);
  }

  /**
   * The event added with this id (read from the source when held by id), or undefined.
   *
   * @remarks Throws what the source throws when it cannot read the event.
   */
  event(id: EventId): SignedEvent | undefined {
    const held = this.#tracker.held(id);
    return typeof held === 'string' ? this.#source!.event(held) : held;
  }

  /** The event added with this id when the folder keeps it in memory (never read from the source). */
  resident(id: EventId): SignedEvent | undefined {
    const held = this.#tracker.held(id);
    return typeof held === 'string' ? undefined : held;
  }

  /** The id string the folder holds for an added event (one string shared by all who name it). */
  idOf(id: EventId): EventId | undefined {
    return this.#tracker.idOf(id);
  }

  /** The ids of every event added, in no particular order (see `Tracker.ids`). */
  ids(): IterableIterator<EventId> {
    return this.#tracker.ids();
  }

  /**
   * Every event added that the folder keeps in memory (see {@link ProjectionFolder.resident}), in
   * no particular order; with `naming`, accepted-verdict batches only when they name it (see
   * `Tracker.residentEvents`).
   */
  residentEvents(naming?: EventId): IterableIterator<SignedEvent> {
    return this.#tracker.residentEvents(naming);
  }

  /** True when some verdict, retry, discard or amend added so far names `id`. */
  targeted(id: EventId): boolean {
    return this.#tracker.targeted(id);
  }

  /**
   * The string of `id` held where a statement added earlier names it, if any: a log can give the
   * event that same string instead of a second copy of it.
   */
  sharedId(id: EventId): EventId | undefined {
    return this.#tracker.sharedId(id);
  }

  /** Adds one event of any kind (domain, verdict, retry, discard, amend); duplicates are ignored. */
  add(event: SignedEvent): void {
    const inHand = this.#source !== undefined && !this.has(event.id) && plainDomainEvent(event);
    if (inHand) this.#inHand.set(event.id, event);
    this.#tracker.add(event, this.#touch);
    if (this.#inHand.size >= this.#maxInHand) this.#sync();
  }

  readonly #touch = (id: EventId): void => {
    this.#touched.add(id);
  };

  /** The status of one event (see {@link classify}); undefined for verdicts and unknown ids. */
  status(id: EventId): EventStatusInfo | undefined {
    return this.#tracker.status(id);
  }

  /** The status of every non-verdict event, like {@link classify}. */
  classify(): Map<EventId, EventStatusInfo> {
    const out = new Map<EventId, EventStatusInfo>();
    for (const id of [...this.#tracker.ids()].sort(cmp)) {
      const s = this.#tracker.status(id);
      if (s !== undefined) out.set(id, s);
    }
    return out;
  }

  /**
   * Hands every touched domain event's standing to the fold, and keeps the not-accepted set; then
   * the fold folds what continues its run (see `ConfirmedFold.foldContiguous`).
   *
   * @remarks With a source, at most {@link MAX_IN_HAND} accepted events wait in the fold whole;
   * past that they wait by id and are read back when folded. A log opening on a history whose
   * verdicts it read first (its store lists the relay's events before the device's) would
   * otherwise keep every accepted event whole until the first query: 45 MB of heap at 100k
   * events. Folding the contiguous run as it goes keeps them from waiting at all.
   */
  #sync(): void {
    if (this.#touched.size === 0) return;
    for (const id of this.#touched) {
      // An event held by id is a plain domain event: the fold reads it when it folds it, unless
      // it is still in hand.
      const held = this.#inHand.get(id) ?? this.#tracker.held(id);
      if (held === undefined || (typeof held !== 'string' && isSystemEventType(held.type))) continue;
      const seq = this.#tracker.acceptedSeq(id);
      if (seq === undefined) this.#notAccepted.add(id);
      else this.#notAccepted.delete(id);
      const byId =
        this.#source !== undefined && typeof held !== 'string' && this.#fold.waiting >= this.#maxInHand;
      this.#fold.set(byId ? held.id : held, seq);
    }
    this.#touched.clear();
    this.#inHand.clear();
    this.#fold.foldContiguous();
  }

  /**
   * The confirmed projection, kept up to date in place.
   *
   * @remarks The returned object is the folder's own: read it, or `clone()` it before applying
   * anything; it changes on the next query after more events are added.
   */
  confirmed(): Projection {
    this.#sync();
    return this.#fold.projection();
  }

  /** Pending domain events in tentative order (after what they depend on; else HLC, device, seq). */
  pending(): SignedEvent[] {
    this.#sync();
    const out: SignedEvent[] = [];
    for (const id of this.#notAccepted) {
      if (this.#tracker.status(id)?.status === 'pending') out.push(this.event(id)!);
    }
    return tentativeOrder(out);
  }

  /** A fresh tentative projection: a clone of the confirmed one plus the pending events. */
  tentative(): Projection {
    const pending = this.pending();
    const view = this.confirmed().clone();
    for (const e of pending) view.apply(e);
    return view;
  }
}
