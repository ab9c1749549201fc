import { describe, expect, it } from 'vitest';
import {
  deviceKeyFromSeed,
  encodeSignedEvent,
  eventIdFor,
  signEvent,
  type DeviceKeyPair,
  type EventEnvelope,
  type SignedEvent,
} from '@accord/protocol';
import { VerificationCache } from './verification-cache.js';
import { sharedSyncVerifier } from './verifier.js';

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

async function signed(key: DeviceKeyPair, seq: number): Promise<SignedEvent> {
  const envelope: EventEnvelope = {
    v: 1,
    id: eventIdFor(1_780_000_000_000, key.deviceId, seq),
    facility: 'f1' as EventEnvelope['facility'],
    device: key.deviceId,
    seq,
    hlc: `2026-06-01T10:00:00.000Z/${String(seq).padStart(6, '0')}` as EventEnvelope['hlc'],
    type: 'StockReceived',
    schema: 1,
    subject: { kind: 'lot', id: `L${seq}` },
    deps: [],
    data: { lot: `L${seq}`, antigen: 'BCG', quantity: 5, expiry: '2031-01-01' },
  };
  return signEvent(envelope, key);
}

describe('VerificationCache', () => {
  it('answers only for the very bytes it was told about, and counts hits and misses', () => {
    const cache = new VerificationCache(10);
    expect(cache.get('s1', bytes(1, 2, 3))).toBeUndefined();
    cache.set('s1', bytes(1, 2, 3), true);
    expect(cache.get('s1', bytes(1, 2, 3))).toBe(true);
    // Same signature, one byte changed, or one byte more: a miss.
    expect(cache.get('s1', bytes(1, 2, 4))).toBeUndefined();
    expect(cache.get('s1', bytes(1, 2, 3, 0))).toBeUndefined();
    expect(cache.get('s2', bytes(1, 2, 3))).toBeUndefined();
    expect([cache.hits, cache.misses]).toEqual([1, 4]);
  });

  it('keeps a copy, so a caller reusing its buffer cannot change what is cached', () => {
    const cache = new VerificationCache(10);
    const buf = bytes(7, 7, 7);
    cache.set('s', buf, true);
    buf[0] = 8;
    expect(cache.get('s', buf)).toBeUndefined();
    expect(cache.get('s', bytes(7, 7, 7))).toBe(true);
  });

  it('holds at most its limit, dropping the oldest entry first', () => {
    const cache = new VerificationCache(3);
    for (let i = 0; i < 5; i++) cache.set(`s${i}`, bytes(i), i % 2 === 0);
    expect(cache.size).toBe(3);
    expect(cache.get('s0', bytes(0))).toBeUndefined();
    expect(cache.get('s1', bytes(1))).toBeUndefined();
    expect(cache.get('s2', bytes(2))).toBe(true);
    expect(cache.get('s4', bytes(4))).toBe(true);
    expect(() => new VerificationCache(0)).toThrow(RangeError);
  });
});

describe('sharedSyncVerifier', () => {
  it('verifies once per distinct event bytes and never serves a tampered copy from the cache', async () => {
    const key = await deviceKeyFromSeed(new Uint8Array(32).fill(3));
    const good = await signed(key, 1);
    const other = await signed(key, 2);
    // The same signature over a changed quantity: what a peer that tampered with an event sends.
    const tampered: SignedEvent = { ...good, data: { ...(good.data as object), quantity: 6 } };
    const cache = new VerificationCache(100);
    const verify = sharedSyncVerifier(cache);
    const item = (e: SignedEvent) => ({ event: e, bytes: encodeSignedEvent(e) });

    expect(await verify([item(good), item(other)])).toEqual([true, true]);
    expect(cache.misses).toBe(2);
    // Another device receives the same events: answered from the cache.
    expect(await verify([item(good), item(other)])).toEqual([true, true]);
    expect(cache.hits).toBe(2);
    // The tampered copy misses the cache (its bytes differ) and fails its own check, every time.
    expect(await verify([item(tampered)])).toEqual([false]);
    expect(await verify([item(tampered)])).toEqual([false]);
    expect(cache.hits).toBe(3);
    // A signature of another device's key on the good event's envelope: false as well.
    const stranger = await deviceKeyFromSeed(new Uint8Array(32).fill(4));
    const forged: SignedEvent = { ...good, sig: (await signed(stranger, 1)).sig };
    expect(await verify([item(forged)])).toEqual([false]);
  });
});
