import { z } from 'zod';
import { fromBase64Url, toBase64Url } from './base64url.js';
import type { SignedEvent } from './envelope.js';
import type { DeviceId, FacilityId } from './ids.js';
import { signBytes, verifyBytes, type DeviceKeyPair } from './keys.js';
import type { Result } from './result.js';
import {
  deviceIdSchema,
  facilityIdSchema,
  MAX_DEVICE_NAME,
  parseWith,
  signedEventSchema,
} from './schemas.js';

/** The relay's enrollment endpoint: `POST` a {@link EnrollRequest} as JSON. */
export const ENROLL_PATH = '/enroll';

/** Enrollment tokens: `acc1.` then 43 base64url characters (32 random bytes). */
export const ENROLL_TOKEN_PATTERN = /^acc1\.[A-Za-z0-9_-]{43}$/;

/**
 * What a new device sends to enroll: the one-time token, its id (its public key) and name, and a
 * proof that it holds the key.
 *
 * @remarks `proof` is the device's signature over {@link enrollProofBytes}`(token, device)`, so a
 * token seen in transit cannot enroll another key.
 */
export interface EnrollRequest {
  readonly token: string;
  readonly device: DeviceId;
  readonly name: string;
  readonly proof: string;
}

/**
 * The relay's answer to a successful enrollment: the facility, the relay's device id (whose
 * verdicts and rosters to trust) and the current relay-signed `RosterUpdated` event, which
 * already lists the new device.
 */
export interface EnrollResponse {
  readonly facility: FacilityId;
  readonly relay: DeviceId;
  readonly roster: SignedEvent;
}

/** Schema of an {@link EnrollRequest}; strict. */
export const enrollRequestSchema: z.ZodType<EnrollRequest> = z.strictObject({
  token: z.string().regex(ENROLL_TOKEN_PATTERN, 'expected an enrollment token'),
  device: deviceIdSchema,
  name: z
    .string()
    .min(1)
    .max(MAX_DEVICE_NAME)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'name must not contain control characters'),
  proof: z.string().regex(/^[A-Za-z0-9_-]{86}$/, 'expected a base64url Ed25519 signature'),
});

/** Schema of an {@link EnrollResponse}; strict. */
export const enrollResponseSchema: z.ZodType<EnrollResponse> = z.strictObject({
  facility: facilityIdSchema,
  relay: deviceIdSchema,
  roster: signedEventSchema,
});

/** Validates an enrollment request body. */
export function parseEnrollRequest(value: unknown): Result<EnrollRequest> {
  return parseWith(enrollRequestSchema, value, 'enrollment request');
}

/** Validates an enrollment response body. */
export function parseEnrollResponse(value: unknown): Result<EnrollResponse> {
  return parseWith(enrollResponseSchema, value, 'enrollment response');
}

/** The bytes a device signs to prove it holds the key it enrolls: a domain tag, the token and the id. */
export function enrollProofBytes(token: string, device: DeviceId): Uint8Array {
  return new TextEncoder().encode(`accord-enroll/1\n${token}\n${device}`);
}

/** Builds the {@link EnrollRequest} of a device key for a token. */
export async function makeEnrollRequest(
  key: DeviceKeyPair,
  token: string,
  name: string,
): Promise<EnrollRequest> {
  const proof = toBase64Url(await signBytes(key, enrollProofBytes(token, key.deviceId)));
  return { token, device: key.deviceId, name, proof };
}

/** True when `request.proof` is the device's signature over its token and id. Never rejects. */
export async function verifyEnrollProof(request: EnrollRequest): Promise<boolean> {
  try {
    return await verifyBytes(
      request.device,
      enrollProofBytes(request.token, request.device),
      fromBase64Url(request.proof),
    );
  } catch {
    return false;
  }
}
