import { z } from 'zod';
import { isJsonValue } from './canonical.js';
import type { EventEnvelope, JsonValue, SignedEvent, Subject } from './envelope.js';
import { AccordError, ErrorCode } from './errors.js';
import { isHlc, MAX_HLC_WALL_MS } from './hlc.js';
import type { DeviceId, EventId, FacilityId, Hlc } from './ids.js';
import { isDeviceId } from './keys.js';
import { err, ok, type Result } from './result.js';
import { isEventId } from './ulid.js';
import type {
  AcceptedVerdictData,
  AcceptedVerdictsData,
  DeadletterDiscardedData,
  ElevationGrant,
  DeadletterVerdictData,
  RetryRequestedData,
  RosterUpdatedData,
  SegmentSealedData,
  VerdictData,
} from './verdict.js';
import { forEachVerdictIn, MAX_ACCEPTED_PER_EVENT, SystemEventType } from './verdict.js';

/** Facility ids: letters, digits, `-`, `_`; 1-64 characters. */
export const FACILITY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Event type names: a letter then up to 63 letters or digits (`PatientRegistered`). */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
/** Subject kinds: lowercase letter then up to 31 lowercase letters, digits or `-`. */
export const SUBJECT_KIND_PATTERN = /^[a-z][a-z0-9-]{0,31}$/;
/** Most entries in `deps` and in `basis`. */
export const MAX_DEPS = 64;
// 64 bytes → 86 base64url chars; the last char carries 2 data bits and 4 zero bits.
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{85}[AQgw]$/;

/** True when `s` is a well-formed facility id. */
export function isFacilityId(s: string): s is FacilityId {
  return FACILITY_ID_PATTERN.test(s);
}

const isString = (v: unknown): v is string => typeof v === 'string';

/** Schema of an {@link EventId}. */
export const eventIdSchema = z.custom<EventId>(
  (v) => isString(v) && isEventId(v),
  'expected an event id (ULID)',
);
/** Schema of a {@link DeviceId}. */
export const deviceIdSchema = z.custom<DeviceId>((v) => isString(v) && isDeviceId(v), 'expected a device id');
/** Schema of a {@link FacilityId}. */
export const facilityIdSchema = z.custom<FacilityId>(
  (v) => isString(v) && isFacilityId(v),
  'expected a facility id',
);
/** Schema of an {@link Hlc} timestamp. */
export const hlcSchema = z.custom<Hlc>((v) => isString(v) && isHlc(v), 'expected an HLC timestamp');
/** Schema of any canonical-encodable JSON value (finite numbers, plain objects, depth ≤ 64, no lone surrogates). */
export const jsonValueSchema = z.custom<JsonValue>((v) => isJsonValue(v), 'expected a JSON value');
/** Schema of a base64url Ed25519 signature (64 bytes, canonical form). */
export const signatureSchema = z.string().regex(SIGNATURE_PATTERN, 'expected a base64url Ed25519 signature');

/** True when `text` is a well-formed signature: canonical base64url of 64 bytes (what `fromBase64Url` decodes to 64 bytes). */
export function isSignatureText(text: string): boolean {
  return SIGNATURE_PATTERN.test(text);
}

/** Schema of a {@link Subject}. */
export const subjectSchema: z.ZodType<Subject> = z.strictObject({
  kind: z.string().regex(SUBJECT_KIND_PATTERN),
  id: z.string().min(1).max(128),
});

const depsSchema = z
  .array(eventIdSchema)
  .max(MAX_DEPS)
  .refine((deps) => new Set(deps).size === deps.length, 'deps must be unique');

/** Longest field name in `basis`. */
export const MAX_BASIS_KEY_LENGTH = 128;

// Hand-written rather than z.record: zod's record silently drops a `__proto__` key (the parsed
// value would then differ from the signed bytes); this check refuses it and keeps the reference.
function isBasis(v: unknown): v is Readonly<Record<string, EventId | null>> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(v);
  if (keys.length > MAX_DEPS) return false;
  for (const k of keys) {
    if (k.length === 0 || k.length > MAX_BASIS_KEY_LENGTH || k === '__proto__') return false;
    const id = (v as Record<string, unknown>)[k];
    if (id !== null && !(typeof id === 'string' && isEventId(id))) return false;
  }
  return true;
}

const basisSchema = z.custom<Readonly<Record<string, EventId | null>>>(
  isBasis,
  `basis must map at most ${MAX_DEPS} field names (1-${MAX_BASIS_KEY_LENGTH} chars, not __proto__) to event ids or null`,
);

const envelopeShape = {
  v: z.literal(1),
  id: eventIdSchema,
  facility: facilityIdSchema,
  device: deviceIdSchema,
  seq: z.int().positive(),
  hlc: hlcSchema,
  type: z.string().regex(EVENT_TYPE_PATTERN),
  schema: z.int().positive(),
  subject: subjectSchema,
  deps: depsSchema,
  basis: basisSchema.exactOptional(),
  supersedes: eventIdSchema.exactOptional(),
  data: jsonValueSchema,
};

/** Schema of an {@link EventEnvelope}: strict (unknown keys rejected). */
export const eventEnvelopeSchema: z.ZodType<EventEnvelope> = z.strictObject(envelopeShape);

/** Schema of a {@link SignedEvent}: an envelope plus its base64url signature; strict. */
export const signedEventSchema: z.ZodType<SignedEvent> = z.strictObject({
  ...envelopeShape,
  sig: signatureSchema,
});

const SIGNED_EVENT_KEYS: ReadonlySet<string> = new Set([...Object.keys(envelopeShape), 'sig']);
const isPositiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function isSubject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  if (keys.length !== 2) return false;
  const { kind, id } = v as Record<string, unknown>;
  return (
    typeof kind === 'string' &&
    SUBJECT_KIND_PATTERN.test(kind) &&
    typeof id === 'string' &&
    id.length >= 1 &&
    id.length <= 128
  );
}

function isDeps(v: unknown): boolean {
  if (!Array.isArray(v) || v.length > MAX_DEPS) return false;
  for (const d of v as unknown[]) if (typeof d !== 'string' || !isEventId(d)) return false;
  return new Set(v).size === v.length;
}

/**
 * True when `value` passes {@link signedEventSchema}: the same rules, checked by hand for the
 * hot path (every event arriving by sync is decoded with it), without zod's copying. Property-
 * tested to agree with the schema; use the schema for error details.
 */
export function isSignedEvent(value: unknown): value is SignedEvent {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const o = value as Record<string, unknown>;
  let keys = 0;
  for (const k of Object.keys(o)) {
    if (!SIGNED_EVENT_KEYS.has(k)) return false;
    keys++;
  }
  const optional = Number('basis' in o) + Number('supersedes' in o);
  return (
    keys === SIGNED_EVENT_KEYS.size - 2 + optional &&
    o['v'] === 1 &&
    typeof o['id'] === 'string' &&
    isEventId(o['id']) &&
    typeof o['facility'] === 'string' &&
    isFacilityId(o['facility']) &&
    typeof o['device'] === 'string' &&
    isDeviceId(o['device']) &&
    isPositiveInt(o['seq']) &&
    typeof o['hlc'] === 'string' &&
    isHlc(o['hlc']) &&
    typeof o['type'] === 'string' &&
    EVENT_TYPE_PATTERN.test(o['type']) &&
    isPositiveInt(o['schema']) &&
    isSubject(o['subject']) &&
    isDeps(o['deps']) &&
    (!('basis' in o) || isBasis(o['basis'])) &&
    (!('supersedes' in o) || (typeof o['supersedes'] === 'string' && isEventId(o['supersedes']))) &&
    typeof o['sig'] === 'string' &&
    SIGNATURE_PATTERN.test(o['sig']) &&
    isJsonValue(o['data'])
  );
}

const ruleText = z.string().min(1).max(128);
const reasonText = z.string().max(4096);

/** Schema of an `accepted` verdict's data. */
export const acceptedVerdictDataSchema: z.ZodType<AcceptedVerdictData> = z.strictObject({
  target: eventIdSchema,
  outcome: z.literal('accepted'),
  seq: z.int().positive(),
  ruleSet: ruleText,
});

/** Schema of a `deadletter` verdict's data. */
export const deadletterVerdictDataSchema: z.ZodType<DeadletterVerdictData> = z.strictObject({
  target: eventIdSchema,
  outcome: z.literal('deadletter'),
  code: z.union([
    z.literal(500),
    z.literal(422),
    z.literal(409),
    z.literal(404),
    z.literal(410),
    z.literal(403),
  ]),
  rule: ruleText,
  reason: reasonText,
  details: z.custom<{ readonly [key: string]: JsonValue }>(
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && isJsonValue(v),
    'expected a JSON object',
  ),
  ruleSet: ruleText,
});

/** Schema of a `Verdict` event's data (either outcome). */
export const verdictDataSchema: z.ZodType<VerdictData> = z.union([
  acceptedVerdictDataSchema,
  deadletterVerdictDataSchema,
]);

/** Schema of an `AcceptedVerdicts` event's data: 1 to {@link MAX_ACCEPTED_PER_EVENT} unique targets. */
export const acceptedVerdictsDataSchema: z.ZodType<AcceptedVerdictsData> = z.strictObject({
  ruleSet: ruleText,
  firstSeq: z.int().positive(),
  targets: z
    .array(eventIdSchema)
    .min(1)
    .max(MAX_ACCEPTED_PER_EVENT)
    .refine((ts) => new Set(ts).size === ts.length, 'targets must be unique'),
});

/** Schema of a `RetryRequested` event's data. */
export const retryRequestedDataSchema: z.ZodType<RetryRequestedData> = z.strictObject({
  target: eventIdSchema,
});

/** Longest lifetime of an {@link ElevationGrant} the schema accepts (a day; relays issue minutes). */
export const MAX_ELEVATION_LIFETIME_MS = 24 * 60 * 60 * 1000;

/** Schema of an {@link ElevationGrant} (shape only: the signature is the relay's to check). */
export const elevationGrantSchema: z.ZodType<ElevationGrant> = z
  .strictObject({
    v: z.literal(1),
    relay: deviceIdSchema,
    facility: facilityIdSchema,
    device: deviceIdSchema,
    action: z.enum(['discard', 'resubmit']),
    issued: z.int().nonnegative().max(MAX_HLC_WALL_MS),
    expires: z.int().nonnegative().max(MAX_HLC_WALL_MS),
    sig: signatureSchema,
  })
  .refine(
    (g) => g.expires > g.issued && g.expires - g.issued <= MAX_ELEVATION_LIFETIME_MS,
    'expires must follow issued by at most a day',
  );

/** Schema of a `DeadletterDiscarded` event's data (`grant` optional: older events have none). */
export const deadletterDiscardedDataSchema: z.ZodType<DeadletterDiscardedData> = z.strictObject({
  target: eventIdSchema,
  reason: reasonText,
  grant: elevationGrantSchema.exactOptional(),
});

/** Largest segment a `SegmentSealed` may name (events per segment). */
export const MAX_SEALED_SEGMENT_SIZE = 1_000_000;

/** Schema of a `SegmentSealed` event's data. */
export const segmentSealedDataSchema: z.ZodType<SegmentSealedData> = z.strictObject({
  device: deviceIdSchema,
  index: z.int().nonnegative(),
  size: z.int().positive().max(MAX_SEALED_SEGMENT_SIZE),
  digest: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'expected a base64url SHA-256 digest'),
});

/** Longest device name in a roster. */
export const MAX_DEVICE_NAME = 100;
/** Most devices in one facility roster. */
export const MAX_ROSTER_DEVICES = 10_000;

/** Schema of a `RosterUpdated` event's data. */
export const rosterUpdatedDataSchema: z.ZodType<RosterUpdatedData> = z.strictObject({
  version: z.int().positive(),
  devices: z
    .array(
      z.strictObject({
        id: deviceIdSchema,
        name: z.string().min(1).max(MAX_DEVICE_NAME),
        revoked: z.boolean(),
      }),
    )
    .max(MAX_ROSTER_DEVICES)
    .refine((ds) => new Set(ds.map((d) => d.id)).size === ds.length, 'devices must be unique'),
});

/**
 * Validates `value` against `schema` as a {@link Result}; failures are `PROTOCOL_SCHEMA` errors whose
 * details list the issues (`{ issues: [{ path, message }] }`, JSON-safe).
 */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what = 'value'): Result<T> {
  const r = schema.safeParse(value);
  if (r.success) return ok(r.data);
  const issues = r.error.issues.slice(0, 16).map((i) => ({
    path: i.path.map((p) => (typeof p === 'symbol' ? p.toString() : p)).join('.'),
    message: i.message,
  }));
  const first = issues[0];
  const summary =
    first === undefined ? '' : `: ${first.path === '' ? '' : first.path + ': '}${first.message}`;
  return err(
    new AccordError(ErrorCode.PROTOCOL_SCHEMA, `invalid ${what}${summary}`, { details: { issues } }),
  );
}

/** Validates an unsigned event envelope. */
export function parseEnvelope(value: unknown): Result<EventEnvelope> {
  return parseWith(eventEnvelopeSchema, value, 'event envelope');
}

/** Validates a signed event's shape (does not verify its signature). */
export function parseSignedEvent(value: unknown): Result<SignedEvent> {
  return parseWith(signedEventSchema, value, 'signed event');
}

/** Validates the data of a `Verdict` event. */
export function parseVerdictData(data: unknown): Result<VerdictData> {
  return parseWith(verdictDataSchema, data, 'verdict data');
}

/** Validates the data of an `AcceptedVerdicts` event. */
export function parseAcceptedVerdictsData(data: unknown): Result<AcceptedVerdictsData> {
  return parseWith(acceptedVerdictsDataSchema, data, 'AcceptedVerdicts data');
}

/**
 * Every verdict `event` states: its data for a valid `Verdict`, one accepted verdict per target
 * for a valid `AcceptedVerdicts`, none for anything else.
 *
 * @remarks Reads the claim only: who signed `event` is the caller's to check.
 */
export function verdictsIn(event: Pick<SignedEvent, 'type' | 'data'>): VerdictData[] {
  const valid =
    event.type === SystemEventType.Verdict
      ? parseVerdictData(event.data).ok
      : event.type === SystemEventType.AcceptedVerdicts && parseAcceptedVerdictsData(event.data).ok;
  if (!valid) return [];
  // Checked against the schema, then read the one way every reader of verdicts does.
  const out: VerdictData[] = [];
  forEachVerdictIn(event, (v) => out.push(v));
  return out;
}

/** The verdict `event` states about `target` (see {@link verdictsIn}), or undefined. */
export function verdictAbout(
  event: Pick<SignedEvent, 'type' | 'data'>,
  target: EventId,
): VerdictData | undefined {
  return verdictsIn(event).find((v) => v.target === target);
}

/** Validates the data of a `RetryRequested` event. */
export function parseRetryRequestedData(data: unknown): Result<RetryRequestedData> {
  return parseWith(retryRequestedDataSchema, data, 'RetryRequested data');
}

/** Validates the data of a `DeadletterDiscarded` event. */
export function parseDeadletterDiscardedData(data: unknown): Result<DeadletterDiscardedData> {
  return parseWith(deadletterDiscardedDataSchema, data, 'DeadletterDiscarded data');
}

/** Validates the data of a `SegmentSealed` event. */
export function parseSegmentSealedData(data: unknown): Result<SegmentSealedData> {
  return parseWith(segmentSealedDataSchema, data, 'SegmentSealed data');
}

/** Validates the data of a `RosterUpdated` event. */
export function parseRosterUpdatedData(data: unknown): Result<RosterUpdatedData> {
  return parseWith(rosterUpdatedDataSchema, data, 'RosterUpdated data');
}

/**
 * The `version` of a `RosterUpdated` event signed by `relay`, or undefined for anything else (other
 * type or signer, malformed data).
 *
 * @remarks Reads the claim only: the signature is the caller's (the log verifies every event it holds).
 */
export function relayRosterVersion(event: SignedEvent, relay: DeviceId): number | undefined {
  if (event.type !== SystemEventType.RosterUpdated || event.device !== relay) return undefined;
  const data = parseRosterUpdatedData(event.data);
  return data.ok ? data.value.version : undefined;
}
