import type { EventId, JsonValue, SignedEvent, Subject } from '@accord/protocol';
import {
  MAX_VERDICT_REASON_CHARS,
  RejectionCode,
  SystemEventType,
  boundDetails,
  boundText,
  parseDeadletterDiscardedData,
  parseRetryRequestedData,
} from '@accord/protocol';
import type {
  AppointmentScheduledData,
  CheckedEvent,
  EncounterState,
  PatientDemographicsUpdatedData,
  PatientRegisteredData,
  Projection,
  StockAdjustedData,
  StockConsumedData,
  StockReceivedData,
  VaccinationAdministeredData,
} from '@accord/domain';
import {
  DomainEventType,
  SubjectKind,
  antigenSchedule,
  checkEvent,
  dateOfDay,
  dateStartMs,
  dayNumber,
  daysBetween,
  specOf,
} from '@accord/domain';
import {
  FUTURE_DATE_ALLOWANCE_MS,
  RULE_ALREADY_EXISTS,
  RULE_ALREADY_IN_QUEUE,
  RULE_BEFORE_BIRTH,
  RULE_DEPENDENCY_MISSING,
  RULE_DOSE_OUT_OF_SEQUENCE,
  RULE_DOSE_TOO_EARLY,
  RULE_DUPLICATE_NATIONAL_ID,
  RULE_INVALID_TRANSITION,
  RULE_IN_FUTURE,
  RULE_LOT_ANTIGEN_MISMATCH,
  RULE_LOT_EXPIRED,
  RULE_LOT_EXPIRY_MISMATCH,
  RULE_MERGED,
  RULE_NEGATIVE_STOCK,
  RULE_NOT_FOUND,
  RULE_SCHEMA,
  RULE_STALE_BASIS,
  RULE_SUBJECT_MISMATCH,
  RULE_UNKNOWN_ANTIGEN,
  RULE_UNKNOWN_TYPE,
  RULE_UNKNOWN_VERSION,
  RULE_UNPROCESSABLE,
} from './rule-ids.js';

/** The version of the rule set; every verdict records it. Bump it whenever a rule changes. */
export const RULE_SET_VERSION = 'accord-rules/1';

/** What a rule may know besides the state and the event: the validator's clock. */
export interface ValidationContext {
  /** Unix milliseconds of the validating clock (the relay's, or the device's for warnings). */
  readonly nowMs: number;
}

/** The outcome of validating one event: accepted, or a deadletter with code, rule, reason and details. */
export type RuleVerdict =
  | { readonly outcome: 'accepted'; readonly ruleSet: string }
  | {
      readonly outcome: 'deadletter';
      readonly code: RejectionCode;
      readonly rule: string;
      readonly reason: string;
      readonly details: { readonly [k: string]: JsonValue };
      readonly ruleSet: string;
    };

/** A deadletter {@link RuleVerdict}. */
export type Rejection = Extract<RuleVerdict, { outcome: 'deadletter' }>;

const ACCEPTED: RuleVerdict = Object.freeze({ outcome: 'accepted', ruleSet: RULE_SET_VERSION });

/**
 * The one place rules make a rejection: its reason and details are bounded here, because they
 * echo the judged event and a hostile event must not make a verdict too large to write.
 */
function reject(
  code: RejectionCode,
  rule: string,
  reason: string,
  details: { readonly [k: string]: JsonValue },
): Rejection {
  return {
    outcome: 'deadletter',
    code,
    rule,
    reason: boundText(reason, MAX_VERDICT_REASON_CHARS),
    details: boundDetails(details),
    ruleSet: RULE_SET_VERSION,
  };
}

const q = (s: string): string => JSON.stringify(s);
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${Math.abs(n) === 1 ? one : many}`;

/**
 * Judges one event against the confirmed state.
 *
 * @remarks Pure and total: reads `state` without changing it, never throws (anything unreadable
 * is a 500 `RULE_UNPROCESSABLE`), and the same inputs give the same verdict. Checks run in this
 * order and the first failure wins: schema (500), dependencies and subject/reference existence
 * (404/410), conflicts (409), business rules (422). Signatures, roster and elevation (403) are
 * the caller's job. A rejection's `reason` and `details` are bounded (`boundText`, `boundDetails` of
 * `@accord/protocol`) whatever the event holds. `RetryRequested` and `DeadletterDiscarded` are checked for shape only (the
 * relay knows which deadletters exist); `Verdict` events are never valid submissions. A retried or
 * amended event is simply validated again against the current state.
 */
export function validate(state: Projection, event: SignedEvent, ctx: ValidationContext): RuleVerdict {
  try {
    return judge(state, event, ctx);
  } catch (cause) {
    return reject(
      RejectionCode.Invalid,
      RULE_UNPROCESSABLE,
      `The event could not be processed: ${String(cause)}.`,
      {},
    );
  }
}

/**
 * What a device shows as a warning while recording an event: the same checks as {@link validate},
 * run against its tentative view.
 *
 * @remarks Call it with the view *before* the event is applied to it. An `accepted` answer is a
 * forecast, not a promise: the relay judges against the confirmed state, which may differ.
 */
export function localWarnings(view: Projection, event: SignedEvent, ctx: ValidationContext): RuleVerdict {
  return validate(view, event, ctx);
}

function judge(state: Projection, event: SignedEvent, ctx: ValidationContext): RuleVerdict {
  if (typeof event !== 'object' || event === null) {
    return reject(RejectionCode.Invalid, RULE_SCHEMA, 'The event is not an object.', {});
  }
  const type: unknown = event.type;
  if (typeof type !== 'string') {
    return reject(RejectionCode.Invalid, RULE_SCHEMA, 'The event has no type.', {});
  }
  if (type === SystemEventType.RetryRequested || type === SystemEventType.DeadletterDiscarded) {
    const r =
      type === SystemEventType.RetryRequested
        ? parseRetryRequestedData(event.data)
        : parseDeadletterDiscardedData(event.data);
    if (r.ok) return ACCEPTED;
    return reject(RejectionCode.Invalid, RULE_SCHEMA, `${type} data is invalid: ${r.error.message}.`, {
      type,
      issues: (r.error.details['issues'] ?? []) as JsonValue,
    });
  }
  if (type === SystemEventType.Verdict || type === SystemEventType.AcceptedVerdicts) {
    // (RosterUpdated and SegmentSealed are unknown types here; the relay refuses them first: 403.)
    return reject(
      RejectionCode.Invalid,
      RULE_UNKNOWN_TYPE,
      `${type} events are written by the relay and cannot be submitted.`,
      {
        type,
      },
    );
  }

  // 500: schema.
  const schema: unknown = event.schema;
  const checked = checkEvent(event);
  if (!checked.ok) {
    const reason = checked.error.details['reason'];
    if (reason === 'unknown-type') {
      return reject(
        RejectionCode.Invalid,
        RULE_UNKNOWN_TYPE,
        `Event type ${q(type)} is not known to rule set ${RULE_SET_VERSION}.`,
        {
          type,
        },
      );
    }
    if (reason === 'unknown-version') {
      const supported = specOf(type as DomainEventType).schema;
      return reject(
        RejectionCode.Invalid,
        RULE_UNKNOWN_VERSION,
        `${type} schema version ${String(schema)} is not supported; this relay knows version ${supported}.`,
        {
          type,
          schema: typeof schema === 'number' && Number.isFinite(schema) ? schema : String(schema),
          supported: [supported],
        },
      );
    }
    return reject(RejectionCode.Invalid, RULE_SCHEMA, `${checked.error.message}.`, {
      type,
      issues: (checked.error.details['issues'] ?? []) as JsonValue,
    });
  }
  const c = checked.value;
  const subject: unknown = event.subject;
  if (
    typeof subject !== 'object' ||
    subject === null ||
    (subject as Subject).kind !== c.subject.kind ||
    (subject as Subject).id !== c.subject.id
  ) {
    const claimed = typeof subject === 'object' && subject !== null ? (subject as Subject) : undefined;
    return reject(
      RejectionCode.Invalid,
      RULE_SUBJECT_MISMATCH,
      `The envelope's subject ${claimed === undefined ? 'is missing' : `${String(claimed.kind)}/${String(claimed.id)}`} but the data is about ${c.subject.kind}/${c.subject.id}.`,
      {
        expected: { kind: c.subject.kind, id: c.subject.id },
        ...(claimed === undefined ? {} : { actual: { kind: String(claimed.kind), id: String(claimed.id) } }),
      },
    );
  }

  // 404: dependencies.
  const deps: unknown = event.deps;
  if (deps !== undefined && !Array.isArray(deps)) {
    return reject(RejectionCode.Invalid, RULE_SCHEMA, "The envelope's deps is not a list.", {});
  }
  const missing = [
    ...new Set(
      ((deps ?? []) as unknown[])
        .filter((d) => typeof d !== 'string' || !state.hasEvent(d as EventId))
        .map(String),
    ),
  ];
  if (missing.length > 0) {
    return reject(
      RejectionCode.NotFound,
      RULE_DEPENDENCY_MISSING,
      `${plural(missing.length, 'event')} this one depends on ${missing.length === 1 ? 'is' : 'are'} not confirmed yet: ${missing.join(', ')}.`,
      { missing },
    );
  }

  // 404/410: subject and references.
  const spec = specOf(c.type);
  if (spec.lifecycle === 'update') {
    const gone = existence(state, c.subject, 'subject');
    if (gone !== undefined) return gone;
  }
  for (const ref of spec.references(c.data)) {
    const gone = existence(state, ref, 'reference');
    if (gone !== undefined) return gone;
  }

  // 409: duplicates and stale bases.
  if (spec.lifecycle === 'create') {
    const existing = state.creatorOf(c.subject);
    if (existing !== undefined) {
      return reject(
        RejectionCode.Conflict,
        RULE_ALREADY_EXISTS,
        `A ${c.subject.kind} with id ${q(c.subject.id)} already exists (created by event ${existing}).`,
        { kind: c.subject.kind, id: c.subject.id, existingEvent: existing },
      );
    }
  }
  const conflict = conflicts(state, event, c);
  if (conflict !== undefined) return conflict;

  // 422: business rules.
  return business(state, c, ctx) ?? ACCEPTED;
}

/** 404 when a record is unknown, 410 when a patient was merged away. */
function existence(state: Projection, s: Subject, role: 'subject' | 'reference'): Rejection | undefined {
  const what = role === 'subject' ? 'The' : 'The referenced';
  if (s.kind === SubjectKind.Patient) {
    const r = state.resolvePatient(s.id);
    if (r === undefined) {
      return reject(RejectionCode.NotFound, RULE_NOT_FOUND, `${what} patient ${q(s.id)} is not known.`, {
        kind: s.kind,
        id: s.id,
        role,
      });
    }
    if (r.mergedInto !== undefined) {
      const rec = state.patientRecord(s.id);
      return reject(
        RejectionCode.Gone,
        RULE_MERGED,
        `${what} patient ${q(s.id)} was merged into patient ${q(r.id)}; record this on the surviving patient.`,
        {
          kind: s.kind,
          id: s.id,
          role,
          survivorId: r.id,
          ...(rec?.mergedBy !== undefined ? { mergedBy: rec.mergedBy } : {}),
        },
      );
    }
    return undefined;
  }
  if (state.creatorOf(s) === undefined) {
    return reject(RejectionCode.NotFound, RULE_NOT_FOUND, `${what} ${s.kind} ${q(s.id)} is not known.`, {
      kind: s.kind,
      id: s.id,
      role,
    });
  }
  return undefined;
}

function conflicts(state: Projection, event: SignedEvent, c: CheckedEvent): Rejection | undefined {
  if (c.type === DomainEventType.PatientRegistered)
    return duplicateNationalId(state, c.data.nationalId, undefined);
  if (c.type !== DomainEventType.PatientDemographicsUpdated) return undefined;
  const stale = staleBasis(state, event, c.data);
  if (stale !== undefined) return stale;
  const nid = c.data.changes.nationalId;
  return nid === undefined ? undefined : duplicateNationalId(state, nid, c.data.patientId);
}

function duplicateNationalId(
  state: Projection,
  nationalId: string,
  self: string | undefined,
): Rejection | undefined {
  const holder = state.patientByNationalId(nationalId);
  if (holder === undefined || holder === self) return undefined;
  const existingEvent = state.creatorOf({ kind: SubjectKind.Patient, id: holder }) ?? null;
  return reject(
    RejectionCode.Conflict,
    RULE_DUPLICATE_NATIONAL_ID,
    `National id ${q(nationalId)} already belongs to patient ${q(holder)}${existingEvent === null ? '' : ` (registered by event ${existingEvent})`}.`,
    { nationalId, existingPatientId: holder, existingEvent },
  );
}

/**
 * 409 when a changed field was set, since the device's basis, by an event the device did not see.
 *
 * @remarks A missing basis entry counts as "saw it unset" (null). Changing a field to the value it
 * already has is never a conflict. Different fields never conflict (they merge).
 */
function staleBasis(
  state: Projection,
  event: SignedEvent,
  d: PatientDemographicsUpdatedData,
): Rejection | undefined {
  const basisRaw: unknown = event.basis;
  const basis =
    typeof basisRaw === 'object' && basisRaw !== null ? (basisRaw as Record<string, unknown>) : {};
  const subject = { kind: SubjectKind.Patient, id: d.patientId };
  const found: StaleField[] = [];
  for (const [field, proposed] of Object.entries(d.changes).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (proposed === undefined) continue;
    const claimed = Object.hasOwn(basis, field) ? basis[field] : null;
    const seen = typeof claimed === 'string' ? (claimed as EventId) : null;
    const currentEvent = state.fieldVersion(subject, field);
    if (currentEvent === seen) continue;
    const current = state.patientField(d.patientId, field) ?? null;
    if (current === proposed) continue;
    found.push({ field, current, currentEvent, proposed, basis: seen });
  }
  const first = found[0];
  if (first === undefined) return undefined;
  const more = found.length > 1 ? `; ${found.length} fields conflict` : '';
  return reject(
    RejectionCode.Conflict,
    RULE_STALE_BASIS,
    `Field ${first.field} of patient ${q(d.patientId)} was changed to ${JSON.stringify(first.current)} by event ${String(first.currentEvent)}, which this change did not see (basis ${String(first.basis)}); proposed ${JSON.stringify(first.proposed)}${more}.`,
    { ...first, patientId: d.patientId, conflicts: found.map((c) => ({ ...c })) },
  );
}

/** One field of a 409 `RULE_STALE_BASIS`: both values, the event behind the current one, and the device's basis. */
interface StaleField {
  readonly [k: string]: string | null;
  readonly field: string;
  readonly current: string | null;
  readonly currentEvent: EventId | null;
  readonly proposed: string;
  readonly basis: EventId | null;
}

function business(state: Projection, c: CheckedEvent, ctx: ValidationContext): Rejection | undefined {
  switch (c.type) {
    case DomainEventType.PatientRegistered:
      return registration(c.data, ctx);
    case DomainEventType.PatientDemographicsUpdated:
      return demographics(state, c.data, ctx);
    case DomainEventType.PatientsMerged:
      return undefined;
    case DomainEventType.PatientCheckedIn: {
      const open = state.openEncountersOf(c.data.patientId);
      const first = open[0];
      if (first === undefined) return undefined;
      const enc = state.encounter(first);
      return reject(
        RejectionCode.Rule,
        RULE_ALREADY_IN_QUEUE,
        `Patient ${q(c.data.patientId)} is already in the queue (encounter ${q(first)}, ${enc?.state ?? 'open'} since ${enc?.day ?? 'unknown'}).`,
        { patientId: c.data.patientId, encounterId: first, state: enc?.state ?? null, day: enc?.day ?? null },
      );
    }
    case DomainEventType.EncounterStarted:
      return transition(state, c.data.encounterId, ['waiting'], 'in-progress');
    case DomainEventType.EncounterCompleted:
      return transition(state, c.data.encounterId, ['in-progress'], 'completed');
    case DomainEventType.EncounterCancelled:
      return transition(state, c.data.encounterId, ['waiting', 'in-progress'], 'cancelled');
    case DomainEventType.AppointmentScheduled:
      return appointment(state, c.data, ctx);
    case DomainEventType.AppointmentCancelled: {
      const rec = state.appointment(c.data.appointmentId);
      if (rec?.cancelled !== true) return undefined;
      return reject(
        RejectionCode.Rule,
        RULE_INVALID_TRANSITION,
        `Appointment ${q(c.data.appointmentId)} is already cancelled.`,
        { appointmentId: c.data.appointmentId, from: 'cancelled', to: 'cancelled' },
      );
    }
    case DomainEventType.VaccinationAdministered:
      return vaccination(state, c.data, ctx);
    case DomainEventType.StockReceived:
      return receipt(state, c.data);
    case DomainEventType.StockAdjusted:
      return adjustment(state, c.data);
    case DomainEventType.StockConsumed:
      return consumption(state, c.data);
  }
}

/** 422 when `date` (00:00 UTC) lies beyond now + {@link FUTURE_DATE_ALLOWANCE_MS}. */
function inFuture(field: string, date: string, ctx: ValidationContext): Rejection | undefined {
  const start = dateStartMs(date);
  const limit = ctx.nowMs + FUTURE_DATE_ALLOWANCE_MS;
  if (!(start > limit)) return undefined;
  return reject(
    RejectionCode.Rule,
    RULE_IN_FUTURE,
    `${field} ${date} is in the future: it starts ${start - ctx.nowMs} ms after now, more than the allowed ${FUTURE_DATE_ALLOWANCE_MS} ms.`,
    { field, date, nowMs: ctx.nowMs, allowanceMs: FUTURE_DATE_ALLOWANCE_MS, aheadMs: start - ctx.nowMs },
  );
}

function registration(d: PatientRegisteredData, ctx: ValidationContext): Rejection | undefined {
  return inFuture('birthDate', d.birthDate, ctx);
}

function demographics(
  state: Projection,
  d: PatientDemographicsUpdatedData,
  ctx: ValidationContext,
): Rejection | undefined {
  const birthDate = d.changes.birthDate;
  if (birthDate === undefined) return undefined;
  const future = inFuture('birthDate', birthDate, ctx);
  if (future !== undefined) return future;
  const earliest = [...state.immunizationsOf(d.patientId)].sort((a, b) =>
    a.date < b.date ? -1 : a.date > b.date ? 1 : 0,
  )[0];
  if (earliest === undefined || earliest.date >= birthDate) return undefined;
  return reject(
    RejectionCode.Rule,
    RULE_BEFORE_BIRTH,
    `Birth date ${birthDate} is after the ${earliest.antigen} dose ${earliest.dose} given on ${earliest.date} (${plural(daysBetween(earliest.date, birthDate), 'day')} earlier).`,
    { birthDate, vaccinationDate: earliest.date, vaccinationEvent: earliest.eventId, patientId: d.patientId },
  );
}

function transition(
  state: Projection,
  encounterId: string,
  from: readonly EncounterState[],
  to: EncounterState,
): Rejection | undefined {
  const rec = state.encounter(encounterId);
  if (rec === undefined || from.includes(rec.state)) return undefined;
  return reject(
    RejectionCode.Rule,
    RULE_INVALID_TRANSITION,
    `Encounter ${q(encounterId)} is ${rec.state}; it can become ${to} only when ${from.join(' or ')}.`,
    { encounterId, from: rec.state, to, allowedFrom: [...from] },
  );
}

function unknownAntigen(antigen: string): Rejection {
  return reject(
    RejectionCode.Rule,
    RULE_UNKNOWN_ANTIGEN,
    `Antigen ${q(antigen)} is not in the immunization schedule.`,
    {
      antigen,
    },
  );
}

function appointment(
  state: Projection,
  d: AppointmentScheduledData,
  ctx: ValidationContext,
): Rejection | undefined {
  void ctx; // appointments may be booked for any future date; past dates are recorded as missed
  const schedule = antigenSchedule(d.antigen);
  if (schedule === undefined) return unknownAntigen(d.antigen);
  if (d.dose > schedule.doses) {
    return reject(
      RejectionCode.Rule,
      RULE_DOSE_OUT_OF_SEQUENCE,
      `${d.antigen} has ${plural(schedule.doses, 'dose')} in the schedule; dose ${d.dose} does not exist.`,
      { antigen: d.antigen, dose: d.dose, doses: schedule.doses },
    );
  }
  const birthDate = state.patientField(d.patientId, 'birthDate');
  if (birthDate !== undefined && d.date < birthDate) {
    return reject(
      RejectionCode.Rule,
      RULE_BEFORE_BIRTH,
      `Appointment date ${d.date} is ${plural(daysBetween(d.date, birthDate), 'day')} before the patient's birth on ${birthDate}.`,
      { date: d.date, birthDate, patientId: d.patientId },
    );
  }
  return undefined;
}

function vaccination(
  state: Projection,
  d: VaccinationAdministeredData,
  ctx: ValidationContext,
): Rejection | undefined {
  const schedule = antigenSchedule(d.antigen);
  if (schedule === undefined) return unknownAntigen(d.antigen);
  const birthDate = state.patientField(d.patientId, 'birthDate');
  if (birthDate !== undefined && d.date < birthDate) {
    return reject(
      RejectionCode.Rule,
      RULE_BEFORE_BIRTH,
      `Vaccination date ${d.date} is ${plural(daysBetween(d.date, birthDate), 'day')} before the patient's birth on ${birthDate}.`,
      { date: d.date, birthDate, patientId: d.patientId },
    );
  }
  const future = inFuture('Vaccination date', d.date, ctx);
  if (future !== undefined) return future;

  // Dose sequence: the next dose is one more than the highest recorded (duplicates from a merge
  // do not shift it); the previous dose is the latest recorded for the antigen.
  const given = state.immunizationsOf(d.patientId).filter((i) => i.antigen === d.antigen);
  const highest = given.reduce((m, i) => Math.max(m, i.dose), 0);
  const expected = highest + 1;
  if (d.dose !== expected || d.dose > schedule.doses) {
    const why =
      d.dose > schedule.doses
        ? `the schedule has ${plural(schedule.doses, 'dose')}`
        : highest === 0
          ? `no earlier ${d.antigen} dose is recorded, so the next is dose 1`
          : `dose ${highest} is the highest recorded, so the next is dose ${expected}`;
    return reject(
      RejectionCode.Rule,
      RULE_DOSE_OUT_OF_SEQUENCE,
      `${d.antigen} dose ${d.dose} is out of sequence: ${why}.`,
      {
        antigen: d.antigen,
        dose: d.dose,
        expected,
        doses: schedule.doses,
        given: given
          .map((i) => ({ dose: i.dose, date: i.date, eventId: i.eventId }))
          .sort((a, b) => a.dose - b.dose),
      },
    );
  }
  if (highest === 0) {
    if (birthDate !== undefined) {
      const ageDays = daysBetween(birthDate, d.date);
      if (ageDays < schedule.minAgeDays) {
        return reject(
          RejectionCode.Rule,
          RULE_DOSE_TOO_EARLY,
          `${d.antigen} dose 1 needs a minimum age of ${plural(schedule.minAgeDays, 'day')}; the patient is ${plural(ageDays, 'day')} old on ${d.date}.`,
          {
            antigen: d.antigen,
            dose: 1,
            constraint: 'min-age',
            minAgeDays: schedule.minAgeDays,
            ageDays,
            birthDate,
            date: d.date,
          },
        );
      }
    }
  } else {
    const previous = given.reduce((latest, i) => (i.date > latest ? i.date : latest), '');
    const interval = daysBetween(previous, d.date);
    if (interval < schedule.minIntervalDays) {
      const earliest = dateOfPlus(previous, schedule.minIntervalDays);
      return reject(
        RejectionCode.Rule,
        RULE_DOSE_TOO_EARLY,
        `${d.antigen} dose ${d.dose} is ${plural(interval, 'day')} after the previous dose on ${previous}; the minimum interval is ${plural(schedule.minIntervalDays, 'day')} (earliest ${earliest}).`,
        {
          antigen: d.antigen,
          dose: d.dose,
          constraint: 'min-interval',
          minIntervalDays: schedule.minIntervalDays,
          intervalDays: interval,
          previousDate: previous,
          earliestDate: earliest,
          date: d.date,
        },
      );
    }
  }

  // Stock: a lot never received has balance 0, so the retry after StockReceived succeeds.
  const lot = state.lot(d.lot);
  if (lot === undefined) return negativeStock(d.lot, 0, 1, 'was never received');
  if (lot.antigen !== d.antigen) {
    return reject(
      RejectionCode.Rule,
      RULE_LOT_ANTIGEN_MISMATCH,
      `Lot ${q(d.lot)} holds ${lot.antigen}, not ${d.antigen}.`,
      { lot: d.lot, lotAntigen: lot.antigen, antigen: d.antigen },
    );
  }
  if (d.date > lot.expiry) {
    return reject(
      RejectionCode.Rule,
      RULE_LOT_EXPIRED,
      `Lot ${q(d.lot)} expired on ${lot.expiry}, ${plural(daysBetween(lot.expiry, d.date), 'day')} before the vaccination on ${d.date}.`,
      { lot: d.lot, expiry: lot.expiry, date: d.date },
    );
  }
  if (lot.balance < 1) return negativeStock(d.lot, lot.balance, 1);
  return undefined;
}

function dateOfPlus(date: string, days: number): string {
  return dateOfDay(dayNumber(date) + days);
}

/**
 * The 422 of a lot that cannot cover `requested`: the lot, its balance and the quantity asked for
 * (a user interface shows "Lot M-442 would go to -3: 2 in stock, 5 requested"), and
 * `retriesWhen: 'stock'` because the condition changes when stock of the lot arrives — the relay
 * judges such a deadletter again by itself then, without a retry.
 */
function negativeStock(lot: string, balance: number, requested: number, note?: string): Rejection {
  return reject(
    RejectionCode.Rule,
    RULE_NEGATIVE_STOCK,
    `Lot ${q(lot)} ${note !== undefined ? `${note}; it has` : 'has'} ${plural(balance, 'dose')} in stock; taking ${requested} would leave ${balance - requested}.`,
    { lot, balance, requested, retriesWhen: 'stock' },
  );
}

function receipt(state: Projection, d: StockReceivedData): Rejection | undefined {
  if (antigenSchedule(d.antigen) === undefined) return unknownAntigen(d.antigen);
  const lot = state.lot(d.lot);
  if (lot === undefined) return undefined;
  if (lot.antigen !== d.antigen) {
    return reject(
      RejectionCode.Rule,
      RULE_LOT_ANTIGEN_MISMATCH,
      `Lot ${q(d.lot)} was received as ${lot.antigen}; this receipt says ${d.antigen}.`,
      { lot: d.lot, lotAntigen: lot.antigen, antigen: d.antigen },
    );
  }
  if (lot.expiry !== d.expiry) {
    return reject(
      RejectionCode.Rule,
      RULE_LOT_EXPIRY_MISMATCH,
      `Lot ${q(d.lot)} was received with expiry ${lot.expiry}; this receipt says ${d.expiry}.`,
      { lot: d.lot, lotExpiry: lot.expiry, expiry: d.expiry },
    );
  }
  return undefined;
}

function adjustment(state: Projection, d: StockAdjustedData): Rejection | undefined {
  const lot = state.lot(d.lot);
  if (lot === undefined || d.delta >= 0 || lot.balance + d.delta >= 0) return undefined;
  return negativeStock(d.lot, lot.balance, -d.delta);
}

function consumption(state: Projection, d: StockConsumedData): Rejection | undefined {
  const lot = state.lot(d.lot);
  if (lot === undefined || lot.balance - d.quantity >= 0) return undefined;
  return negativeStock(d.lot, lot.balance, d.quantity);
}
