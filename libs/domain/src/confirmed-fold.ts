import type { EventId, SignedEvent } from '@accord/protocol';
import type { EventNumbers } from './event-numbers.js';
import { Int32Column } from './event-numbers.js';
import { Projection } from './projection.js';
import { SeqRuns } from './seq-runs.js';
import { isSystemEventType } from './system-event.js';

/** What a {@link ConfirmedFold} tells its owner, and how it applies events. */
export interface ConfirmedFoldOptions {
  /**
   * Passed to `Projection.apply` as `once`: the fold does not keep the parsed data of its events
   * (for an owner that never parses them again, such as a device's log; default false).
   */
  readonly once?: boolean;
  /**
   * Called after each event folded on top of the projection, in `seq` order. Not called for the
   * events of a refold: {@link ConfirmedFoldOptions.onRefold} is, once, instead.
   */
  readonly onFold?: (event: SignedEvent, seq: number) => void;
  /** Called after the projection was refolded from scratch: it is a new object, anything may have changed. */
  readonly onRefold?: () => void;
  /**
   * Reads back a domain event given to {@link ConfirmedFold.set} by id. When given, the fold keeps
   * only the ids of the events it folded, and reads them again for a refold (for an owner whose
   * events live in a store, such as a device's log); otherwise it keeps the events. An event
   * given whole is folded as given, without a read.
   */
  readonly load?: (id: EventId) => SignedEvent;
  /**
   * With `load`: the fold keeps the number of each folded event in this table instead of its id
   * string (4 bytes an event in a typed array, where a string is 48 and its array slot 8), and its
   * projection keeps its applied set and its registration-only patients by number too.
   */
  readonly numbers?: EventNumbers;
}

/** The folded events in fold order: the events or ids themselves, or their numbers. */
interface Folded {
  readonly length: number;
  at(i: number): EventRef;
  push(ref: EventRef): void;
}

/** Folded events as an array of the refs given. */
function refArray(): Folded {
  const refs: EventRef[] = [];
  return {
    get length() {
      return refs.length;
    },
    at: (i) => refs[i]!,
    push: (ref) => void refs.push(ref),
  };
}

/** Folded events as their numbers (ids made again on demand). */
function numberedRefs(numbers: EventNumbers): Folded {
  const column = new Int32Column();
  let length = 0;
  return {
    get length() {
      return length;
    },
    at: (i) => numbers.id(column.get(i)),
    push: (ref) => column.set(length++, numbers.number(idOf(ref))),
  };
}

/** An event as the fold keeps it: the event itself, or its id when the owner can load it. */
type EventRef = SignedEvent | EventId;

interface Entry {
  readonly ref: EventRef;
  readonly seq: number;
}

/** A confirmed seq given to two waiting events (see {@link ConfirmedFold.foldContiguous}). */
const TWICE = Symbol('twice');
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const idOf = (ref: EventRef): EventId => (typeof ref === 'string' ? ref : ref.id);
const bySeq = (a: Entry, b: Entry): number => a.seq - b.seq || cmp(idOf(a.ref), idOf(b.ref));

/**
 * The confirmed projection: accepted domain events folded in the relay's `seq` order (ties by
 * event id), whatever order their acceptances arrive in.
 *
 * @remarks The one implementation of the confirmed fold, kept by a device's `ProjectionFolder`
 * and by the relay's `Adjudicator`. The owner reads the verdicts and calls
 * {@link ConfirmedFold.set} whenever an event's standing may have changed (accepted at some
 * `seq`, or no longer accepted); calls that change nothing cost O(log n) and do nothing, so
 * an owner may call it on every hint. Work is lazy: {@link ConfirmedFold.projection} folds the
 * newly accepted events on top of the projection in place when all of them are above the last
 * folded `seq` (the usual case: the relay issues `seq` in order), and otherwise refolds every
 * accepted event from scratch into a new projection (one pass, O(n)) — when an acceptance
 * arrives below what was folded, when a folded event's acceptance is withdrawn, or when its
 * `seq` changes. System events (verdicts, retries, discards, rosters, seals) never change the
 * projection, so they are ignored. Memory: one array slot per folded event (no map by id; the
 * projection itself records which events it holds) and its seq as part of a run of consecutive
 * seqs ({@link SeqRuns}: one run for an honest relay), and with a `load` option no event at all.
 */
export class ConfirmedFold {
  readonly #once: boolean;
  readonly #onFold: ((event: SignedEvent, seq: number) => void) | undefined;
  readonly #onRefold: (() => void) | undefined;
  readonly #load: ((id: EventId) => SignedEvent) | undefined;
  readonly #numbers: EventNumbers | undefined;
  #projection: Projection;
  /**
   * The folded events (ids with `load`), sorted by (seq, id); `#seqs.at(i)` is the seq `#events[i]`
   * was folded at (kept as runs of consecutive seqs: one run for an honest relay's history).
   */
  #events: Folded;
  #seqs = new SeqRuns();
  /** Accepted events not folded yet, by id, with their seq. */
  #pending = new Map<EventId, Entry>();
  /** The projection holds something it must not (withdrawn or moved): refold from scratch. */
  #stale = false;
  #refolds = 0;

  /** An empty fold. */
  constructor(opts: ConfirmedFoldOptions = {}) {
    this.#once = opts.once ?? false;
    this.#onFold = opts.onFold;
    this.#onRefold = opts.onRefold;
    this.#load = opts.load;
    this.#numbers = opts.load === undefined ? undefined : opts.numbers;
    this.#events = this.#emptyFolded();
    this.#projection = this.#emptyProjection();
  }

  /** With `load`, the projection reads its registration-only patients back too (0 bytes each). */
  #emptyProjection(): Projection {
    if (this.#load === undefined) return Projection.empty();
    return Projection.empty(
      this.#numbers === undefined ? { load: this.#load } : { load: this.#load, numbers: this.#numbers },
    );
  }

  /** An empty list of folded events. */
  #emptyFolded(): Folded {
    return this.#numbers === undefined ? refArray() : numberedRefs(this.#numbers);
  }

  /**
   * Records where `event` stands now: accepted with confirmed sequence number `seq`, or not
   * accepted (`seq` undefined: no verdict, a deadletter, or an acceptance withdrawn).
   *
   * @remarks Idempotent and order-independent: the projection depends only on the last `seq`
   * given for each event id. Takes effect on the next {@link ConfirmedFold.projection}. With a
   * `load` option a domain event may be given by id alone; it is read when it is folded.
   */
  set(event: SignedEvent | EventId, seq: number | undefined): void {
    if (typeof event === 'string') {
      if (this.#load === undefined)
        throw new TypeError('ConfirmedFold.set: an id alone needs the load option');
    } else if (isSystemEventType(event.type)) return;
    const id = idOf(event);
    if (this.#pending.has(id)) {
      if (seq === undefined) this.#pending.delete(id);
      else this.#pending.set(id, { ref: event, seq });
      return;
    }
    // Not pending: folded (the projection records every non-system event it was given; nothing
    // is folded while the projection is stale) or unknown.
    if (this.#events.length > 0 && this.#folded(id)) {
      if (seq !== undefined && this.#foldedAt(id, seq)) return;
      // Folded, but no longer accepted, or accepted at another seq: everything goes back to
      // pending and the next query refolds from scratch.
      this.#unfoldAll();
      this.#pending.delete(id);
    }
    if (seq !== undefined) this.#pending.set(id, { ref: event, seq });
  }

  /** What the fold keeps of a folded event: its id alone when it can load it again. */
  #kept(ref: EventRef): EventRef {
    return this.#load === undefined ? ref : idOf(ref);
  }

  /** The event behind `ref` (read back with `load` when only its id is kept). */
  #event(ref: EventRef): SignedEvent {
    return typeof ref === 'string' ? this.#load!(ref) : ref;
  }

  /**
   * The confirmed projection, brought up to date.
   *
   * @remarks The fold's own object: read it, or `clone()` it before applying anything. It is
   * updated in place while acceptances arrive in order, and replaced by a new object on a refold.
   * Safe to call from `onFold` / `onRefold` (it then returns the projection being built up).
   */
  projection(): Projection {
    if (this.#pending.size === 0 && !this.#stale) return this.#projection;
    const fresh = [...this.#pending.values()].sort(bySeq);
    this.#pending.clear();
    const last = this.#events.length - 1;
    if (this.#stale || (last >= 0 && fresh[0]!.seq <= this.#seqs.at(last))) {
      this.#refold(fresh);
      return this.#projection;
    }
    for (const entry of fresh) {
      const event = this.#event(entry.ref);
      this.#projection.apply(event, this.#once);
      this.#events.push(this.#kept(entry.ref));
      this.#seqs.push(entry.seq);
      this.#onFold?.(event, entry.seq);
    }
    return this.#projection;
  }

  /**
   * Folds now, in place, the waiting acceptances that continue the folded run with no gap (`seq`
   * = {@link ConfirmedFold.lastSeq} + 1, + 2, …), and keeps the others waiting.
   *
   * @remarks For an owner taking in a long history (a log opening): what it folds is dropped (kept
   * by id with `load`) instead of waiting whole for the next query. An honest relay numbers its
   * acceptances 1, 2, 3, … once each, so no acceptance still to come can sort below these: folding
   * them early never causes a refold (one that does, from a relay numbering twice, refolds as
   * {@link ConfirmedFold.projection} would). The projection is the same as if they had waited.
   */
  foldContiguous(): void {
    if (this.#stale || this.#pending.size === 0) return;
    // The run after lastSeq, by offset (one pass, no sort: called often, with many waiting).
    const last = this.lastSeq;
    const run = new Array<Entry | typeof TWICE | undefined>(this.#pending.size);
    for (const entry of this.#pending.values()) {
      const at = entry.seq - last - 1;
      // A seq given twice (a relay numbering twice) waits for the next query's ordered fold.
      if (at >= 0 && at < run.length) run[at] = run[at] === undefined ? entry : TWICE;
    }
    for (const entry of run) {
      if (entry === undefined || entry === TWICE) return;
      const event = this.#event(entry.ref);
      this.#pending.delete(idOf(entry.ref));
      this.#projection.apply(event, this.#once);
      this.#events.push(this.#kept(entry.ref));
      this.#seqs.push(entry.seq);
      this.#onFold?.(event, entry.seq);
    }
  }

  /** Acceptances given since the last fold, waiting for it (whole, or by id with `load`). */
  get waiting(): number {
    return this.#pending.size;
  }

  /** The highest `seq` folded so far (0 when none); acceptances not folded yet count after the next query. */
  get lastSeq(): number {
    return this.#seqs.last ?? 0;
  }

  /** Number of accepted (non-system) events the fold holds, folded or not yet. */
  get size(): number {
    return this.#events.length + this.#pending.size;
  }

  /** How many times the projection was refolded from scratch (for tests and metrics). */
  get refolds(): number {
    return this.#refolds;
  }

  /** True when the projection was given the event with this id (applied or skipped). */
  #folded(id: EventId): boolean {
    return this.#projection.hasEvent(id) || this.#projection.skipReason(id) !== undefined;
  }

  /** True when `id` is folded at `seq` (binary search over the folded seqs). */
  #foldedAt(id: EventId, seq: number): boolean {
    const seqs = this.#seqs;
    for (let i = seqs.lowerBound(seq); i < seqs.length && seqs.at(i) === seq; i++)
      if (idOf(this.#events.at(i)) === id) return true;
    return false;
  }

  /** Moves every folded event back to pending and marks the projection stale. */
  #unfoldAll(): void {
    for (let i = 0; i < this.#events.length; i++) {
      const ref = this.#events.at(i);
      this.#pending.set(idOf(ref), { ref, seq: this.#seqs.at(i) });
    }
    this.#events = this.#emptyFolded();
    this.#seqs = new SeqRuns();
    this.#stale = true;
  }

  /** Folds the folded events and `fresh` (sorted) together from scratch, into a new projection. */
  #refold(fresh: readonly Entry[]): void {
    const events = this.#emptyFolded();
    const seqs = new SeqRuns();
    const projection = this.#emptyProjection();
    const take = (ref: EventRef, seq: number): void => {
      projection.apply(this.#event(ref), this.#once);
      events.push(this.#kept(ref));
      seqs.push(seq);
    };
    // A merge of two sorted runs: the folded events and the fresh ones.
    let i = 0;
    let j = 0;
    const old = this.#events;
    const oldSeqs = this.#seqs;
    while (i < old.length || j < fresh.length) {
      const f = fresh[j];
      if (
        i < old.length &&
        (f === undefined ||
          oldSeqs.at(i) < f.seq ||
          (oldSeqs.at(i) === f.seq && idOf(old.at(i)) < idOf(f.ref)))
      ) {
        take(old.at(i), oldSeqs.at(i));
        i++;
      } else {
        take(f!.ref, f!.seq);
        j++;
      }
    }
    this.#projection = projection;
    this.#events = events;
    this.#seqs = seqs;
    this.#stale = false;
    this.#refolds++;
    this.#onRefold?.();
  }
}
