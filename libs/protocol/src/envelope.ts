import type { DeviceId, EventId, FacilityId, Hlc } from './ids.js';

/** Any JSON value that canonical encoding accepts (finite numbers only, no undefined). */
export type JsonValue =
  null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** What an event is about: a record kind (`patient`, `lot`, `encounter`, …) and its id. */
export interface Subject {
  readonly kind: string;
  readonly id: string;
}

/**
 * An immutable fact, before signing. Every field is covered by the signature.
 *
 * @remarks `seq` is contiguous per device from 1. `basis` (updates only) maps each field
 * the event changes to the id of the event that last set it as the device saw it, or
 * null when the device saw it unset. `supersedes` marks an amend: this event replaces
 * a dead-lettered one.
 */
export interface EventEnvelope {
  readonly v: 1;
  readonly id: EventId;
  readonly facility: FacilityId;
  readonly device: DeviceId;
  readonly seq: number;
  readonly hlc: Hlc;
  readonly type: string;
  readonly schema: number;
  readonly subject: Subject;
  readonly deps: readonly EventId[];
  readonly basis?: Readonly<Record<string, EventId | null>>;
  readonly supersedes?: EventId;
  readonly data: JsonValue;
}

/** An envelope with its device's Ed25519 signature (base64url, 64 bytes) over `canonicalEncode(envelope)`. */
export interface SignedEvent extends EventEnvelope {
  readonly sig: string;
}
