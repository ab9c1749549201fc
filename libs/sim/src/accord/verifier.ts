import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { EventVerifier, ReceivedEvent } from '@accord/log';
import {
  envelopeBytes,
  fromBase64Url,
  isDeviceId,
  publicKeyFromDeviceId,
  toBase64Url,
} from '@accord/protocol';
import { VerificationCache } from './verification-cache.js';

/** Verification answers a run keeps (≈ 0.5 kB each): more than the events of a bench run. */
const CACHE_LIMIT = 50_000;

/**
 * An {@link EventVerifier} for simulated devices: `node:crypto`'s synchronous Ed25519 `verify`,
 * results shared by every device of a run ({@link VerificationCache}: keyed by the received
 * bytes, bounded).
 *
 * @remarks The log's default verifier runs WebCrypto on libuv's thread pool, whose answers arrive
 * after a wall-clock delay: on the simulator's clock they would land at an instant that depends
 * on the machine, and a seed would not replay. Verifying on this thread resolves within the
 * scheduler step that received the events. A verification is a pure function of the event's
 * bytes, so one device's answer serves the others (issue #11's speed note); the cache is per run.
 * The received bytes are the event's canonical encoding (the log's screen decoded the event from
 * them), so equal bytes mean an equal event.
 */
export function sharedSyncVerifier(cache = new VerificationCache(CACHE_LIMIT)): EventVerifier {
  const keys = new Map<string, KeyObject | null>();
  const keyOf = (device: string): KeyObject | null => {
    let k = keys.get(device);
    if (k === undefined) {
      k = null;
      if (isDeviceId(device)) {
        try {
          const x = toBase64Url(publicKeyFromDeviceId(device));
          k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
        } catch {
          k = null;
        }
      }
      keys.set(device, k);
    }
    return k;
  };
  const check = ({ event, bytes }: ReceivedEvent): boolean => {
    let ok = cache.get(event.sig, bytes);
    if (ok === undefined) {
      const key = keyOf(event.device);
      try {
        ok = key !== null && verify(null, envelopeBytes(event), key, fromBase64Url(event.sig));
      } catch {
        ok = false;
      }
      cache.set(event.sig, bytes, ok);
    }
    return ok;
  };
  return (received) => Promise.resolve(received.map(check));
}
