import { KeyObject, sign, type webcrypto } from 'node:crypto';
import { AccordError, ErrorCode, signBytes, type DeviceKeyPair, type EventSigner } from '@accord/protocol';

/**
 * The signer of own events: `node:crypto`'s `sign` with a callback, on libuv's threads like
 * WebCrypto's, with the device's private key converted once.
 *
 * @remarks `@accord/protocol` signs through WebCrypto (it runs in browsers too). On this thread a
 * WebCrypto signature costs ≈ 8 µs and ≈ 2 KB of garbage (algorithm normalization, WebIDL
 * conversion, a job object and promise per call); this one ≈ 5 µs and a third of the garbage
 * (measured: 20k signatures, 64 in flight, `--max-semi-space-size=2`: 29–33 scavenges → 11–12).
 * Ed25519 is deterministic, so the signature is the very one WebCrypto gives. A key Node cannot
 * convert (not one of its own `CryptoKey`s) keeps the WebCrypto signer.
 */
export function ownEventSigner(key: DeviceKeyPair): EventSigner {
  let privateKey: KeyObject;
  try {
    privateKey = KeyObject.from(key.privateKey as webcrypto.CryptoKey);
  } catch {
    return (bytes) => signBytes(key, bytes);
  }
  const failed = (cause: unknown): AccordError =>
    new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'signing failed', { cause });
  return (bytes) =>
    new Promise((resolve, reject) => {
      try {
        sign(null, bytes, privateKey, (err, signature) => {
          if (err === null) resolve(signature);
          else reject(failed(err));
        });
      } catch (err) {
        reject(failed(err));
      }
    });
}
