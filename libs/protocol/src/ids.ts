declare const brand: unique symbol;
/** A nominal type: `T` tagged so that ids of different kinds cannot be mixed up. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** Client-made, time-sortable event id (26 Crockford base32 characters, ULID layout). */
export type EventId = Brand<string, 'EventId'>;
/** A device's id: `d` followed by the base64url of its 32-byte Ed25519 public key. */
export type DeviceId = Brand<string, 'DeviceId'>;
/** A facility's id, chosen at set-up (letters, digits, `-`, `_`; 1-64 characters). */
export type FacilityId = Brand<string, 'FacilityId'>;
/** A hybrid logical clock timestamp, see `hlc.ts`; sorts as a string. */
export type Hlc = Brand<string, 'Hlc'>;

/** Cast helpers for values already validated (by a schema or by construction). */
export const asEventId = (s: string): EventId => s as EventId;
export const asDeviceId = (s: string): DeviceId => s as DeviceId;
export const asFacilityId = (s: string): FacilityId => s as FacilityId;
export const asHlc = (s: string): Hlc => s as Hlc;
