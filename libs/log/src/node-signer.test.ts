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
import { seededBytes } from '@accord/storage-level/testing';
import { describe, expect, it } from 'vitest';
import { ownEventSigner, stopSigningThread } from './node-signer.js';

const SEED = 20261207;

describe('ownEventSigner', () => {
  it('gives the very signature WebCrypto gives, for any bytes (seeded)', async () => {
    const key = await deviceKeyFromSeed(seededBytes(32, SEED));
    const sign = ownEventSigner(key);
    for (let i = 0; i < 50; i++) {
      const message = seededBytes((i * 37) % 700, SEED + i);
      const ours = await sign(message);
      // A Buffer (a Uint8Array) from node:crypto: compared by its bytes.
      expect(new Uint8Array(ours), `seed ${SEED + i}`).toEqual(await signBytes(key, message));
      expect(await verifyBytes(key.deviceId, message, ours)).toBe(true);
    }
  });

  it('signs a burst asked for in one turn (one batch of the signing thread) each to its own signature', async () => {
    const key = await deviceKeyFromSeed(seededBytes(32, SEED + 4));
    const other = await deviceKeyFromSeed(seededBytes(32, SEED + 5));
    const sign = ownEventSigner(key);
    const signOther = ownEventSigner(other);
    const messages = Array.from({ length: 64 }, (_, i) => seededBytes(100 + i * 11, SEED + 100 + i));
    // Both keys' bursts are in flight together: each signature must come back to its own caller.
    const [ours, theirs] = await Promise.all([
      Promise.all(messages.map((m) => sign(m))),
      Promise.all(messages.map((m) => signOther(m))),
    ]);
    for (let i = 0; i < messages.length; i++) {
      expect(new Uint8Array(ours[i]!), `message ${i}`).toEqual(await signBytes(key, messages[i]!));
      expect(new Uint8Array(theirs[i]!), `message ${i}`).toEqual(await signBytes(other, messages[i]!));
    }
  });

  it('signs an own event to the same event and bytes as signEvent', async () => {
    const key = await deviceKeyFromSeed(seededBytes(32, SEED + 1));
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
    const key = { ...(await deviceKeyFromSeed(seededBytes(32, SEED + 2))), privateKey: pair.privateKey };
    await expect(ownEventSigner(key)(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({
      code: 'PROTOCOL_BAD_KEY',
    });
  });

  it('keeps the WebCrypto signer for a key Node cannot convert', async () => {
    const real = await deviceKeyFromSeed(seededBytes(32, SEED + 3));
    // A structural stand-in: KeyObject.from refuses it, signBytes then fails as WebCrypto does.
    const key = {
      ...real,
      privateKey: { type: 'private', extractable: false, algorithm: { name: 'Ed25519' }, usages: ['sign'] },
    };
    await expect(ownEventSigner(key)(new Uint8Array([1]))).rejects.toMatchObject({
      code: 'PROTOCOL_BAD_KEY',
    });
  });

  // Last in the file: the signing thread stays stopped for the rest of this process.
  it('signs what the signing thread held when it ends, and what comes after, one job each', async () => {
    const key = await deviceKeyFromSeed(seededBytes(32, SEED + 6));
    const sign = ownEventSigner(key);
    await sign(new Uint8Array([0])); // the thread is running
    // Four messages of 256: the thread is still signing the first when it is stopped.
    const messages = Array.from({ length: 1024 }, (_, i) => seededBytes(200 + (i % 300), SEED + 300 + i));
    const inFlight = messages.map((m) => sign(m));
    await Promise.resolve(); // the batches are posted
    await stopSigningThread();
    const later = messages.map((m) => sign(m));
    const signatures = await Promise.all([...inFlight, ...later]);
    for (let i = 0; i < signatures.length; i++) {
      const message = messages[i % messages.length]!;
      expect(new Uint8Array(signatures[i]!), `signature ${i}`).toEqual(await signBytes(key, message));
    }
  });
});
