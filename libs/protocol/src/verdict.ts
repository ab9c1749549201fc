import type { DeviceId, EventId } from './ids.js';
import type { JsonValue } from './envelope.js';

/** Event types that the sync system itself writes (not domain facts). */
export const SystemEventType = {
  /** Relay-signed outcome for another event. Subject `{kind:'event', id: target}`. */
  Verdict: 'Verdict',
  /** A device asks the relay to validate a dead-lettered event again. */
  RetryRequested: 'RetryRequested',
  /** A device closes a deadletter without changing confirmed state ("leave server version"). */
  DeadletterDiscarded: 'DeadletterDiscarded',
  /**
   * Relay-signed membership of the facility (the whole roster, versioned). Subject
   * `{kind:'roster', id: facility}`; devices keep the highest `version` signed by their relay.
   */
  RosterUpdated: 'RosterUpdated',
} as const;
export type SystemEventType = (typeof SystemEventType)[keyof typeof SystemEventType];

/** Rejection codes of DESIGN.md §4. */
export const RejectionCode = {
  Invalid: 500,
  Rule: 422,
  Conflict: 409,
  NotFound: 404,
  Gone: 410,
  Forbidden: 403,
} as const;
export type RejectionCode = (typeof RejectionCode)[keyof typeof RejectionCode];

/** Data of an `accepted` verdict: `seq` is the relay's confirmed sequence number (1, 2, 3, … per facility). */
export interface AcceptedVerdictData {
  readonly target: EventId;
  readonly outcome: 'accepted';
  readonly seq: number;
  readonly ruleSet: string;
}

/**
 * Data of a `deadletter` verdict.
 *
 * @remarks `rule` is a stable rule id (`RULE_NEGATIVE_STOCK`, …); `details` carries what a
 * person needs to resolve it: current and proposed values (409), the survivor (410),
 * lot/balance/requested (422), the missing dependency (404).
 */
export interface DeadletterVerdictData {
  readonly target: EventId;
  readonly outcome: 'deadletter';
  readonly code: RejectionCode;
  readonly rule: string;
  readonly reason: string;
  readonly details: { readonly [key: string]: JsonValue };
  readonly ruleSet: string;
}

export type VerdictData = AcceptedVerdictData | DeadletterVerdictData;

/** Data of a `RetryRequested` event. */
export interface RetryRequestedData {
  readonly target: EventId;
}

/** Data of a `DeadletterDiscarded` event. */
export interface DeadletterDiscardedData {
  readonly target: EventId;
  readonly reason: string;
}

/** One device in a {@link RosterUpdatedData}. */
export interface RosterMember {
  readonly id: DeviceId;
  readonly name: string;
  readonly revoked: boolean;
}

/**
 * Data of a `RosterUpdated` event: the facility's complete membership at `version`.
 *
 * @remarks `version` grows by one with every enrollment or revocation; the newest wins. The
 * relay itself is not listed (its id is the event's `device`).
 */
export interface RosterUpdatedData {
  readonly version: number;
  readonly devices: readonly RosterMember[];
}
