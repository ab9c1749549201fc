import { webcrypto } from 'node:crypto';
import {
  deviceKeyFromSeed,
  encodeSignedEvent,
  signBytes,
  signEvent,
  signEventEncoded,
  verifyBytes,
  verifyEvent,
  type DeviceKeyPair,
} from '@accord/protocol';
import { sampleEnvelope } from '@accord/protocol/testing';
import { describe, expect, it } from 'vitest';
import { ownEventSigner } from './node-signer.js';

const SEED = 20261207;

/** Deterministic pseudo-random bytes (xorshift32) of a seeded run. */
function bytesOf(seed: number, length: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe('ownEventSigner', () => {
  it('gives the very signature WebCrypto gives, for any bytes (seeded)', async () => {
    const key = await deviceKeyFromSeed(bytesOf(SEED, 32));
    const sign = ownEventSigner(key);
    for (let i = 0; i < 50; i++) {
      const message = bytesOf(SEED + i, (i * 37) % 700);
      const ours = await sign(message);
      // A Buffer (a Uint8Array) from node:crypto: compared by its bytes.
      expect(new Uint8Array(ours), `seed ${SEED + i}`).toEqual(await signBytes(key, message));
      expect(await verifyBytes(key.deviceId, message, ours)).toBe(true);
    }
  });

  it('signs an own event to the same event and bytes as signEvent', async () => {
    const key = await deviceKeyFromSeed(bytesOf(SEED + 1, 32));
    const envelope = sampleEnvelope({
      device: key.deviceId,
      seq: 7,
      data: { givenName: 'Ama', note: 'é𝄞' },
    });
    const { event, bytes } = await signEventEncoded(envelope, key, ownEventSigner(key));
    expect(event).toEqual(await signEvent(envelope, key));
    expect(bytes).toEqual(encodeSignedEvent(event));
    expect(await verifyEvent(event)).toBe(true);
  });

  it('refuses with PROTOCOL_BAD_KEY when the key cannot sign', async () => {
    // An X25519 key converts to a KeyObject but is no signing key.
    const pair = (await webcrypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as {
      privateKey: DeviceKeyPair['privateKey'];
    };
    const key = { ...(await deviceKeyFromSeed(bytesOf(SEED + 2, 32))), privateKey: pair.privateKey };
    await expect(ownEventSigner(key)(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({
      code: 'PROTOCOL_BAD_KEY',
    });
  });

  it('keeps the WebCrypto signer for a key Node cannot convert', async () => {
    const real = await deviceKeyFromSeed(bytesOf(SEED + 3, 32));
    // A structural stand-in: KeyObject.from refuses it, signBytes then fails as WebCrypto does.
    const key = {
      ...real,
      privateKey: { type: 'private', extractable: false, algorithm: { name: 'Ed25519' }, usages: ['sign'] },
    };
    await expect(ownEventSigner(key)(new Uint8Array([1]))).rejects.toMatchObject({
      code: 'PROTOCOL_BAD_KEY',
    });
  });
});
