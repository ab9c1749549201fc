import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import {
  elevationGrantBytes,
  fromBase64Url,
  parseElevationGrant,
  publicKeyFromDeviceId,
  toBase64Url,
  type DeviceId,
  type ElevationAction,
  type FacilityId,
} from '@accord/protocol';

/** The rule of a 403 deadletter: a discard the facility policy guards came without a valid grant. */
export const RULE_ELEVATION_REQUIRED = 'RULE_ELEVATION_REQUIRED';

/** What a facility's administrator decided the relay enforces (issue #10). */
export interface FacilityPolicy {
  /**
   * Event types whose deadletters only a `DeadletterDiscarded` carrying a valid `discard` grant
   * may discard ("leave server version" on clinical events needs the admin).
   */
  readonly discardNeedsElevation: readonly string[];
}

/**
 * The default policy: discarding a deadlettered clinical event (a vaccination, a registration,
 * an encounter's check-in or transition) needs the admin elevation.
 */
export const DEFAULT_FACILITY_POLICY: FacilityPolicy = {
  discardNeedsElevation: [
    'VaccinationAdministered',
    'PatientRegistered',
    'PatientCheckedIn',
    'EncounterStarted',
    'EncounterCompleted',
    'EncounterCancelled',
  ],
};

/** Grants may be issued this long before the relay's clock says (devices' clocks drift). */
const ISSUE_SKEW_MS = 5 * 60_000;

/** What a grant must name to be valid for one use. */
export interface GrantExpectation {
  readonly relay: DeviceId;
  readonly facility: FacilityId;
  readonly device: DeviceId;
  readonly action: ElevationAction;
  /** When the action happened (ms): within `[issued - skew, expires]`. */
  readonly atMs: number;
}

/**
 * Checks grants signed by this relay, synchronously (the adjudicator is synchronous): undefined
 * when valid, else why not (`missing`, `malformed`, `other-relay`, `other-facility`,
 * `other-device`, `other-action`, `expired`, `not-yet-valid`, `bad-signature`).
 *
 * @remarks Uses node:crypto's one-shot Ed25519 verification; the relay's public key is imported once.
 */
export class GrantChecker {
  #key: KeyObject | undefined;
  readonly #relay: DeviceId;

  constructor(relay: DeviceId) {
    this.#relay = relay;
  }

  check(grant: unknown, expect: GrantExpectation): string | undefined {
    if (grant === undefined) return 'missing';
    const parsed = parseElevationGrant(grant);
    if (!parsed.ok) return 'malformed';
    const g = parsed.value;
    if (g.relay !== expect.relay || g.relay !== this.#relay) return 'other-relay';
    if (g.facility !== expect.facility) return 'other-facility';
    if (g.device !== expect.device) return 'other-device';
    if (g.action !== expect.action) return 'other-action';
    if (expect.atMs > g.expires) return 'expired';
    if (expect.atMs < g.issued - ISSUE_SKEW_MS) return 'not-yet-valid';
    let sig: Uint8Array;
    try {
      sig = fromBase64Url(g.sig);
    } catch {
      return 'bad-signature';
    }
    this.#key ??= createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(publicKeyFromDeviceId(this.#relay)) },
      format: 'jwk',
    });
    return verifySignature(null, elevationGrantBytes(g), this.#key, sig) ? undefined : 'bad-signature';
  }
}
