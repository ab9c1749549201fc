import { z } from 'zod';
import { AccordError, ErrorCode, boundText, err, ok } from '@accord/protocol';
import type { Result, Subject } from '@accord/protocol';
import { isIsoDate } from './dates.js';

/** Every domain event type (facts about patients, encounters, appointments, vaccinations and stock). */
export const DomainEventType = {
  PatientRegistered: 'PatientRegistered',
  PatientDemographicsUpdated: 'PatientDemographicsUpdated',
  PatientsMerged: 'PatientsMerged',
  PatientCheckedIn: 'PatientCheckedIn',
  EncounterStarted: 'EncounterStarted',
  EncounterCompleted: 'EncounterCompleted',
  EncounterCancelled: 'EncounterCancelled',
  AppointmentScheduled: 'AppointmentScheduled',
  AppointmentCancelled: 'AppointmentCancelled',
  VaccinationAdministered: 'VaccinationAdministered',
  StockReceived: 'StockReceived',
  StockAdjusted: 'StockAdjusted',
  StockConsumed: 'StockConsumed',
} as const;
/** One of {@link DomainEventType}. */
export type DomainEventType = (typeof DomainEventType)[keyof typeof DomainEventType];

/** Record kinds used in event subjects. */
export const SubjectKind = {
  Patient: 'patient',
  Encounter: 'encounter',
  Appointment: 'appointment',
  Lot: 'lot',
} as const;
/** One of {@link SubjectKind}. */
export type SubjectKind = (typeof SubjectKind)[keyof typeof SubjectKind];

/** Largest quantity one stock event may carry. */
export const MAX_QUANTITY = 1_000_000;

const id = z.string().min(1).max(128);
const isoDate = z.string().refine(isIsoDate, { message: 'expected a real calendar date YYYY-MM-DD' });
const name = z.string().min(1).max(200);
const antigen = z.string().min(1).max(64);
const sex = z.enum(['female', 'male', 'other', 'unknown']);
const quantity = z.number().int().min(1).max(MAX_QUANTITY);
const note = z.string().min(1).max(500);

/** Patient fields that `PatientDemographicsUpdated` may change (all demographics, including the national id). */
export const PATIENT_FIELDS = ['birthDate', 'familyName', 'givenName', 'nationalId', 'sex'] as const;
/** One of {@link PATIENT_FIELDS}. */
export type PatientField = (typeof PATIENT_FIELDS)[number];

const patientRegistered = z.strictObject({
  patientId: id,
  nationalId: id,
  givenName: name,
  familyName: name,
  birthDate: isoDate,
  sex,
});
const demographicChanges = z
  .strictObject({
    nationalId: id.optional(),
    givenName: name.optional(),
    familyName: name.optional(),
    birthDate: isoDate.optional(),
    sex: sex.optional(),
  })
  .refine((c) => Object.values(c).some((v) => v !== undefined), {
    message: 'changes must name at least one field',
  });
const patientDemographicsUpdated = z.strictObject({ patientId: id, changes: demographicChanges });
const patientsMerged = z
  .strictObject({ survivorId: id, mergedId: id })
  .refine((d) => d.survivorId !== d.mergedId, { message: 'a patient cannot be merged into itself' });
const patientCheckedIn = z.strictObject({ patientId: id, encounterId: id });
const encounterTransition = z.strictObject({ encounterId: id });
const encounterCancelled = z.strictObject({ encounterId: id, reason: note.optional() });
const appointmentScheduled = z.strictObject({
  appointmentId: id,
  patientId: id,
  antigen,
  dose: z.number().int().min(1).max(10),
  date: isoDate,
});
const appointmentCancelled = z.strictObject({ appointmentId: id, reason: note.optional() });
const vaccinationAdministered = z.strictObject({
  patientId: id,
  antigen,
  dose: z.number().int().min(1).max(10),
  lot: id,
  date: isoDate,
  performer: id.optional(),
});
const stockReceived = z.strictObject({ lot: id, antigen, quantity, expiry: isoDate });
const stockAdjusted = z.strictObject({
  lot: id,
  delta: z
    .number()
    .int()
    .min(-MAX_QUANTITY)
    .max(MAX_QUANTITY)
    .refine((n) => n !== 0, { message: 'delta must not be zero' }),
  reason: note,
});
const stockConsumed = z.strictObject({ lot: id, quantity, reason: note.optional() });

/** `PatientRegistered` data: a new patient; `nationalId` is the natural key. */
export type PatientRegisteredData = z.infer<typeof patientRegistered>;
/** `PatientDemographicsUpdated` data: field-level changes (only the named fields change). */
export type PatientDemographicsUpdatedData = z.infer<typeof patientDemographicsUpdated>;
/** `PatientsMerged` data: `mergedId` is a duplicate of `survivorId` and is gone afterwards. */
export type PatientsMergedData = z.infer<typeof patientsMerged>;
/** `PatientCheckedIn` data: opens encounter `encounterId` (waiting) for the patient. */
export type PatientCheckedInData = z.infer<typeof patientCheckedIn>;
/** `EncounterStarted` / `EncounterCompleted` data. */
export type EncounterTransitionData = z.infer<typeof encounterTransition>;
/** `EncounterCancelled` data. */
export type EncounterCancelledData = z.infer<typeof encounterCancelled>;
/** `AppointmentScheduled` data. */
export type AppointmentScheduledData = z.infer<typeof appointmentScheduled>;
/** `AppointmentCancelled` data. */
export type AppointmentCancelledData = z.infer<typeof appointmentCancelled>;
/** `VaccinationAdministered` data: one dose from `lot` on `date`. */
export type VaccinationAdministeredData = z.infer<typeof vaccinationAdministered>;
/** `StockReceived` data: `quantity` doses of `lot` arrive (creates the lot, or adds to it). */
export type StockReceivedData = z.infer<typeof stockReceived>;
/** `StockAdjusted` data: a signed correction (count, breakage, …) with a reason. */
export type StockAdjustedData = z.infer<typeof stockAdjusted>;
/** `StockConsumed` data: doses leave stock other than by a recorded vaccination (wastage, transfer). */
export type StockConsumedData = z.infer<typeof stockConsumed>;

/** The data type of each domain event type. */
export interface DomainEventDataMap {
  PatientRegistered: PatientRegisteredData;
  PatientDemographicsUpdated: PatientDemographicsUpdatedData;
  PatientsMerged: PatientsMergedData;
  PatientCheckedIn: PatientCheckedInData;
  EncounterStarted: EncounterTransitionData;
  EncounterCompleted: EncounterTransitionData;
  EncounterCancelled: EncounterCancelledData;
  AppointmentScheduled: AppointmentScheduledData;
  AppointmentCancelled: AppointmentCancelledData;
  VaccinationAdministered: VaccinationAdministeredData;
  StockReceived: StockReceivedData;
  StockAdjusted: StockAdjustedData;
  StockConsumed: StockConsumedData;
}

/**
 * How an event relates to its subject record: `create` needs it absent, `update` needs it present,
 * `upsert` takes either (a `StockReceived` for a known lot adds to it).
 */
export type Lifecycle = 'create' | 'update' | 'upsert';

/**
 * What the system knows about one event type: its current schema version, its data schema, and
 * how to derive the subject and the records it refers to.
 *
 * @remarks `references` must exist before the event can be accepted (404 otherwise); `related`
 * records become dependencies when the recording device knows them but are not required.
 */
export interface EventSpec<T extends DomainEventType = DomainEventType> {
  readonly type: T;
  readonly schema: number;
  readonly lifecycle: Lifecycle;
  readonly data: z.ZodType<DomainEventDataMap[T]>;
  subject(data: DomainEventDataMap[T]): Subject;
  references(data: DomainEventDataMap[T]): Subject[];
  related?(data: DomainEventDataMap[T]): Subject[];
  updatedFields?(data: DomainEventDataMap[T]): string[];
}

const patient = (pid: string): Subject => ({ kind: SubjectKind.Patient, id: pid });
const encounter = (eid: string): Subject => ({ kind: SubjectKind.Encounter, id: eid });
const appointment = (aid: string): Subject => ({ kind: SubjectKind.Appointment, id: aid });
const lot = (lid: string): Subject => ({ kind: SubjectKind.Lot, id: lid });
const none = (): Subject[] => [];

function spec<T extends DomainEventType>(s: EventSpec<T>): EventSpec<T> {
  return Object.freeze(s);
}

/**
 * The event catalogue: one {@link EventSpec} per domain event type, all at schema version 1.
 *
 * @remarks Subjects: patient events → `patient`, `PatientsMerged` → the merged (losing) patient,
 * `PatientCheckedIn` and encounter transitions → `encounter`, appointments → `appointment`,
 * `VaccinationAdministered` → the patient, stock events → `lot`.
 */
export const EVENT_CATALOGUE: { readonly [K in DomainEventType]: EventSpec<K> } = Object.freeze({
  PatientRegistered: spec({
    type: DomainEventType.PatientRegistered,
    schema: 1,
    lifecycle: 'create',
    data: patientRegistered,
    subject: (d) => patient(d.patientId),
    references: none,
  }),
  PatientDemographicsUpdated: spec({
    type: DomainEventType.PatientDemographicsUpdated,
    schema: 1,
    lifecycle: 'update',
    data: patientDemographicsUpdated,
    subject: (d) => patient(d.patientId),
    references: none,
    updatedFields: (d) =>
      Object.entries(d.changes)
        .filter(([, v]) => v !== undefined)
        .map(([k]) => k)
        .sort(),
  }),
  PatientsMerged: spec({
    type: DomainEventType.PatientsMerged,
    schema: 1,
    lifecycle: 'update',
    data: patientsMerged,
    subject: (d) => patient(d.mergedId),
    references: (d) => [patient(d.survivorId)],
  }),
  PatientCheckedIn: spec({
    type: DomainEventType.PatientCheckedIn,
    schema: 1,
    lifecycle: 'create',
    data: patientCheckedIn,
    subject: (d) => encounter(d.encounterId),
    references: (d) => [patient(d.patientId)],
  }),
  EncounterStarted: spec({
    type: DomainEventType.EncounterStarted,
    schema: 1,
    lifecycle: 'update',
    data: encounterTransition,
    subject: (d) => encounter(d.encounterId),
    references: none,
  }),
  EncounterCompleted: spec({
    type: DomainEventType.EncounterCompleted,
    schema: 1,
    lifecycle: 'update',
    data: encounterTransition,
    subject: (d) => encounter(d.encounterId),
    references: none,
  }),
  EncounterCancelled: spec({
    type: DomainEventType.EncounterCancelled,
    schema: 1,
    lifecycle: 'update',
    data: encounterCancelled,
    subject: (d) => encounter(d.encounterId),
    references: none,
  }),
  AppointmentScheduled: spec({
    type: DomainEventType.AppointmentScheduled,
    schema: 1,
    lifecycle: 'create',
    data: appointmentScheduled,
    subject: (d) => appointment(d.appointmentId),
    references: (d) => [patient(d.patientId)],
  }),
  AppointmentCancelled: spec({
    type: DomainEventType.AppointmentCancelled,
    schema: 1,
    lifecycle: 'update',
    data: appointmentCancelled,
    subject: (d) => appointment(d.appointmentId),
    references: none,
  }),
  VaccinationAdministered: spec({
    type: DomainEventType.VaccinationAdministered,
    schema: 1,
    lifecycle: 'update',
    data: vaccinationAdministered,
    subject: (d) => patient(d.patientId),
    references: none,
    // The lot is deliberately not a reference: a lot never received is a 422 (balance 0), not a 404.
    related: (d) => [lot(d.lot)],
  }),
  StockReceived: spec({
    type: DomainEventType.StockReceived,
    schema: 1,
    lifecycle: 'upsert',
    data: stockReceived,
    subject: (d) => lot(d.lot),
    references: none,
  }),
  StockAdjusted: spec({
    type: DomainEventType.StockAdjusted,
    schema: 1,
    lifecycle: 'update',
    data: stockAdjusted,
    subject: (d) => lot(d.lot),
    references: none,
  }),
  StockConsumed: spec({
    type: DomainEventType.StockConsumed,
    schema: 1,
    lifecycle: 'update',
    data: stockConsumed,
    subject: (d) => lot(d.lot),
    references: none,
  }),
});

/** True when `type` names a domain event type. */
export function isDomainEventType(type: unknown): type is DomainEventType {
  return typeof type === 'string' && Object.hasOwn(EVENT_CATALOGUE, type);
}

/** A domain event whose data passed its schema: the type, the typed data and the derived subject. */
export type CheckedEvent = {
  readonly [K in DomainEventType]: {
    readonly type: K;
    readonly data: DomainEventDataMap[K];
    readonly subject: Subject;
  };
}[DomainEventType];

/** Most zod issues a `checkEventData` failure lists in `details.issues` (`details.issueCount` counts them all). */
export const MAX_SCHEMA_ISSUES = 20;

/** Longest `path` or `message` of one listed issue (characters). */
export const MAX_SCHEMA_ISSUE_CHARS = 200;

/** Most unknown keys an "unrecognized keys" issue names; the rest are counted. */
const MAX_NAMED_UNKNOWN_KEYS = 10;

/**
 * One zod issue as `{path, message}`, bounded.
 *
 * @remarks zod's own message for unknown keys lists every one of them: an event of 7,000 short
 * keys made a 70 KB message that the verdict echoed. The message names a few and counts the rest.
 */
function describeIssue(issue: z.core.$ZodIssue): { path: string; message: string } {
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    const named = keys.slice(0, MAX_NAMED_UNKNOWN_KEYS).map((k) => JSON.stringify(boundText(k, 40)));
    const more = keys.length - named.length;
    message = `${keys.length} unrecognized key${keys.length === 1 ? '' : 's'}: ${named.join(', ')}${more > 0 ? `, … (${more} more)` : ''}`;
  }
  return {
    path: boundText(issue.path.map(String).join('.'), MAX_SCHEMA_ISSUE_CHARS),
    message: boundText(message, MAX_SCHEMA_ISSUE_CHARS),
  };
}

/** Why {@link checkEventData} refused: `details.reason` of its `PROTOCOL_SCHEMA` error. */
export type SchemaFailure = 'unknown-type' | 'unknown-version' | 'invalid-data';

function schemaError(
  reason: SchemaFailure,
  message: string,
  extra: Record<string, unknown> = {},
): AccordError {
  return new AccordError(ErrorCode.PROTOCOL_SCHEMA, message, { details: { reason, ...extra } });
}

/**
 * Validates an event's data against the catalogue and derives its subject.
 *
 * @remarks Total: never throws. Failures are `PROTOCOL_SCHEMA` errors whose `details.reason` is
 * `unknown-type`, `unknown-version` or `invalid-data` (then `details.issues` lists zod issues as
 * `{path, message}`, at most {@link MAX_SCHEMA_ISSUES} of {@link MAX_SCHEMA_ISSUE_CHARS} characters each,
 * with `details.issueCount` when there were more). Unknown keys are invalid (schemas are strict);
 * their issue names ten of them and counts the rest. So a refusal stays small whatever the data.
 */
export function checkEventData(type: string, schema: number, data: unknown): Result<CheckedEvent> {
  try {
    if (!isDomainEventType(type)) {
      return err(
        schemaError('unknown-type', `unknown event type ${JSON.stringify(String(type))}`, {
          type: String(type),
        }),
      );
    }
    const s = EVENT_CATALOGUE[type] as EventSpec;
    if (schema !== s.schema) {
      return err(
        schemaError(
          'unknown-version',
          `${type} schema version ${String(schema)} is not supported (current: ${s.schema})`,
          {
            type,
            schema: typeof schema === 'number' && Number.isFinite(schema) ? schema : String(schema),
            supported: [s.schema],
          },
        ),
      );
    }
    const parsed = s.data.safeParse(data);
    if (!parsed.success) {
      const all = parsed.error.issues;
      const issues = all.slice(0, MAX_SCHEMA_ISSUES).map(describeIssue);
      const first = issues[0];
      const where =
        first === undefined ? '' : `: ${first.path === '' ? '(root)' : first.path} ${first.message}`;
      return err(
        schemaError('invalid-data', `${type} data is invalid${where}`, {
          type,
          issues,
          ...(all.length > issues.length ? { issueCount: all.length } : {}),
        }),
      );
    }
    return ok({ type, data: parsed.data, subject: s.subject(parsed.data) } as CheckedEvent);
  } catch (cause) {
    // A hostile object (throwing getter, proxy) must still be answered, not thrown.
    return err(
      schemaError('invalid-data', `${String(type)} data could not be read`, {
        type: String(type),
        cause: boundText(String(cause), MAX_SCHEMA_ISSUE_CHARS),
      }),
    );
  }
}

/** What a field of a simple event type holds: the zod primitive of the same name above, as a plain test. */
type FieldKind = 'id' | 'name' | 'antigen' | 'note' | 'isoDate' | 'sex' | 'dose' | 'quantity';

const SEXES: ReadonlySet<unknown> = new Set(['female', 'male', 'other', 'unknown']);
const textOf = (v: unknown, max: number): boolean =>
  typeof v === 'string' && v.length >= 1 && v.length <= max;
const intIn = (v: unknown, min: number, max: number): boolean =>
  Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

const FIELD_TESTS: { readonly [K in FieldKind]: (v: unknown) => boolean } = {
  id: (v) => textOf(v, 128),
  name: (v) => textOf(v, 200),
  antigen: (v) => textOf(v, 64),
  note: (v) => textOf(v, 500),
  isoDate: isIsoDate,
  sex: (v) => SEXES.has(v),
  dose: (v) => intIn(v, 1, 10),
  quantity: (v) => intIn(v, 1, MAX_QUANTITY),
};

/** A strict object of plain fields: required ones, then optional ones (absent, never `undefined`). */
interface QuickShape {
  readonly required: Readonly<Record<string, FieldKind>>;
  readonly optional?: Readonly<Record<string, FieldKind>>;
}

/**
 * The types whose data is a strict object of plain fields with no refinement across fields: the
 * bulk of a history. The others (demographic changes, merges, stock adjustments) are rare and
 * always go to zod. Each shape must accept nothing its zod schema above refuses
 * (`catalogue.test.ts` checks it against zod on generated and mutated data).
 */
const QUICK_SHAPES: Partial<Record<DomainEventType, QuickShape>> = {
  PatientRegistered: {
    required: {
      patientId: 'id',
      nationalId: 'id',
      givenName: 'name',
      familyName: 'name',
      birthDate: 'isoDate',
      sex: 'sex',
    },
  },
  PatientCheckedIn: { required: { patientId: 'id', encounterId: 'id' } },
  EncounterStarted: { required: { encounterId: 'id' } },
  EncounterCompleted: { required: { encounterId: 'id' } },
  EncounterCancelled: { required: { encounterId: 'id' }, optional: { reason: 'note' } },
  AppointmentScheduled: {
    required: { appointmentId: 'id', patientId: 'id', antigen: 'antigen', dose: 'dose', date: 'isoDate' },
  },
  AppointmentCancelled: { required: { appointmentId: 'id' }, optional: { reason: 'note' } },
  VaccinationAdministered: {
    required: { patientId: 'id', antigen: 'antigen', dose: 'dose', lot: 'id', date: 'isoDate' },
    optional: { performer: 'id' },
  },
  StockReceived: { required: { lot: 'id', antigen: 'antigen', quantity: 'quantity', expiry: 'isoDate' } },
  StockConsumed: { required: { lot: 'id', quantity: 'quantity' }, optional: { reason: 'note' } },
};

/** A shape as tests in arrays: what {@link fitsShape} runs, without a lookup by key. */
interface CompiledShape {
  readonly required: readonly (readonly [string, (v: unknown) => boolean])[];
  readonly optional: readonly (readonly [string, (v: unknown) => boolean])[];
}

const compiled = (fields: Readonly<Record<string, FieldKind>> = {}): [string, (v: unknown) => boolean][] =>
  Object.entries(fields).map(([key, kind]) => [key, FIELD_TESTS[kind]]);
const COMPILED_SHAPES = new Map<string, CompiledShape>(
  Object.entries(QUICK_SHAPES).map(([type, shape]) => [
    type,
    { required: compiled(shape.required), optional: compiled(shape.optional) },
  ]),
);

/**
 * True when `data` is a plain object with exactly the shape's fields, each passing its test: every
 * required one, and each optional one present (never `undefined`). Its keys are counted, not
 * listed: one more than the fields found means an unknown key (or an inherited one).
 */
function fitsShape(shape: CompiledShape, data: unknown): boolean {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return false;
  const proto: unknown = Object.getPrototypeOf(data);
  if (proto !== Object.prototype && proto !== null) return false;
  const record = data as Record<string, unknown>;
  for (const [key, test] of shape.required) if (!test(record[key])) return false;
  let expected = shape.required.length;
  for (const [key, test] of shape.optional) {
    const v = record[key];
    if (v === undefined) continue;
    if (!test(v)) return false;
    expected++;
  }
  let keys = 0;
  for (const key in record) if (key !== undefined) keys++;
  return keys === expected;
}

/**
 * {@link checkEventData}'s answer for data that is certainly valid, found without zod: the checked
 * event (its data the object given, not a copy: the schemas of these types transform nothing), or
 * undefined when the data is not of a simple type or not certainly valid (ask
 * {@link checkEventData}, which also says why).
 *
 * @remarks For folds, which check every event of a history: zod's `safeParse` copies each data
 * object and builds its result, 13% of all the bytes a cold sync allocated. Never throws.
 */
export function quickCheckEventData(type: string, schema: number, data: unknown): CheckedEvent | undefined {
  try {
    if (!isDomainEventType(type)) return undefined;
    const shape = COMPILED_SHAPES.get(type);
    const s = EVENT_CATALOGUE[type] as EventSpec;
    if (shape === undefined || schema !== s.schema || !fitsShape(shape, data)) return undefined;
    return { type, data, subject: s.subject(data as never) } as CheckedEvent;
  } catch {
    return undefined; // a hostile object: zod answers it
  }
}

/** The spec of a checked event, typed loosely for generic code (subject/references/related). */
export function specOf(type: DomainEventType): EventSpec {
  return EVENT_CATALOGUE[type];
}
