import { readAcceptedVerdicts, SystemEventType, type EventId, type SignedEvent } from '@accord/protocol';

const MAX_INTERNED_STRINGS = 10_000;
/** The one `deps` list of every event that depends on nothing (frozen: events are immutable). */
const NO_DEPS: SignedEvent['deps'] = Object.freeze([]);
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What the interner asks of the events already held. */
export interface InternLookup {
  /** The id string held for a visible event (events are not resident: their id strings are). */
  visibleId(id: EventId): EventId | undefined;
  /** The id string the projection folder already holds for `id` (a verdict named it first). */
  sharedId(id: EventId): EventId | undefined;
}

/**
 * Shares one instance of each short string that repeats across events (device and facility ids,
 * types, subject kinds), of an event's id wherever a statement names it, of a subject id that is
 * also a data field, and of the empty `deps` list.
 *
 * @remarks A decoded event gets fresh copies of them all, and at 100k events the copies alone
 * cost tens of megabytes. At most 10,000 distinct strings are kept: a hostile stream of made-up
 * names cannot grow the table without bound.
 */
export class Interner {
  readonly #strings = new Map<string, string>();

  /** Interns `event` in place and returns it. */
  intern(event: SignedEvent, lookup: InternLookup): SignedEvent {
    // In place: every event reaching the log is a fresh object of its own (decoded from bytes, or
    // just signed), and a copy would briefly double the memory of a whole history at start-up.
    const e = event as Mutable<SignedEvent>;
    if (e.type === SystemEventType.AcceptedVerdicts && readAcceptedVerdicts(e.data) !== undefined) {
      const targets = (e.data as { targets: string[] }).targets;
      for (let i = 0; i < targets.length; i++)
        targets[i] = lookup.visibleId(targets[i] as EventId) ?? targets[i]!;
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
    e.id = lookup.sharedId(e.id) ?? e.id;
    e.facility = str(e.facility) as SignedEvent['facility'];
    e.device = str(e.device) as SignedEvent['device'];
    e.type = str(e.type);
    const subject = e.subject as Mutable<SignedEvent['subject']>;
    subject.kind = str(subject.kind);
    subject.id = subjectId;
    if (e.deps.length === 0) e.deps = NO_DEPS;
    return event;
  }
}
