import { isHlc, ok, parseHlc } from '@accord/protocol';
import type { EventId, Hlc, JsonValue, Result, SignedEvent, Subject } from '@accord/protocol';
import type {
  AppointmentCancelledData,
  AppointmentScheduledData,
  CheckedEvent,
  EncounterCancelledData,
  EncounterTransitionData,
  PatientCheckedInData,
  PatientDemographicsUpdatedData,
  PatientField,
  PatientRegisteredData,
  PatientsMergedData,
  StockAdjustedData,
  StockConsumedData,
  StockReceivedData,
  VaccinationAdministeredData,
} from './catalogue.js';
import {
  DomainEventType,
  PATIENT_FIELDS,
  SubjectKind,
  checkEventData,
  quickCheckEventData,
} from './catalogue.js';
import { Cow, IdSet } from './cow.js';
import type { EventNumbers } from './event-numbers.js';
import { NumberedIdSet } from './event-numbers.js';
import { NationalIdIndex } from './national-ids.js';
import { isTimeZone, isIsoDate, zonedDate } from './dates.js';
import type { PreparedDraft } from './draft.js';
import { preparedDrafts } from './prepared.js';

/** A patient's sex as recorded. */
export type Sex = 'female' | 'male' | 'other' | 'unknown';

/** One recorded vaccination as shown in a patient's history. */
export interface ImmunizationView {
  readonly eventId: EventId;
  /** The patient id the dose was recorded against (differs from the view's id after a merge). */
  readonly recordedFor: string;
  readonly antigen: string;
  readonly dose: number;
  readonly lot: string;
  readonly date: string;
  readonly performer?: string;
}

/** A patient as shown to users: current demographics, merged duplicates and immunization history. */
export interface PatientView {
  readonly id: string;
  readonly nationalId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly birthDate: string;
  readonly sex: Sex;
  readonly registeredBy: EventId;
  /** Ids of the duplicates merged into this patient (directly or through a chain), sorted. */
  readonly mergedFrom: readonly string[];
  /** Sorted by date, antigen, dose, event id. */
  readonly immunizations: readonly ImmunizationView[];
}

/** A lot of vaccine and its balance. */
export interface LotView {
  readonly lot: string;
  readonly antigen: string;
  readonly expiry: string;
  readonly received: number;
  readonly adjusted: number;
  readonly consumed: number;
  readonly administered: number;
  readonly balance: number;
  readonly receivedBy: EventId;
}

/** Encounter states: `waiting` → `in-progress` → `completed`; `cancelled` from either open state. */
export type EncounterState = 'waiting' | 'in-progress' | 'completed' | 'cancelled';

/** One encounter in the queue. */
export interface EncounterView {
  readonly encounterId: string;
  /** The (merge-resolved) patient. */
  readonly patientId: string;
  readonly state: EncounterState;
  /** Date of the check-in event's HLC: in the facility's time zone when the view was given one, else UTC. */
  readonly day: string;
  readonly checkedInAt: Hlc;
  readonly checkedInBy: EventId;
  readonly reason?: string;
}

/**
 * The encounter queue for a day.
 *
 * @remarks Open encounters (waiting, in progress) are listed whatever their day, so a patient
 * never silently drops off the queue at midnight; `done` and `cancelled` hold only encounters
 * checked in on `today`, a date in the facility's time zone (UTC when none is set). Each list is
 * sorted by check-in HLC, then encounter id.
 */
export interface QueueView {
  readonly today: string;
  readonly waiting: readonly EncounterView[];
  readonly inProgress: readonly EncounterView[];
  readonly done: readonly EncounterView[];
  readonly cancelled: readonly EncounterView[];
}

/** Appointment statuses as shown: `fulfilled` once the patient has the appointment's antigen dose. */
export type AppointmentStatus = 'scheduled' | 'cancelled' | 'fulfilled';

/** One appointment. */
export interface AppointmentView {
  readonly appointmentId: string;
  /** The (merge-resolved) patient. */
  readonly patientId: string;
  readonly antigen: string;
  readonly dose: number;
  readonly date: string;
  readonly status: AppointmentStatus;
  readonly scheduledBy: EventId;
  readonly reason?: string;
}

/** Appointments relative to `today`, each list sorted by date then appointment id. */
export interface AppointmentsView {
  readonly today: string;
  /** Scheduled, not yet fulfilled, dated today or later. */
  readonly upcoming: readonly AppointmentView[];
  /** Scheduled, not fulfilled, dated before today. */
  readonly missed: readonly AppointmentView[];
  readonly cancelled: readonly AppointmentView[];
  readonly fulfilled: readonly AppointmentView[];
}

/**
 * Which live patients {@link Projection.findPatients} returns: those named in `ids` (merged-away
 * ids name nobody), those matching `text`, or all; then `offset` and `limit` over that list.
 */
export interface PatientQuery {
  readonly ids?: readonly string[];
  /**
   * Every whitespace-separated term must occur, case-insensitively, in the patient's given name,
   * family name, national id or id ("amina kam" finds Amina Kamau).
   */
  readonly text?: string;
  readonly offset?: number;
  readonly limit?: number;
}

/** One page of {@link Projection.findPatients}: `total` patients matched, `patients` the page. */
export interface PatientPage {
  readonly total: number;
  readonly patients: readonly PatientView[];
}

/** Stock per lot (sorted by lot) and total balance per antigen. */
export interface StockView {
  readonly lots: readonly LotView[];
  readonly byAntigen: Readonly<Record<string, number>>;
}

// ---------------------------------------------------------------------------------------------
// Internal records. Every record is immutable: an update replaces it in its map. This is what
// makes clone() a cheap structural copy of the maps (records are shared between clones).

/** A patient record (its id is its key in the projection's map, not a field: 8 bytes less each). */
interface PatientRec {
  readonly nationalId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly birthDate: string;
  readonly sex: Sex;
  /**
   * Its registration's id while that event is its whole history (every field as registered, not
   * merged: the bulk of patients), else {@link PatientHistory}. One field instead of two (who
   * registered it, and the field versions; a merge added two more) is 8 bytes less per patient.
   */
  readonly history: EventId | PatientHistory;
}

/**
 * A patient as the projection holds it: its record, or, in a projection that reads events back
 * ({@link ProjectionOptions.load}), its registration's id alone while that event is its whole
 * history (the bulk of a long history): the record is read back from the registration when a
 * field is asked for. 0 bytes a patient instead of the record (72) and its national id (32): the
 * id string is the one the log and the folder already hold.
 */
type PatientSlot = PatientRec | EventId;

/**
 * A patient as stored: with {@link ProjectionOptions.numbers}, a registration-only patient is its
 * registration's number (a small integer in the map's slot) instead of the id string.
 */
type StoredPatientSlot = PatientSlot | number;

/** What the projection reads of its patients map: the map itself, or a view of it that names numbered registrations by id. */
interface PatientSlots {
  readonly size: number;
  get(id: string): PatientSlot | undefined;
  has(id: string): boolean;
  keys(): Iterable<string>;
  values(): Iterable<PatientSlot>;
  [Symbol.iterator](): Iterator<[string, PatientSlot]>;
}

/** A projection's patients map (live: its `Cow` may copy it), read with each numbered registration named by its id (made again). */
class PatientSlotsView implements PatientSlots {
  readonly #patients: Cow<string, StoredPatientSlot>;
  readonly #numbers: EventNumbers | undefined;

  constructor(patients: Cow<string, StoredPatientSlot>, numbers: EventNumbers | undefined) {
    this.#patients = patients;
    this.#numbers = numbers;
  }

  #slot(stored: StoredPatientSlot): PatientSlot {
    return typeof stored === 'number' ? this.#numbers!.id(stored) : stored;
  }

  get size(): number {
    return this.#patients.r.size;
  }

  get(id: string): PatientSlot | undefined {
    const stored = this.#patients.r.get(id);
    return stored === undefined ? undefined : this.#slot(stored);
  }

  has(id: string): boolean {
    return this.#patients.r.has(id);
  }

  keys(): Iterable<string> {
    return this.#patients.r.keys();
  }

  *values(): Generator<PatientSlot> {
    for (const stored of this.#patients.r.values()) yield this.#slot(stored);
  }

  *[Symbol.iterator](): Generator<[string, PatientSlot]> {
    for (const [id, stored] of this.#patients.r) yield [id, this.#slot(stored)];
  }
}

/** What a patient record remembers once it was updated or merged away. */
interface PatientHistory {
  readonly registeredBy: EventId;
  /**
   * The event that last wrote each field: one id while every field still comes from one event
   * (a registration), a map once updates differ (one shared string instead of a map per patient).
   */
  readonly versions: EventId | Readonly<Record<PatientField, EventId>>;
  readonly mergedInto?: string;
  readonly mergedBy?: EventId;
}

type ImmunizationRec = ImmunizationView;
type LotRec = LotView;

interface EncounterRec {
  readonly encounterId: string;
  readonly patientId: string;
  readonly state: EncounterState;
  readonly day: string;
  readonly checkedInAt: Hlc;
  readonly checkedInBy: EventId;
  readonly reason?: string;
}

interface AppointmentRec {
  readonly appointmentId: string;
  readonly patientId: string;
  readonly antigen: string;
  readonly dose: number;
  readonly date: string;
  readonly cancelled: boolean;
  readonly scheduledBy: EventId;
  readonly reason?: string;
}

/** A patient's history, made whole when the record keeps only its registration's id. */
function historyOf(slot: PatientSlot): PatientHistory {
  const h = typeof slot === 'string' ? slot : slot.history;
  return typeof h === 'string' ? { registeredBy: h, versions: h } : h;
}

/** The event that registered a patient. */
function registeredBy(slot: PatientSlot): EventId {
  if (typeof slot === 'string') return slot;
  return typeof slot.history === 'string' ? slot.history : slot.history.registeredBy;
}

/**
 * The patient a record was merged into, if it was. Takes a slot as stored: a registration-only
 * patient (its registration's id, or number) was merged into nothing, and needs no id made again.
 */
function mergedInto(slot: StoredPatientSlot): string | undefined {
  if (typeof slot !== 'object') return undefined;
  return typeof slot.history === 'string' ? undefined : slot.history.mergedInto;
}

/** The event that last wrote `field` of a patient. */
function versionOf(rec: PatientSlot, field: PatientField): EventId {
  const { versions } = historyOf(rec);
  return typeof versions === 'string' ? versions : versions[field];
}

/** A read-only snapshot of one patient record, for rules. */
export interface PatientRecord {
  readonly id: string;
  readonly nationalId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly birthDate: string;
  readonly sex: Sex;
  readonly registeredBy: EventId;
  readonly mergedInto?: string;
  readonly mergedBy?: EventId;
}
/** A read-only snapshot of one encounter record, for rules. */
export type EncounterRecord = EncounterRec;
/** A read-only snapshot of one appointment record, for rules. */
export type AppointmentRecord = AppointmentRec;

// Parsing is the costly part of applying an event; the same SignedEvent objects are folded again
// for every tentative view, so the outcome is cached per object (events are immutable). A valid
// event caches only a mark: its checked form is the event's own type, data and subject (the
// catalogue's schemas validate without transforming, so zod's copy would be equal), which keeps
// no second copy of every event's data alive.
const VALID = true;
const parsedCache = new WeakMap<object, typeof VALID | string>();

function checkedForm(event: SignedEvent): CheckedEvent {
  return { type: event.type, data: event.data, subject: event.subject } as CheckedEvent;
}

function parseEvent(event: SignedEvent, remember: boolean): CheckedEvent | string {
  const hit = parsedCache.get(event);
  if (hit === VALID) return checkedForm(event);
  if (hit !== undefined) return hit;
  // Most events are certainly valid without zod (a plain test, no copy of the data); zod for the
  // rest, and to say why an event is not.
  const quick = quickCheckEventData(event.type, event.schema, event.data);
  const r = quick !== undefined ? ok(quick) : checkEventData(event.type, event.schema, event.data);
  let out: CheckedEvent | string;
  if (!r.ok) {
    const reason = r.error.details['reason'];
    out = typeof reason === 'string' ? reason : 'invalid-data';
  } else if (
    typeof event.subject !== 'object' ||
    event.subject === null ||
    event.subject.kind !== r.value.subject.kind ||
    event.subject.id !== r.value.subject.id
  ) {
    out = 'subject-mismatch';
  } else {
    if (remember) parsedCache.set(event, VALID);
    return checkedForm(event);
  }
  if (remember) parsedCache.set(event, out);
  return out;
}

/**
 * Records that `event` was built from `prepared` (type, schema, subject and the data object itself
 * unchanged), so that folding and judging it do not check its data again: `prepareDraft` did. A
 * device's own append would otherwise run the same schema check three times (draft, local rules,
 * projection). Does nothing unless `prepared` came from `prepareDraft` and the event carries its parts.
 */
export function markPrepared(event: SignedEvent, prepared: PreparedDraft): void {
  if (!preparedDrafts.has(prepared)) return;
  if (event.type !== prepared.type || event.schema !== prepared.schema || event.data !== prepared.data)
    return;
  const subject: unknown = event.subject;
  if (typeof subject !== 'object' || subject === null) return;
  const { kind, id } = subject as Subject;
  if (kind !== prepared.subject.kind || id !== prepared.subject.id) return;
  parsedCache.set(event, VALID);
}

/**
 * {@link checkEventData} of an event's type, schema and data, without checking again an event
 * already found valid with its subject (by a fold, or {@link markPrepared}).
 */
export function checkEvent(event: SignedEvent): Result<CheckedEvent> {
  if (parsedCache.get(event) === VALID) return ok(checkedForm(event));
  const schema: unknown = event.schema;
  return checkEventData(event.type, typeof schema === 'number' ? schema : Number.NaN, event.data);
}

const SYSTEM_TYPES: ReadonlySet<string> = new Set([
  'Verdict',
  'AcceptedVerdicts',
  'SegmentSealed',
  'RetryRequested',
  'DeadletterDiscarded',
]);

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Normalised natural key of a national id: case, spaces and dashes do not distinguish two ids. */
export function nationalIdKey(nationalId: string): string {
  return nationalId.replace(/[\s-]+/g, '').toUpperCase();
}

/** The UTC date of an HLC timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ/cccccc`), or undefined if malformed. */
export function hlcDate(hlc: string): string | undefined {
  const d = typeof hlc === 'string' ? hlc.slice(0, 10) : '';
  return isIsoDate(d) ? d : undefined;
}

function sortObject(entries: Iterable<[string, number]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of [...entries].sort((a, b) => cmp(a[0], b[0]))) out[k] = v;
  return out;
}

function stripUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/**
 * The projected state of a facility: patients (with merge redirects), immunizations, stock,
 * encounters and appointments, folded from domain events.
 *
 * @remarks Mutable and fast: Maps of immutable records, so {@link Projection.clone} copies only
 * the maps. {@link Projection.apply} is lenient and total (never throws): an event whose data is
 * invalid, whose references are missing or that makes an impossible transition is recorded as
 * skipped; events about a merged-away patient apply to the survivor. Business rules are NOT
 * enforced here (that is `@accord/rules`): a tentative view shows what devices recorded. Applying
 * an event id twice is a no-op. Views return JSON-safe data sorted by plain code-unit order, so
 * two replicas that folded the same events in the same order serialise byte-identically.
 */
/** How a projection holds what it folded. */
export interface ProjectionOptions {
  /**
   * Reads back an event this projection applied, by id (an owner whose events live in a store: a
   * device's log). When given, a patient whose only event is its registration is held as that
   * event's id, and its record is read back when a field is asked for; throws (with a code) what
   * the store throws when it cannot read it. Every other record stays resident.
   */
  readonly load?: (id: EventId) => SignedEvent;
  /**
   * With `load`: the projection keeps the events it applied as one bit per number of this table
   * (see {@link EventNumbers}) instead of a set of id strings, and a registration-only patient as
   * its registration's number. The owner shares the table with its other indexes.
   */
  readonly numbers?: EventNumbers;
}

/** Errors thrown by a projection's {@link ProjectionOptions.load}: `apply`'s catch-all lets them through. */
const loadFailures = new WeakSet<object>();

export class Projection {
  #patients: Cow<string, StoredPatientSlot>;
  /** The patients map as read (numbered registrations named by id). */
  readonly #patientSlots: PatientSlots;
  readonly #load: ((id: EventId) => SignedEvent) | undefined;
  readonly #numbers: EventNumbers | undefined;
  #nationalIds: NationalIdIndex;
  /** Immunizations keyed by the merge-resolved patient id (moved to the survivor on merge). */
  #immunizations: Cow<string, readonly ImmunizationRec[]>;
  #lots: Cow<string, LotRec>;
  #encounters: Cow<string, EncounterRec>;
  /** Open (waiting / in-progress) encounter ids keyed by merge-resolved patient id. */
  #open: Cow<string, readonly string[]>;
  #appointments: Cow<string, AppointmentRec>;
  #applied: IdSet<EventId> | NumberedIdSet;
  #skipped: Cow<EventId, string>;

  private constructor(from?: Projection, opts: ProjectionOptions = {}) {
    this.#load = from === undefined ? opts.load : from.#load;
    this.#numbers = from === undefined ? (opts.load === undefined ? undefined : opts.numbers) : from.#numbers;
    if (from === undefined) {
      this.#patients = new Cow();
      this.#nationalIds = new NationalIdIndex();
      this.#immunizations = new Cow();
      this.#lots = new Cow();
      this.#encounters = new Cow();
      this.#open = new Cow();
      this.#appointments = new Cow();
      this.#applied = this.#numbers === undefined ? new IdSet() : new NumberedIdSet(this.#numbers);
      this.#skipped = new Cow();
    } else {
      this.#patients = from.#patients.fork();
      this.#nationalIds = from.#nationalIds.fork();
      this.#immunizations = from.#immunizations.fork();
      this.#lots = from.#lots.fork();
      this.#encounters = from.#encounters.fork();
      this.#open = from.#open.fork();
      this.#appointments = from.#appointments.fork();
      this.#applied = from.#applied.fork();
      this.#skipped = from.#skipped.fork();
    }
    this.#patientSlots = new PatientSlotsView(this.#patients, this.#numbers);
  }

  /** A projection of no events (see {@link ProjectionOptions}; its clones share the options). */
  static empty(opts: ProjectionOptions = {}): Projection {
    return new Projection(undefined, opts);
  }

  /** An independent copy: applying events to either afterwards does not affect the other. */
  clone(): Projection {
    return new Projection(this);
  }

  /** Number of events applied (not counting skipped ones). */
  get appliedCount(): number {
    return this.#applied.size;
  }

  /** True when the event with this id was applied (not skipped). */
  hasEvent(id: EventId): boolean {
    return this.#applied.has(id);
  }

  /** Why an event was skipped, or undefined if it was not. */
  skipReason(id: EventId): string | undefined {
    return this.#skipped.r.get(id);
  }

  /**
   * Folds one event into the state.
   *
   * @remarks Never throws. System events (verdicts, retries, discards) are ignored; a domain
   * event that cannot apply is recorded as skipped with a short reason (`invalid-data`,
   * `unknown-type`, `unknown-version`, `subject-mismatch`, `missing-patient`, `exists`,
   * `invalid-transition`, …). An event id seen before (applied or skipped) is ignored.
   *
   * With a `load` option, throws what it throws (a patient record that could not be read back).
   *
   * With `once`, the outcome of checking the event's data is not remembered for the next fold
   * of the same event object: for events folded a single time (a log's confirmed state), where
   * the cache would hold an entry per event for nothing.
   */
  apply(event: SignedEvent, once = false): void {
    try {
      if (SYSTEM_TYPES.has(event.type)) return;
      if (this.#applied.has(event.id) || this.#skipped.r.has(event.id)) return;
      const parsed = parseEvent(event, !once);
      const outcome = typeof parsed === 'string' ? parsed : this.#applyChecked(event, parsed);
      if (outcome === undefined) this.#applied.add(event.id);
      else this.#skipped.w.set(event.id, outcome);
    } catch (cause) {
      // The owner's store failed: not the event's fault, and the owner must hear of it.
      if (typeof cause === 'object' && cause !== null && loadFailures.has(cause)) throw cause;
      // Only reachable with an object that is not an event at all; a projection must never take
      // a process down.
      const id: unknown =
        typeof event === 'object' && event !== null ? (event as { id?: unknown }).id : undefined;
      if (typeof id === 'string') this.#skipped.w.set(id as EventId, `unreadable: ${String(cause)}`);
    }
  }

  /** Applies a schema-valid event; returns a skip reason, or undefined when applied. */
  #applyChecked(event: SignedEvent, c: CheckedEvent): string | undefined {
    switch (c.type) {
      case DomainEventType.PatientRegistered:
        return this.#register(event, c.data);
      case DomainEventType.PatientDemographicsUpdated:
        return this.#update(event, c.data);
      case DomainEventType.PatientsMerged:
        return this.#merge(event, c.data);
      case DomainEventType.PatientCheckedIn:
        return this.#checkIn(event, c.data);
      case DomainEventType.EncounterStarted:
        return this.#transition(c.data, ['waiting'], 'in-progress');
      case DomainEventType.EncounterCompleted:
        return this.#transition(c.data, ['in-progress'], 'completed');
      case DomainEventType.EncounterCancelled:
        return this.#transition(c.data, ['waiting', 'in-progress'], 'cancelled');
      case DomainEventType.AppointmentScheduled:
        return this.#schedule(event, c.data);
      case DomainEventType.AppointmentCancelled:
        return this.#cancelAppointment(c.data);
      case DomainEventType.VaccinationAdministered:
        return this.#vaccinate(event, c.data);
      case DomainEventType.StockReceived:
        return this.#receive(event, c.data);
      case DomainEventType.StockAdjusted:
        return this.#adjust(c.data);
      case DomainEventType.StockConsumed:
        return this.#consume(c.data);
    }
  }

  #register(event: SignedEvent, d: PatientRegisteredData): string | undefined {
    if (this.#patientSlots.has(d.patientId)) return 'exists';
    this.#patients.w.set(
      d.patientId,
      this.#load !== undefined
        ? (this.#numbers?.number(event.id) ?? event.id)
        : {
            nationalId: d.nationalId,
            givenName: d.givenName,
            familyName: d.familyName,
            birthDate: d.birthDate,
            sex: d.sex,
            history: event.id,
          },
    );
    this.#nationalIds.claim(nationalIdKey(d.nationalId), d.patientId, this.#nationalIdKeyOf);
    return undefined;
  }

  #update(event: SignedEvent, d: PatientDemographicsUpdatedData): string | undefined {
    const target = this.#resolve(d.patientId);
    const rec = target === undefined ? undefined : this.#record(target);
    if (target === undefined || rec === undefined) return 'missing-patient';
    const next: Record<string, unknown> = { ...rec };
    const versions: Record<string, EventId> = {};
    for (const f of PATIENT_FIELDS) versions[f] = versionOf(rec, f);
    for (const [field, value] of Object.entries(d.changes)) {
      if (value === undefined) continue;
      next[field] = value;
      versions[field] = event.id;
    }
    next['history'] = { ...historyOf(rec), versions };
    const updated = next as unknown as PatientRec;
    if (updated.nationalId !== rec.nationalId) {
      // Released while the record still has the old id (the index checks owners against it).
      this.#nationalIds.release(nationalIdKey(rec.nationalId), target, this.#nationalIdKeyOf);
      this.#nationalIds.claim(nationalIdKey(updated.nationalId), target, this.#nationalIdKeyOf);
    }
    this.#patients.w.set(target, updated);
    return undefined;
  }

  #merge(event: SignedEvent, d: PatientsMergedData): string | undefined {
    const loser = this.#record(d.mergedId);
    if (loser === undefined) return 'missing-patient';
    if (mergedInto(loser) !== undefined) return 'already-merged';
    const survivor = this.#resolve(d.survivorId);
    if (survivor === undefined) return 'missing-patient';
    if (survivor === d.mergedId) return 'merge-cycle';
    this.#patients.w.set(d.mergedId, {
      ...loser,
      history: { ...historyOf(loser), mergedInto: survivor, mergedBy: event.id },
    });
    // Move what is keyed by the resolved id.
    const imms = this.#immunizations.r.get(d.mergedId);
    if (imms !== undefined) {
      this.#immunizations.w.set(survivor, [...(this.#immunizations.r.get(survivor) ?? []), ...imms]);
      this.#immunizations.w.delete(d.mergedId);
    }
    const open = this.#open.r.get(d.mergedId);
    if (open !== undefined) {
      this.#open.w.set(survivor, [...(this.#open.r.get(survivor) ?? []), ...open]);
      this.#open.w.delete(d.mergedId);
    }
    return undefined;
  }

  #checkIn(event: SignedEvent, d: PatientCheckedInData): string | undefined {
    if (this.#encounters.r.has(d.encounterId)) return 'exists';
    const patient = this.#resolve(d.patientId);
    if (patient === undefined) return 'missing-patient';
    this.#encounters.w.set(d.encounterId, {
      encounterId: d.encounterId,
      patientId: d.patientId,
      state: 'waiting',
      day: hlcDate(event.hlc) ?? '0000-01-01',
      checkedInAt: event.hlc,
      checkedInBy: event.id,
    });
    this.#open.w.set(patient, [...(this.#open.r.get(patient) ?? []), d.encounterId]);
    return undefined;
  }

  #transition(
    d: EncounterTransitionData | EncounterCancelledData,
    from: readonly EncounterState[],
    to: EncounterState,
  ): string | undefined {
    const rec = this.#encounters.r.get(d.encounterId);
    if (rec === undefined) return 'missing-encounter';
    if (!from.includes(rec.state)) return 'invalid-transition';
    const reason = 'reason' in d ? d.reason : undefined;
    this.#encounters.w.set(d.encounterId, { ...rec, state: to, ...(reason !== undefined ? { reason } : {}) });
    if (to === 'completed' || to === 'cancelled') {
      const patient = this.#resolve(rec.patientId) ?? rec.patientId;
      const open = this.#open.r.get(patient);
      if (open !== undefined) {
        const rest = open.filter((e) => e !== d.encounterId);
        if (rest.length === 0) this.#open.w.delete(patient);
        else this.#open.w.set(patient, rest);
      }
    }
    return undefined;
  }

  #schedule(event: SignedEvent, d: AppointmentScheduledData): string | undefined {
    if (this.#appointments.r.has(d.appointmentId)) return 'exists';
    if (this.#resolve(d.patientId) === undefined) return 'missing-patient';
    this.#appointments.w.set(d.appointmentId, {
      appointmentId: d.appointmentId,
      patientId: d.patientId,
      antigen: d.antigen,
      dose: d.dose,
      date: d.date,
      cancelled: false,
      scheduledBy: event.id,
    });
    return undefined;
  }

  #cancelAppointment(d: AppointmentCancelledData): string | undefined {
    const rec = this.#appointments.r.get(d.appointmentId);
    if (rec === undefined) return 'missing-appointment';
    if (rec.cancelled) return 'invalid-transition';
    this.#appointments.w.set(d.appointmentId, {
      ...rec,
      cancelled: true,
      ...(d.reason !== undefined ? { reason: d.reason } : {}),
    });
    return undefined;
  }

  #vaccinate(event: SignedEvent, d: VaccinationAdministeredData): string | undefined {
    const patient = this.#resolve(d.patientId);
    if (patient === undefined) return 'missing-patient';
    const rec: ImmunizationRec = {
      eventId: event.id,
      recordedFor: d.patientId,
      antigen: d.antigen,
      dose: d.dose,
      lot: d.lot,
      date: d.date,
      ...(d.performer !== undefined ? { performer: d.performer } : {}),
    };
    this.#immunizations.w.set(patient, [...(this.#immunizations.r.get(patient) ?? []), rec]);
    // A lot this view has never received has no balance to take from: the dose is recorded, stock
    // is not touched (the relay rejects such a vaccination with RULE_NEGATIVE_STOCK).
    const lot = this.#lots.r.get(d.lot);
    if (lot !== undefined) {
      this.#lots.w.set(d.lot, { ...lot, administered: lot.administered + 1, balance: lot.balance - 1 });
    }
    return undefined;
  }

  #receive(event: SignedEvent, d: StockReceivedData): string | undefined {
    const lot = this.#lots.r.get(d.lot);
    if (lot === undefined) {
      this.#lots.w.set(d.lot, {
        lot: d.lot,
        antigen: d.antigen,
        expiry: d.expiry,
        received: d.quantity,
        adjusted: 0,
        consumed: 0,
        administered: 0,
        balance: d.quantity,
        receivedBy: event.id,
      });
      return undefined;
    }
    if (lot.antigen !== d.antigen || lot.expiry !== d.expiry) return 'lot-mismatch';
    this.#lots.w.set(d.lot, {
      ...lot,
      received: lot.received + d.quantity,
      balance: lot.balance + d.quantity,
    });
    return undefined;
  }

  #adjust(d: StockAdjustedData): string | undefined {
    const lot = this.#lots.r.get(d.lot);
    if (lot === undefined) return 'missing-lot';
    this.#lots.w.set(d.lot, { ...lot, adjusted: lot.adjusted + d.delta, balance: lot.balance + d.delta });
    return undefined;
  }

  #consume(d: StockConsumedData): string | undefined {
    const lot = this.#lots.r.get(d.lot);
    if (lot === undefined) return 'missing-lot';
    this.#lots.w.set(d.lot, {
      ...lot,
      consumed: lot.consumed + d.quantity,
      balance: lot.balance - d.quantity,
    });
    return undefined;
  }

  /** A patient's current national id, normalised (what the national-id index checks owners against). */
  readonly #nationalIdKeyOf = (patientId: string): string | undefined => {
    const rec = this.#record(patientId);
    return rec === undefined ? undefined : nationalIdKey(rec.nationalId);
  };

  /**
   * A patient's record, read back from its registration when the projection holds its id alone;
   * undefined for an unknown patient.
   */
  #record(patientId: string): PatientRec | undefined {
    const slot = this.#patientSlots.get(patientId);
    return typeof slot === 'string' ? this.#registered(slot) : slot;
  }

  /** The record a registration made (its fields as registered), read back by the event's id. */
  #registered(id: EventId): PatientRec {
    let event: SignedEvent;
    try {
      event = this.#load!(id);
    } catch (cause) {
      if (typeof cause === 'object' && cause !== null) loadFailures.add(cause);
      throw cause;
    }
    // Applied once (so valid then) and immutable in the store: its data is the registration's.
    const d = event.data as unknown as PatientRegisteredData;
    return {
      nationalId: d.nationalId,
      givenName: d.givenName,
      familyName: d.familyName,
      birthDate: d.birthDate,
      sex: d.sex,
      history: id,
    };
  }

  /** Follows merge redirects to the surviving patient id; undefined for an unknown patient. */
  #resolve(id: string): string | undefined {
    let at: string | undefined = id;
    let rec = this.#patients.r.get(id);
    // Chains are short; the bound guards against a corrupt cycle.
    for (
      let hops = 0, next = rec === undefined ? undefined : mergedInto(rec);
      next !== undefined && hops < 1000;
      hops++
    ) {
      at = next;
      rec = this.#patients.r.get(next);
      // A stored slot may be the number 0 (a registration's): not `rec && …`.
      next = rec === undefined ? undefined : mergedInto(rec);
    }
    return rec === undefined ? undefined : at;
  }

  // -------------------------------------------------------------------------------------------
  // Lookups for rules and for the device (fill deps / basis).

  /**
   * The event that created a record: the registration (patient), first `StockReceived` (lot),
   * check-in (encounter) or `AppointmentScheduled` (appointment); undefined when unknown.
   *
   * @remarks Does not follow merges: a merged patient's creator is its own registration.
   */
  creatorOf(subject: Subject): EventId | undefined {
    switch (subject.kind) {
      case SubjectKind.Patient: {
        const rec = this.#patientSlots.get(subject.id);
        return rec === undefined ? undefined : registeredBy(rec);
      }
      case SubjectKind.Lot:
        return this.#lots.r.get(subject.id)?.receivedBy;
      case SubjectKind.Encounter:
        return this.#encounters.r.get(subject.id)?.checkedInBy;
      case SubjectKind.Appointment:
        return this.#appointments.r.get(subject.id)?.scheduledBy;
      default:
        return undefined;
    }
  }

  /**
   * Which event last set a field of a record (the value a device puts in `basis`), or null.
   *
   * @remarks Only patient demographics ({@link PATIENT_FIELDS}) are versioned; follows merges.
   * Null for unknown records and fields.
   */
  fieldVersion(subject: Subject, field: string): EventId | null {
    if (subject.kind !== SubjectKind.Patient) return null;
    const id = this.#resolve(subject.id);
    const rec = id === undefined ? undefined : this.#patientSlots.get(id);
    if (rec === undefined || !(PATIENT_FIELDS as readonly string[]).includes(field)) return null;
    return versionOf(rec, field as PatientField);
  }

  /** The patient id after following merges: `{id}` for a live patient, `{id: survivor, mergedInto}` when merged. */
  resolvePatient(id: string): { id: string; mergedInto?: string } | undefined {
    const rec = this.#patients.r.get(id);
    if (rec === undefined) return undefined;
    const into = mergedInto(rec);
    if (into === undefined) return { id };
    const survivor = this.#resolve(id) ?? into;
    return { id: survivor, mergedInto: survivor };
  }

  /** The raw patient record (not following merges), for rules. */
  patientRecord(id: string): PatientRecord | undefined {
    const rec = this.#record(id);
    if (rec === undefined) return undefined;
    const h = historyOf(rec);
    return {
      id,
      nationalId: rec.nationalId,
      givenName: rec.givenName,
      familyName: rec.familyName,
      birthDate: rec.birthDate,
      sex: rec.sex,
      registeredBy: h.registeredBy,
      ...(h.mergedInto !== undefined ? { mergedInto: h.mergedInto } : {}),
      ...(h.mergedBy !== undefined ? { mergedBy: h.mergedBy } : {}),
    };
  }

  /** The current value of a patient field (following merges), or undefined. */
  patientField(id: string, field: string): string | undefined {
    const resolved = this.#resolve(id);
    if (resolved === undefined || !(PATIENT_FIELDS as readonly string[]).includes(field)) return undefined;
    const rec = this.#record(resolved);
    if (rec === undefined) return undefined;
    return rec[field as PatientField];
  }

  /** The patient (merge-resolved id) holding this national id, compared by {@link nationalIdKey}. */
  patientByNationalId(nationalId: string): string | undefined {
    const raw = this.#nationalIds.owner(nationalIdKey(nationalId), this.#nationalIdKeyOf);
    return raw === undefined ? undefined : (this.#resolve(raw) ?? raw);
  }

  /** A patient's immunizations (following merges), in application order. */
  immunizationsOf(patientId: string): readonly ImmunizationView[] {
    const id = this.#resolve(patientId);
    return id === undefined ? [] : (this.#immunizations.r.get(id) ?? []).map(toImmunizationView);
  }

  /** A lot and its balance, or undefined when never received. */
  lot(lot: string): LotView | undefined {
    const rec = this.#lots.r.get(lot);
    return rec === undefined ? undefined : { ...rec };
  }

  /** An encounter record (raw patient id), or undefined. */
  encounter(encounterId: string): EncounterRecord | undefined {
    return this.#encounters.r.get(encounterId);
  }

  /** Open (waiting or in-progress) encounters of a patient, following merges, sorted by id. */
  openEncountersOf(patientId: string): readonly string[] {
    const id = this.#resolve(patientId);
    return id === undefined ? [] : [...(this.#open.r.get(id) ?? [])].sort(cmp);
  }

  /** An appointment record (raw patient id), or undefined. */
  appointment(appointmentId: string): AppointmentRecord | undefined {
    return this.#appointments.r.get(appointmentId);
  }

  // -------------------------------------------------------------------------------------------
  // Views.

  #mergedFromIndex(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [id, rec] of this.#patients.r) {
      const into = mergedInto(rec);
      if (into === undefined) continue;
      const survivor = this.#resolve(id) ?? into;
      const list = out.get(survivor);
      if (list === undefined) out.set(survivor, [id]);
      else list.push(id);
    }
    return out;
  }

  #patientView(id: string, slot: PatientSlot, mergedFrom: readonly string[]): PatientView {
    const rec = typeof slot === 'string' ? this.#registered(slot) : slot;
    const imms = (this.#immunizations.r.get(id) ?? []).map(toImmunizationView).sort(compareImmunizations);
    return {
      id,
      nationalId: rec.nationalId,
      givenName: rec.givenName,
      familyName: rec.familyName,
      birthDate: rec.birthDate,
      sex: rec.sex,
      registeredBy: registeredBy(rec),
      mergedFrom: [...mergedFrom].sort(cmp),
      immunizations: imms,
    };
  }

  /** Live (not merged-away) patients, sorted by id, each with its immunization history. */
  patients(): PatientView[] {
    const merged = this.#mergedFromIndex();
    return [...this.#patientSlots]
      .filter(([, p]) => mergedInto(p) === undefined)
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([id, p]) => this.#patientView(id, p, merged.get(id) ?? []));
  }

  /**
   * A page of live patients sorted by id, with how many matched: what a screen shows of a
   * facility with thousands of patients, without building a view of each one (`patients()` does).
   */
  findPatients(query: PatientQuery): PatientPage {
    const live = (id: string): boolean => {
      const rec = this.#patients.r.get(id);
      return rec !== undefined && mergedInto(rec) === undefined;
    };
    const ids =
      query.ids === undefined
        ? [...this.#patientSlots.keys()].filter(live)
        : [...new Set(query.ids)].filter(live);
    const terms = (query.text ?? '')
      .toLowerCase()
      .split(/\s+/)
      .filter((term) => term !== '');
    const matched = (
      terms.length === 0
        ? ids
        : ids.filter((id) => {
            // Held as its registration's id, a patient's names are read back: a search reads the
            // record of every live patient (a page by id reads only its own).
            const rec = this.#record(id)!;
            const words = `${rec.givenName} ${rec.familyName} ${rec.nationalId} ${id}`.toLowerCase();
            return terms.every((term) => words.includes(term));
          })
    ).sort(cmp);
    const offset = query.offset ?? 0;
    const page = matched.slice(offset, query.limit === undefined ? undefined : offset + query.limit);
    const merged = page.length === 0 ? new Map<string, string[]>() : this.#mergedFromIndex();
    return {
      total: matched.length,
      patients: page.map((id) => this.#patientView(id, this.#patientSlots.get(id)!, merged.get(id) ?? [])),
    };
  }

  /** One patient, following merge redirects (asking for a merged id returns the survivor). */
  patient(id: string): PatientView | undefined {
    const resolved = this.#resolve(id);
    const rec = resolved === undefined ? undefined : this.#patientSlots.get(resolved);
    if (resolved === undefined || rec === undefined) return undefined;
    const mergedFrom = [...this.#patients.r]
      .filter(([other, p]) => mergedInto(p) !== undefined && this.#resolve(other) === resolved)
      .map(([other]) => other);
    return this.#patientView(resolved, rec, mergedFrom);
  }

  /** Stock per lot (sorted by lot id) and the total balance per antigen (sorted keys). */
  stock(): StockView {
    const lots = [...this.#lots.r.values()].sort((a, b) => cmp(a.lot, b.lot)).map((l) => ({ ...l }));
    const byAntigen = new Map<string, number>();
    for (const l of lots) byAntigen.set(l.antigen, (byAntigen.get(l.antigen) ?? 0) + l.balance);
    return { lots, byAntigen: sortObject(byAntigen) };
  }

  #encounterView(rec: EncounterRec, day: string = rec.day): EncounterView {
    return {
      encounterId: rec.encounterId,
      patientId: this.#resolve(rec.patientId) ?? rec.patientId,
      state: rec.state,
      day,
      checkedInAt: rec.checkedInAt,
      checkedInBy: rec.checkedInBy,
      ...(rec.reason !== undefined ? { reason: rec.reason } : {}),
    };
  }

  /**
   * The encounter queue as seen on `today` (`YYYY-MM-DD`) in the facility's IANA `timeZone`
   * (default UTC); see {@link QueueView}.
   *
   * @remarks The fold keeps each check-in's UTC date; the zone applies here, at view time, so
   * the folded state stays the same on every device whatever zone it is configured with.
   */
  queue(today: string, timeZone?: string): QueueView {
    const zoned = timeZone !== undefined && timeZone !== 'UTC' && isTimeZone(timeZone);
    const dayOf = (e: EncounterRec): string =>
      zoned && isHlc(e.checkedInAt) ? zonedDate(parseHlc(e.checkedInAt).wallMs, timeZone) : e.day;
    const all = [...this.#encounters.r.values()]
      .sort((a, b) => cmp(a.checkedInAt, b.checkedInAt) || cmp(a.encounterId, b.encounterId))
      .map((rec) => ({ rec, day: dayOf(rec) }));
    const pick = (pred: (e: EncounterRec, day: string) => boolean): EncounterView[] =>
      all.filter(({ rec, day }) => pred(rec, day)).map(({ rec, day }) => this.#encounterView(rec, day));
    return {
      today,
      waiting: pick((e) => e.state === 'waiting'),
      inProgress: pick((e) => e.state === 'in-progress'),
      done: pick((e, day) => e.state === 'completed' && day === today),
      cancelled: pick((e, day) => e.state === 'cancelled' && day === today),
    };
  }

  #appointmentViews(): AppointmentView[] {
    return [...this.#appointments.r.values()]
      .sort((a, b) => cmp(a.date, b.date) || cmp(a.appointmentId, b.appointmentId))
      .map((a) => {
        const patientId = this.#resolve(a.patientId) ?? a.patientId;
        const done = (this.#immunizations.r.get(patientId) ?? []).some(
          (i) => i.antigen === a.antigen && i.dose === a.dose,
        );
        const status: AppointmentStatus = a.cancelled ? 'cancelled' : done ? 'fulfilled' : 'scheduled';
        return {
          appointmentId: a.appointmentId,
          patientId,
          antigen: a.antigen,
          dose: a.dose,
          date: a.date,
          status,
          scheduledBy: a.scheduledBy,
          ...(a.reason !== undefined ? { reason: a.reason } : {}),
        };
      });
  }

  /** Appointments relative to `today` (`YYYY-MM-DD`); see {@link AppointmentsView}. */
  appointments(today: string): AppointmentsView {
    const all = this.#appointmentViews();
    return {
      today,
      upcoming: all.filter((a) => a.status === 'scheduled' && a.date >= today),
      missed: all.filter((a) => a.status === 'scheduled' && a.date < today),
      cancelled: all.filter((a) => a.status === 'cancelled'),
      fulfilled: all.filter((a) => a.status === 'fulfilled'),
    };
  }

  /**
   * The facility counters two devices must agree on, keys sorted.
   *
   * @remarks Keys: `patients.registered|active|merged`, `vaccinations.total`,
   * `vaccinations.<antigen>`, `appointments.total|scheduled|fulfilled|cancelled`,
   * `encounters.waiting|inProgress|completed|cancelled`, `stock.lots`, `stock.doses`,
   * `stock.<antigen>` (balance, expired lots included).
   */
  counters(): Record<string, number> {
    const c = new Map<string, number>();
    const add = (k: string, n = 1): void => {
      c.set(k, (c.get(k) ?? 0) + n);
    };
    for (const k of ['patients.registered', 'patients.active', 'patients.merged', 'vaccinations.total'])
      c.set(k, 0);
    for (const k of [
      'appointments.total',
      'appointments.scheduled',
      'appointments.fulfilled',
      'appointments.cancelled',
    ])
      c.set(k, 0);
    for (const k of [
      'encounters.waiting',
      'encounters.inProgress',
      'encounters.completed',
      'encounters.cancelled',
    ])
      c.set(k, 0);
    c.set('stock.lots', 0);
    c.set('stock.doses', 0);
    for (const p of this.#patients.r.values()) {
      add('patients.registered');
      add(mergedInto(p) === undefined ? 'patients.active' : 'patients.merged');
    }
    for (const list of this.#immunizations.r.values()) {
      for (const i of list) {
        add('vaccinations.total');
        add(`vaccinations.${i.antigen}`);
      }
    }
    for (const a of this.#appointmentViews()) {
      add('appointments.total');
      add(`appointments.${a.status}`);
    }
    const stateKey: Record<EncounterState, string> = {
      waiting: 'encounters.waiting',
      'in-progress': 'encounters.inProgress',
      completed: 'encounters.completed',
      cancelled: 'encounters.cancelled',
    };
    for (const e of this.#encounters.r.values()) add(stateKey[e.state]);
    for (const l of this.#lots.r.values()) {
      add('stock.lots');
      add('stock.doses', l.balance);
      add(`stock.${l.antigen}`, l.balance);
    }
    return sortObject(c);
  }

  /**
   * The full projected state as deterministic JSON (records sorted by id, keys in fixed order).
   *
   * @remarks Used to compare replicas byte for byte. Includes merged-away patients, field
   * versions, every encounter and appointment, the number of applied events and the skipped
   * events with their reasons.
   */
  toJSON(): JsonValue {
    const patients = [...this.#patientSlots]
      .sort((a, b) => cmp(a[0], b[0]))
      .map(([id, slot]) => {
        const h = historyOf(slot);
        const p = typeof slot === 'string' ? this.#registered(slot) : slot;
        return stripUndefined({
          id,
          nationalId: p.nationalId,
          givenName: p.givenName,
          familyName: p.familyName,
          birthDate: p.birthDate,
          sex: p.sex,
          registeredBy: h.registeredBy,
          versions: PATIENT_FIELDS.map((f) => [f, versionOf(p, f)]),
          mergedInto: h.mergedInto,
          mergedBy: h.mergedBy,
          immunizations: (this.#immunizations.r.get(id) ?? [])
            .map(toImmunizationView)
            .sort(compareImmunizations) as unknown as JsonValue,
        });
      });
    const encounters = [...this.#encounters.r.values()]
      .sort((a, b) => cmp(a.encounterId, b.encounterId))
      .map((e) => stripUndefined({ ...e }));
    const appointments = [...this.#appointments.r.values()]
      .sort((a, b) => cmp(a.appointmentId, b.appointmentId))
      .map((a) => stripUndefined({ ...a }));
    const skipped = [...this.#skipped.r.entries()].sort((a, b) => cmp(a[0], b[0]));
    return {
      patients,
      lots: this.stock().lots,
      encounters,
      appointments,
      counters: this.counters(),
      applied: this.#applied.size,
      skipped,
    } as unknown as JsonValue;
  }
}

function toImmunizationView(r: ImmunizationRec): ImmunizationView {
  return r.performer === undefined
    ? {
        eventId: r.eventId,
        recordedFor: r.recordedFor,
        antigen: r.antigen,
        dose: r.dose,
        lot: r.lot,
        date: r.date,
      }
    : {
        eventId: r.eventId,
        recordedFor: r.recordedFor,
        antigen: r.antigen,
        dose: r.dose,
        lot: r.lot,
        date: r.date,
        performer: r.performer,
      };
}

function compareImmunizations(a: ImmunizationView, b: ImmunizationView): number {
  return cmp(a.date, b.date) || cmp(a.antigen, b.antigen) || a.dose - b.dose || cmp(a.eventId, b.eventId);
}
