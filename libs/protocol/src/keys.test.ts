import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deviceKeyFromSeed,
  deviceIdFromPublicKey,
  ErrorCode,
  exportDeviceKey,
  generateDeviceKey,
  importDeviceKey,
  isAccordError,
  isDeviceId,
  publicKeyCache,
  PublicKeyCache,
  publicKeyFromDeviceId,
  signBytes,
  toBase64Url,
  verifyBytes,
  type DeviceId,
} from './index.js';

async function rejectsWith(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(isAccordError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
}

const msg = new TextEncoder().encode('hello accord');

describe('device ids', () => {
  it('are d + base64url of the raw key, and round-trip', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (raw) => {
        const id = deviceIdFromPublicKey(raw);
        expect(id).toBe('d' + toBase64Url(raw));
        expect(id).toHaveLength(44);
        expect(isDeviceId(id)).toBe(true);
        expect(publicKeyFromDeviceId(id)).toEqual(raw);
      }),
    );
  });

  it('reject malformed ids and keys of the wrong length with PROTOCOL_BAD_KEY', () => {
    const good = deviceIdFromPublicKey(new Uint8Array(32).fill(7));
    const bad = [
      '',
      'd',
      good.slice(1),
      'x' + good.slice(1),
      good + 'A',
      good.slice(0, -1),
      good.slice(0, -1) + 'B',
      good.slice(0, -1) + '=',
    ];
    for (const id of bad) {
      expect(isDeviceId(id)).toBe(false);
      expect(() => publicKeyFromDeviceId(id)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL_BAD_KEY }) as Error,
      );
    }
    expect(() => deviceIdFromPublicKey(new Uint8Array(31))).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL_BAD_KEY }) as Error,
    );
  });
});

describe('Ed25519 keys', () => {
  it('sign 64-byte signatures that verify only for the same bytes and device', async () => {
    const a = await generateDeviceKey();
    const b = await generateDeviceKey();
    expect(a.publicKey).toHaveLength(32);
    expect(a.deviceId).toBe(deviceIdFromPublicKey(a.publicKey));
    const sig = await signBytes(a, msg);
    expect(sig).toHaveLength(64);
    expect(await verifyBytes(a.deviceId, msg, sig)).toBe(true);
    expect(await verifyBytes(b.deviceId, msg, sig)).toBe(false);
    expect(await verifyBytes(a.deviceId, new TextEncoder().encode('hello accorD'), sig)).toBe(false);
    const flipped = sig.slice();
    flipped[10] = flipped[10]! ^ 1;
    expect(await verifyBytes(a.deviceId, msg, flipped)).toBe(false);
  });

  it('verifyBytes answers false, never rejects, on malformed devices and signatures', async () => {
    const a = await generateDeviceKey();
    const sig = await signBytes(a, msg);
    expect(await verifyBytes('not-a-device', msg, sig)).toBe(false);
    expect(await verifyBytes(a.deviceId, msg, sig.subarray(0, 63))).toBe(false);
    expect(await verifyBytes(a.deviceId, msg, new Uint8Array(65))).toBe(false);
    expect(await verifyBytes(a.deviceId, msg, new Uint8Array(64))).toBe(false);
    // Well-formed ids whose bytes are not valid curve points or are the all-zero key.
    for (const raw of [new Uint8Array(32), new Uint8Array(32).fill(0xff), new Uint8Array(32).fill(2)]) {
      expect(await verifyBytes(deviceIdFromPublicKey(raw), msg, sig)).toBe(false);
    }
  });

  it('export/import round-trips through JSON and still signs as the same device', async () => {
    const a = await generateDeviceKey();
    const stored = JSON.parse(JSON.stringify(await exportDeviceKey(a))) as unknown;
    const back = await importDeviceKey(stored);
    expect(back.deviceId).toBe(a.deviceId);
    expect(back.publicKey).toEqual(a.publicKey);
    expect(await verifyBytes(a.deviceId, msg, await signBytes(back, msg))).toBe(true);
    expect(await exportDeviceKey(back)).toEqual(stored);
  });

  it('importDeviceKey rejects garbage and mismatched keys with PROTOCOL_BAD_KEY', async () => {
    const a = await exportDeviceKey(await generateDeviceKey());
    const b = await exportDeviceKey(await generateDeviceKey());
    const garbage: unknown[] = [
      null,
      undefined,
      42,
      'key',
      [],
      {},
      { ...a, deviceId: 7 },
      { deviceId: a.deviceId, publicKey: a.publicKey },
      { ...a, publicKey: 'not base64!' },
      { ...a, privateKey: 'AAAA' },
      { ...a, privateKey: a.privateKey.slice(0, -4) },
      { ...a, publicKey: toBase64Url(new Uint8Array(31)) },
      { ...a, deviceId: b.deviceId }, // id of another key
      { ...b, privateKey: a.privateKey }, // private key of another pair
      { ...a, publicKey: b.publicKey, deviceId: b.deviceId },
    ];
    for (const g of garbage) await rejectsWith(importDeviceKey(g), ErrorCode.PROTOCOL_BAD_KEY);
    await fc.assert(
      fc.asyncProperty(
        fc.record({ deviceId: fc.string(), publicKey: fc.base64String(), privateKey: fc.base64String() }),
        async (g) => {
          await rejectsWith(importDeviceKey(g), ErrorCode.PROTOCOL_BAD_KEY);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('PublicKeyCache', () => {
  it('imports each key once, bounds its size and evicts the least recently used', async () => {
    const keys = await Promise.all([0, 1, 2].map(() => generateDeviceKey()));
    const [k0, k1, k2] = keys.map((k) => k.deviceId) as [DeviceId, DeviceId, DeviceId];
    const cache = new PublicKeyCache(2);
    const first = cache.get(k0);
    expect(cache.get(k0)).toBe(first); // concurrent users share one import
    expect(await first).not.toBeNull();
    await cache.get(k1);
    await cache.get(k0); // k0 is now the most recent
    await cache.get(k2); // evicts k1
    expect(cache.size).toBe(2);
    expect(cache.has(k0)).toBe(true);
    expect(cache.has(k1)).toBe(false);
    expect(cache.has(k2)).toBe(true);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(() => new PublicKeyCache(0)).toThrow(RangeError);
  });

  it('is what verifyBytes uses', async () => {
    const a = await generateDeviceKey();
    expect(publicKeyCache.has(a.deviceId)).toBe(false);
    expect(await verifyBytes(a.deviceId, msg, await signBytes(a, msg))).toBe(true);
    expect(publicKeyCache.has(a.deviceId)).toBe(true);
  });
});

describe('deviceKeyFromSeed', () => {
  it('derives the same working key pair from the same seed, and different ones from different seeds', async () => {
    const seed = new Uint8Array(32).map((_, i) => i * 7);
    const a = await deviceKeyFromSeed(seed);
    const b = await deviceKeyFromSeed(seed.slice());
    const c = await deviceKeyFromSeed(new Uint8Array(32).fill(1));
    expect(a.deviceId).toBe(b.deviceId);
    expect(c.deviceId).not.toBe(a.deviceId);
    const message = new TextEncoder().encode('hello');
    expect(await verifyBytes(a.deviceId, message, await signBytes(b, message))).toBe(true);
    const restored = await importDeviceKey(await exportDeviceKey(a));
    expect(restored.deviceId).toBe(a.deviceId);
    await expect(deviceKeyFromSeed(new Uint8Array(31))).rejects.toMatchObject({ code: 'PROTOCOL_BAD_KEY' });
  });
});
