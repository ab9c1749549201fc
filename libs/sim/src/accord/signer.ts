import { KeyObject, sign, type webcrypto } from 'node:crypto';
import type { DeviceKeyPair, EventSigner } from '@accord/protocol';

/**
 * A signer of own events for simulated devices and the relay: `node:crypto`'s synchronous
 * Ed25519 `sign` on this thread.
 *
 * @remarks The log's default signer answers from libuv's threads after a wall-clock delay, so an
 * append the simulator does not await (the relay's verdicts, decided in a timer) would complete at
 * a simulated instant that depends on the machine. Ed25519 is deterministic: the signature is
 * the very one the default signer gives.
 */
export function syncSigner(key: DeviceKeyPair): EventSigner {
  const privateKey = KeyObject.from(key.privateKey as webcrypto.CryptoKey);
  return (bytes) => Promise.resolve(new Uint8Array(sign(null, bytes, privateKey)));
}
