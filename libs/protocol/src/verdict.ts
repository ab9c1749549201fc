import type { DeviceId, EventId, FacilityId } from './ids.js';
import type { JsonValue, SignedEvent } from './envelope.js';
import { canonicalStringify } from './canonical.js';

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

/** Longest `reason` of a deadletter the relay drafts (characters; the schema accepts up to 4096). */
export const MAX_VERDICT_REASON_CHARS = 1024;

/** Largest canonical encoding (UTF-8 bytes) of the `details` of a deadletter the relay drafts. */
export const MAX_VERDICT_DETAILS_BYTES = 16_384;

/** Longest `rule` and `ruleSet` of a verdict (characters, as the schema says). */
export const MAX_VERDICT_RULE_CHARS = 128;

/** Longest key kept in bounded deadletter details. */
const MAX_DETAILS_KEY_CHARS = 64;
/** Longest left-out key named in `details.truncated.omitted`. */
const MAX_OMITTED_KEY_CHARS = 32;
/** At most this many keys are named in `details.truncated.omitted`, and as many in `.shortened`. */
const MAX_NAMED_KEYS = 8;
/**
 * Room kept free for the `truncated` note: 8 kept keys of ≤ 64 and 8 left-out keys of ≤ 32
 * characters, each character at most 6 bytes escaped, with counts and punctuation.
 */
const TRUNCATION_NOTE_BYTES = 6144;

const UTF8 = new TextEncoder();
const LONE_SURROGATE = /\p{Cs}/gu;

/** UTF-8 size of the canonical encoding of `value`, or undefined when it is not canonical JSON. */
function encodedSize(value: unknown): number | undefined {
  try {
    return UTF8.encode(canonicalStringify(value as JsonValue)).length;
  } catch {
    return undefined;
  }
}

function isPlainRecord(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * `text` made writable and at most `maxChars` long: lone surrogates become U+FFFD, and a longer
 * text is cut (never inside a surrogate pair) and ends with `…`.
 */
export function boundText(text: string, maxChars: number): string {
  const s = String(text).replace(LONE_SURROGATE, '\uFFFD');
  if (s.length <= maxChars) return s;
  let cut = Math.max(0, maxChars - 1);
  const last = s.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${s.slice(0, cut)}…`;
}

/**
 * `details` bounded to {@link MAX_VERDICT_DETAILS_BYTES} of canonical JSON.
 *
 * @remarks Details that fit are returned as they are. Otherwise members are kept whole in key
 * order while they fit, an array that does not fit keeps its longest prefix that does, and the
 * rest is left out; `truncated: {bytes, omitted, shortened}` then says what happened (the
 * original size, up to 8 left-out keys, and up to 8 shortened arrays with their full lengths).
 * Anything that is not a plain JSON object, or not encodable, counts as left out. Total: any
 * input gives writable details.
 */
export function boundDetails(details: unknown): { readonly [key: string]: JsonValue } {
  if (!isPlainRecord(details)) return {};
  let keys: string[];
  try {
    keys = Object.keys(details);
  } catch {
    return {};
  }
  const whole = encodedSize(details);
  if (whole !== undefined && whole <= MAX_VERDICT_DETAILS_BYTES) {
    return details as { readonly [key: string]: JsonValue };
  }
  const budget = MAX_VERDICT_DETAILS_BYTES - TRUNCATION_NOTE_BYTES;
  const out: Record<string, JsonValue> = {};
  const omitted: string[] = [];
  const shortened: Record<string, number> = {};
  let omittedCount = 0;
  let used = 2; // {}
  const leaveOut = (key: string): void => {
    omittedCount++;
    if (omitted.length < MAX_NAMED_KEYS) omitted.push(boundText(key, MAX_OMITTED_KEY_CHARS));
  };
  for (const key of keys.sort()) {
    if (key.length > MAX_DETAILS_KEY_CHARS || key === 'truncated' || key === '__proto__') {
      leaveOut(key);
      continue;
    }
    let value: unknown;
    try {
      value = details[key];
    } catch {
      leaveOut(key);
      continue;
    }
    const keyCost = (encodedSize(key) ?? Infinity) + 2; // "key": and a comma
    const size = encodedSize(value);
    if (size !== undefined && used + keyCost + size <= budget) {
      out[key] = value as JsonValue;
      used += keyCost + size;
      continue;
    }
    if (Array.isArray(value) && Object.keys(shortened).length < MAX_NAMED_KEYS) {
      const kept: JsonValue[] = [];
      let u = used + keyCost + 2;
      for (const item of value as unknown[]) {
        const s = encodedSize(item);
        if (s === undefined || u + s + 1 > budget) break;
        kept.push(item as JsonValue);
        u += s + 1;
      }
      if (kept.length > 0) {
        out[key] = kept;
        used = u;
        shortened[key] = value.length;
        continue;
      }
    }
    leaveOut(key);
  }
  out['truncated'] = {
    bytes: whole ?? null,
    omitted,
    ...(omittedCount > omitted.length ? { omittedCount } : {}),
    shortened,
  };
  return out;
}

/**
 * A deadletter verdict bounded by construction: `reason` to {@link MAX_VERDICT_REASON_CHARS},
 * `details` by {@link boundDetails}, `rule` and `ruleSet` to {@link MAX_VERDICT_RULE_CHARS}.
 *
 * @remarks A verdict echoes what it judges, and what it judges may be hostile: drafted through
 * this, its signed event stays far below the event size limit (≈ 24 KiB at most) and passes the
 * verdict schema, so writing it can never fail for its content.
 */
export function boundDeadletter(v: DeadletterVerdictData): DeadletterVerdictData {
  const rule = boundText(v.rule, MAX_VERDICT_RULE_CHARS);
  const ruleSet = boundText(v.ruleSet, MAX_VERDICT_RULE_CHARS);
  return {
    target: v.target,
    outcome: 'deadletter',
    code: v.code,
    rule: rule === '' ? 'UNKNOWN' : rule,
    reason: boundText(v.reason, MAX_VERDICT_REASON_CHARS),
    details: boundDetails(v.details),
    ruleSet: ruleSet === '' ? 'UNKNOWN' : ruleSet,
  };
}

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

/**
 * The `target` of verdict, retry or discard data (`{target, …}`), read leniently: undefined when
 * `data` is not an object with a string `target`.
 */
export function readTarget(data: unknown): EventId | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const target = (data as Record<string, unknown>)['target'];
  return typeof target === 'string' ? (target as EventId) : undefined;
}

/** Stands for a missing `ruleSet` (as {@link boundDeadletter} does for an empty one). */
const UNKNOWN_RULE_SET = 'UNKNOWN';

/**
 * A lenient, allocation-light reading of a `Verdict` event's data, or undefined when it is not
 * shaped like a verdict (for readers of events whose signature the log already checked).
 *
 * @remarks What it needs: a string `target`; `accepted` with a `seq` that is a safe integer ≥ 1;
 * `deadletter` with a number `code` and a string `rule`. What it fills in: a missing `ruleSet`
 * is `UNKNOWN`, a missing `reason` empty, `details` that are not an object `{}`. It does not check
 * the schema (ids, code values, lengths): {@link verdictsIn} of the schemas does, then reads with this.
 */
export function readVerdictData(data: unknown): VerdictData | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const d = data as Record<string, unknown>;
  const target = d['target'];
  if (typeof target !== 'string') return undefined;
  const ruleSet = typeof d['ruleSet'] === 'string' ? d['ruleSet'] : UNKNOWN_RULE_SET;
  if (d['outcome'] === 'accepted') {
    const seq = d['seq'];
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
    return { target: target as EventId, outcome: 'accepted', seq, ruleSet };
  }
  if (d['outcome'] === 'deadletter') {
    const { code, rule, reason, details } = d;
    if (typeof code !== 'number' || typeof rule !== 'string') return undefined;
    return {
      target: target as EventId,
      outcome: 'deadletter',
      code: code as RejectionCode,
      rule,
      reason: typeof reason === 'string' ? reason : '',
      details:
        typeof details === 'object' && details !== null && !Array.isArray(details)
          ? (details as { readonly [key: string]: JsonValue })
          : {},
      ruleSet,
    };
  }
  return undefined;
}

/**
 * Calls `visit` with every verdict `event` states, read leniently: the one of a `Verdict`
 * ({@link readVerdictData}), one accepted verdict per target of an `AcceptedVerdicts`
 * ({@link readAcceptedVerdicts}, `seq` = `firstSeq + i`, in target order), none for anything
 * else or for data not shaped like one. Returns how many it visited.
 *
 * @remarks The one reading of verdicts out of relay events: the domain's classification, the
 * relay's adjudicator (its own history) and the strict {@link verdictsIn} all go through it.
 * Reads the claim only: who signed `event`, and which verdict is the latest (the highest relay
 * envelope `seq`), is the caller's to decide.
 */
export function forEachVerdictIn(
  event: Pick<SignedEvent, 'type' | 'data'>,
  visit: (verdict: VerdictData) => void,
): number {
  if (event.type === SystemEventType.Verdict) {
    const v = readVerdictData(event.data);
    if (v === undefined) return 0;
    visit(v);
    return 1;
  }
  if (event.type !== SystemEventType.AcceptedVerdicts) return 0;
  const batch = readAcceptedVerdicts(event.data);
  if (batch === undefined) return 0;
  const { ruleSet, firstSeq, targets } = batch;
  for (let i = 0; i < targets.length; i++) {
    visit({ target: targets[i]!, outcome: 'accepted', seq: firstSeq + i, ruleSet });
  }
  return targets.length;
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

/** What an admin elevation permits: discarding a deadletter, or re-submitting a date range. */
export type ElevationAction = 'discard' | 'resubmit';

/**
 * A relay-signed admin elevation: `relay` allows `device` of `facility` to perform `action`
 * from `issued` until `expires` (ms since the epoch).
 *
 * @remarks `sig` is the relay's Ed25519 signature (base64url) over {@link elevationGrantBytes} of
 * the other fields. Only the relay that signed it checks it; devices carry it.
 */
export interface ElevationGrant {
  readonly v: 1;
  readonly relay: DeviceId;
  readonly facility: FacilityId;
  readonly device: DeviceId;
  readonly action: ElevationAction;
  readonly issued: number;
  readonly expires: number;
  readonly sig: string;
}

/** Data of a `DeadletterDiscarded` event. */
export interface DeadletterDiscardedData {
  readonly target: EventId;
  readonly reason: string;
  /** The admin elevation, where the relay's facility policy asks for one (issue #10). */
  readonly grant?: ElevationGrant;
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
