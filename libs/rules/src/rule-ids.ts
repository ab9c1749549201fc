import { RejectionCode } from '@accord/protocol';

/** The malformed-payload rule: data does not match the event type's schema (500). */
export const RULE_SCHEMA = 'RULE_SCHEMA';
/** The event type is not in the catalogue (or is a relay-only `Verdict`) (500). */
export const RULE_UNKNOWN_TYPE = 'RULE_UNKNOWN_TYPE';
/** The event type is known but its schema version is not (500). */
export const RULE_UNKNOWN_VERSION = 'RULE_UNKNOWN_VERSION';
/** `envelope.subject` differs from the subject derived from the data (500). */
export const RULE_SUBJECT_MISMATCH = 'RULE_SUBJECT_MISMATCH';
/** The event could not be processed at all (a hostile or corrupt object) (500). */
export const RULE_UNPROCESSABLE = 'RULE_UNPROCESSABLE';
/** An event listed in `deps` is not (yet) in the confirmed state (404, retried when it arrives). */
export const RULE_DEPENDENCY_MISSING = 'RULE_DEPENDENCY_MISSING';
/** The subject or a referenced record (patient, lot, encounter, appointment) is unknown (404). */
export const RULE_NOT_FOUND = 'RULE_NOT_FOUND';
/** The patient was merged into another record; `details.survivorId` names it (410). */
export const RULE_MERGED = 'RULE_MERGED';
/** The same field was changed since the device's `basis` (409, carries both values). */
export const RULE_STALE_BASIS = 'RULE_STALE_BASIS';
/** Another patient already holds this national id (409, carries that patient). */
export const RULE_DUPLICATE_NATIONAL_ID = 'RULE_DUPLICATE_NATIONAL_ID';
/** A creation event for a record id that already exists (409). */
export const RULE_ALREADY_EXISTS = 'RULE_ALREADY_EXISTS';
/** The lot's balance would go below zero (422: lot, balance, requested). */
export const RULE_NEGATIVE_STOCK = 'RULE_NEGATIVE_STOCK';
/** The dose number is not the next one for the antigen, or beyond the schedule (422). */
export const RULE_DOSE_OUT_OF_SEQUENCE = 'RULE_DOSE_OUT_OF_SEQUENCE';
/** Dose 1 below the minimum age, or dose n+1 before the minimum interval after dose n (422). */
export const RULE_DOSE_TOO_EARLY = 'RULE_DOSE_TOO_EARLY';
/** A vaccination or appointment dated before the patient's birth (or a birth date after a recorded dose) (422). */
export const RULE_BEFORE_BIRTH = 'RULE_BEFORE_BIRTH';
/** A date further in the future than {@link FUTURE_DATE_ALLOWANCE_MS} allows (422). */
export const RULE_IN_FUTURE = 'RULE_IN_FUTURE';
/** The lot expired before the vaccination date (422; a dose on the expiry day is allowed). */
export const RULE_LOT_EXPIRED = 'RULE_LOT_EXPIRED';
/** The lot holds another antigen than the event names (422). */
export const RULE_LOT_ANTIGEN_MISMATCH = 'RULE_LOT_ANTIGEN_MISMATCH';
/** A further receipt of a known lot names another expiry date (422). */
export const RULE_LOT_EXPIRY_MISMATCH = 'RULE_LOT_EXPIRY_MISMATCH';
/** The antigen is not in the schedule (`ANTIGEN_SCHEDULE`) (422). */
export const RULE_UNKNOWN_ANTIGEN = 'RULE_UNKNOWN_ANTIGEN';
/** Check-in of a patient who already has a waiting or in-progress encounter (422). */
export const RULE_ALREADY_IN_QUEUE = 'RULE_ALREADY_IN_QUEUE';
/** An encounter or appointment transition that its current state does not allow (422). */
export const RULE_INVALID_TRANSITION = 'RULE_INVALID_TRANSITION';

/** The signing device is not in the facility's roster (403; checked by the relay). */
export const RULE_UNKNOWN_DEVICE = 'RULE_UNKNOWN_DEVICE';
/** The signing device was revoked from the facility's roster (403; checked by the relay). */
export const RULE_DEVICE_REVOKED = 'RULE_DEVICE_REVOKED';
/** The event names another facility than the relay's (403; checked by the relay). */
export const RULE_WRONG_FACILITY = 'RULE_WRONG_FACILITY';
/** A device signed an event type only the relay may write (`Verdict`, `AcceptedVerdicts`, `RosterUpdated`) (403). */
export const RULE_RELAY_ONLY = 'RULE_RELAY_ONLY';
/** A retry or discard names an event whose latest verdict is not an unresolved deadletter (409). */
export const RULE_NOT_DEADLETTERED = 'RULE_NOT_DEADLETTERED';
/** An amend (`supersedes`) names an event the relay has accepted: accepted history is not replaced (409). */
export const RULE_SUPERSEDES_ACCEPTED = 'RULE_SUPERSEDES_ACCEPTED';

/** Every rule id with its rejection code, for documentation and user interfaces. */
export const RULES: Readonly<Record<string, RejectionCode>> = Object.freeze({
  [RULE_SCHEMA]: RejectionCode.Invalid,
  [RULE_UNKNOWN_TYPE]: RejectionCode.Invalid,
  [RULE_UNKNOWN_VERSION]: RejectionCode.Invalid,
  [RULE_SUBJECT_MISMATCH]: RejectionCode.Invalid,
  [RULE_UNPROCESSABLE]: RejectionCode.Invalid,
  [RULE_DEPENDENCY_MISSING]: RejectionCode.NotFound,
  [RULE_NOT_FOUND]: RejectionCode.NotFound,
  [RULE_MERGED]: RejectionCode.Gone,
  [RULE_STALE_BASIS]: RejectionCode.Conflict,
  [RULE_DUPLICATE_NATIONAL_ID]: RejectionCode.Conflict,
  [RULE_ALREADY_EXISTS]: RejectionCode.Conflict,
  [RULE_NEGATIVE_STOCK]: RejectionCode.Rule,
  [RULE_DOSE_OUT_OF_SEQUENCE]: RejectionCode.Rule,
  [RULE_DOSE_TOO_EARLY]: RejectionCode.Rule,
  [RULE_BEFORE_BIRTH]: RejectionCode.Rule,
  [RULE_IN_FUTURE]: RejectionCode.Rule,
  [RULE_LOT_EXPIRED]: RejectionCode.Rule,
  [RULE_LOT_ANTIGEN_MISMATCH]: RejectionCode.Rule,
  [RULE_LOT_EXPIRY_MISMATCH]: RejectionCode.Rule,
  [RULE_UNKNOWN_ANTIGEN]: RejectionCode.Rule,
  [RULE_ALREADY_IN_QUEUE]: RejectionCode.Rule,
  [RULE_INVALID_TRANSITION]: RejectionCode.Rule,
  [RULE_UNKNOWN_DEVICE]: RejectionCode.Forbidden,
  [RULE_DEVICE_REVOKED]: RejectionCode.Forbidden,
  [RULE_WRONG_FACILITY]: RejectionCode.Forbidden,
  [RULE_RELAY_ONLY]: RejectionCode.Forbidden,
  [RULE_NOT_DEADLETTERED]: RejectionCode.Conflict,
  [RULE_SUPERSEDES_ACCEPTED]: RejectionCode.Conflict,
});

/**
 * How far ahead of the relay's clock (`ctx.nowMs`) the start (00:00 UTC) of an event's date may
 * lie: one day.
 *
 * @remarks Dates are the facility's local calendar day; a device east of UTC (up to UTC+14) is
 * legitimately on "tomorrow" in UTC, and tablet clocks drift. So a date is accepted while
 * `dateStartMs(date) <= nowMs + FUTURE_DATE_ALLOWANCE_MS`, i.e. up to the next UTC day.
 */
export const FUTURE_DATE_ALLOWANCE_MS = 86_400_000;
