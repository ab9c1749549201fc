import { fromBase64Url, toBase64Url } from './base64url.js';
import { canonicalEncode } from './canonical.js';
import type { DeviceId } from './ids.js';
import { signBytes, verifyBytes, type DeviceKeyPair } from './keys.js';
import type { Result } from './result.js';
import { elevationGrantSchema, parseWith } from './schemas.js';
import type { ElevationAction, ElevationGrant } from './verdict.js';
import { subtle } from './webcrypto.js';

/** Default lifetime of an elevation grant the relay issues: 10 minutes. */
export const DEFAULT_ELEVATION_TTL_MS = 10 * 60_000;

/** The actions an elevation may grant. */
export const ELEVATION_ACTIONS: readonly ElevationAction[] = ['discard', 'resubmit'];

/** Headers of a request a device signs to its relay (see {@link deviceRequestBytes}). */
export const DeviceRequestHeader = {
  Device: 'x-accord-device',
  Time: 'x-accord-time',
  Signature: 'x-accord-signature',
} as const;

/** How far a signed device request's time may be from the relay's clock: 5 minutes. */
export const DEVICE_REQUEST_MAX_SKEW_MS = 5 * 60_000;

/** The fields of a grant that its signature covers. */
export type ElevationGrantFields = Omit<ElevationGrant, 'sig'>;

/**
 * The bytes a relay signs for a grant: a fixed prefix (so no other signed object can pass for a
 * grant) then the canonical JSON of every field but `sig`.
 */
export function elevationGrantBytes(fields: ElevationGrantFields): Uint8Array {
  const { v, relay, facility, device, action, issued, expires } = fields;
  const body = canonicalEncode({ v, relay, facility, device, action, issued, expires });
  const prefix = new TextEncoder().encode('accord-elevation-grant-v1\n');
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
}

/** Signs a grant with the relay's key (`fields.relay` must be that key's id). */
export async function signElevationGrant(
  relayKey: DeviceKeyPair,
  fields: Omit<ElevationGrantFields, 'relay' | 'v'>,
): Promise<ElevationGrant> {
  const all: ElevationGrantFields = { v: 1, relay: relayKey.deviceId, ...fields };
  return { ...all, sig: toBase64Url(await signBytes(relayKey, elevationGrantBytes(all))) };
}

/** True when `grant.sig` is `grant.relay`'s signature over the grant (says nothing of expiry). */
export async function verifyElevationGrantSignature(grant: ElevationGrant): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(grant.sig);
  } catch {
    return false;
  }
  return verifyBytes(grant.relay, elevationGrantBytes(grant), sig);
}

/** Validates an untrusted grant's shape (not its signature). */
export function parseElevationGrant(value: unknown): Result<ElevationGrant> {
  return parseWith(elevationGrantSchema, value, 'elevation grant');
}

/**
 * The bytes a device signs to authenticate one HTTP request to its relay: a fixed prefix, the
 * method, the path with its query, the time (ms) and the base64url SHA-256 of the body.
 *
 * @remarks Binding the body and the path means a captured signature cannot carry another
 * password guess or another question; the time bounds replays to {@link DEVICE_REQUEST_MAX_SKEW_MS}.
 */
export async function deviceRequestBytes(
  method: string,
  pathAndQuery: string,
  timeMs: number,
  body: Uint8Array,
): Promise<Uint8Array> {
  const digest = toBase64Url(new Uint8Array(await subtle().digest('SHA-256', body)));
  return new TextEncoder().encode(
    `accord-device-request-v1\n${method.toUpperCase()}\n${pathAndQuery}\n${timeMs}\n${digest}`,
  );
}

/** The headers that authenticate a request of `key`'s device (see {@link deviceRequestBytes}). */
export async function signDeviceRequest(
  key: DeviceKeyPair,
  method: string,
  pathAndQuery: string,
  timeMs: number,
  body: Uint8Array,
): Promise<Record<string, string>> {
  const sig = await signBytes(key, await deviceRequestBytes(method, pathAndQuery, timeMs, body));
  return {
    [DeviceRequestHeader.Device]: key.deviceId,
    [DeviceRequestHeader.Time]: String(timeMs),
    [DeviceRequestHeader.Signature]: toBase64Url(sig),
  };
}

/** True when `signature` (base64url) is `device`'s signature over the request. */
export async function verifyDeviceRequest(
  device: DeviceId,
  method: string,
  pathAndQuery: string,
  timeMs: number,
  body: Uint8Array,
  signature: string,
): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(signature);
  } catch {
    return false;
  }
  return verifyBytes(device, await deviceRequestBytes(method, pathAndQuery, timeMs, body), sig);
}

/** One day of a facility's event set: how many events, and the SHA-256 over their sorted ids. */
export interface DayDigest {
  /** `YYYY-MM-DD`, the UTC day of the event id's time. */
  readonly day: string;
  readonly count: number;
  /** base64url SHA-256 of the day's event ids, sorted, each followed by `\n`. */
  readonly digest: string;
}

/** The UTC day (`YYYY-MM-DD`) of a time in ms. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The {@link DayDigest} of one day's ids (any order; sorted here). */
export async function dayDigest(day: string, ids: readonly string[]): Promise<DayDigest> {
  const sorted = [...ids].sort();
  const text = sorted.map((id) => `${id}\n`).join('');
  const hash = await subtle().digest('SHA-256', new TextEncoder().encode(text));
  return { day, count: sorted.length, digest: toBase64Url(new Uint8Array(hash)) };
}
