import type { DeviceId, EventId } from './ids.js';
import type { JsonValue } from './envelope.js';

/** Event types that the sync system itself writes (not domain facts). */
export const SystemEventType = {
  /** Relay-signed outcome for another event. Subject `{kind:'event', id: target}`. */
  Verdict: 'Verdict',
  /**
   * Relay-signed `accepted` verdicts for a run of events at once (data {@link AcceptedVerdictsData}).
   * Subject `{kind:'verdicts', id: facility}`. Each target still has exactly one verdict per
   * submission; one relay signature covers the run. Deadletters are always single `Verdict` events.
   */
  AcceptedVerdicts: 'AcceptedVerdicts',
  /** A device asks the relay to validate a dead-lettered event again. */
  RetryRequested: 'RetryRequested',
  /** A device closes a deadletter without changing confirmed state ("leave server version"). */
  DeadletterDiscarded: 'DeadletterDiscarded',
  /**
   * Relay-signed membership of the facility (the whole roster, versioned). Subject
   * `{kind:'roster', id: facility}`; devices keep the highest `version` signed by their relay.
   */
  RosterUpdated: 'RosterUpdated',
  /**
   * Relay-signed seal of one full segment of a device's events (data {@link SegmentSealedData}),
   * subject `{kind:'segment', id: '<device>/<index>'}`: the relay verified every event of it, so a
   * device holding a matching digest need not verify their signatures one by one (DESIGN §8).
   */
  SegmentSealed: 'SegmentSealed',
} as const;
export type SystemEventType = (typeof SystemEventType)[keyof typeof SystemEventType];

/** The system event types only the relay may sign; a device-signed one is refused (403). */
export const RELAY_EVENT_TYPES: ReadonlySet<string> = new Set<SystemEventType>([
  SystemEventType.Verdict,
  SystemEventType.AcceptedVerdicts,
  SystemEventType.RosterUpdated,
  SystemEventType.SegmentSealed,
]);

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

/** Most targets in one `AcceptedVerdicts` event (≈ 30 KB of ids, well under the event size limit). */
export const MAX_ACCEPTED_PER_EVENT = 1000;

/**
 * Data of an `AcceptedVerdicts` event: `targets[i]` is accepted with confirmed sequence number
 * `firstSeq + i`.
 *
 * @remarks The relay issues accepted verdicts with consecutive `seq` numbers, so a run of them
 * needs only the first. Targets are unique within one event.
 */
export interface AcceptedVerdictsData {
  readonly ruleSet: string;
  readonly firstSeq: number;
  readonly targets: readonly EventId[];
}

/**
 * A lenient, allocation-light reading of `AcceptedVerdicts` data, or undefined when it is not
 * shaped like one (for readers of events whose schema and signature the log already checked).
 */
export function readAcceptedVerdicts(data: unknown): AcceptedVerdictsData | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  const { ruleSet, firstSeq, targets } = d;
  if (typeof ruleSet !== 'string' || typeof firstSeq !== 'number' || !Number.isSafeInteger(firstSeq)) {
    return undefined;
  }
  if (firstSeq < 1 || !Array.isArray(targets) || targets.length > MAX_ACCEPTED_PER_EVENT) return undefined;
  for (const t of targets) if (typeof t !== 'string') return undefined;
  return { ruleSet, firstSeq, targets: targets as EventId[] };
}

/** The accepted verdicts of an `AcceptedVerdicts` data, one {@link AcceptedVerdictData} per target. */
export function expandAcceptedVerdicts(data: AcceptedVerdictsData): AcceptedVerdictData[] {
  return data.targets.map((target, i) => ({
    target,
    outcome: 'accepted',
    seq: data.firstSeq + i,
    ruleSet: data.ruleSet,
  }));
}

/** Data of a `RetryRequested` event. */
export interface RetryRequestedData {
  readonly target: EventId;
}

/** Data of a `DeadletterDiscarded` event. */
export interface DeadletterDiscardedData {
  readonly target: EventId;
  readonly reason: string;
}

/**
 * Data of a `SegmentSealed` event: segment `index` of `device` holds its events with sequence
 * numbers `index * size + 1` … `(index + 1) * size`, and `digest` is their
 * {@link segmentDigest} in sequence order.
 */
export interface SegmentSealedData {
  readonly device: DeviceId;
  readonly index: number;
  readonly size: number;
  readonly digest: string;
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
