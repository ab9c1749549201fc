// The relay's worker verifier must say exactly what `verifyEvents` says, on the events the log
// hands it (decoded from the bytes they arrived as) and on anything else a caller could pass.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReceivedEvent } from '@accord/log';
import {
  decodeSignedEvent,
  encodeSignedEvent,
  verifyEvents,
  type DeviceId,
  type SignedEvent,
} from '@accord/protocol';
import { arbDeviceId, arbEnvelope, makeTestDevice, type TestDevice } from '@accord/protocol/testing';
import { testSeed } from '@accord/testkit';
import { VerifierPool } from './verifier-pool.js';

/** How a generated event is spoiled (or not) before it is verified. */
type Spoil = 'none' | 'data' | 'sig' | 'device' | 'not-a-key' | 'sig-text' | 'device-text' | 'other-bytes';
const SPOILS: readonly Spoil[] = [
  'none',
  'data',
  'sig',
  'device',
  'not-a-key',
  'sig-text',
  'device-text',
  'other-bytes',
];

/** As the log receives it: the event decoded from its canonical bytes. */
function received(event: SignedEvent): ReceivedEvent {
  const bytes = encodeSignedEvent(event);
  const decoded = decodeSignedEvent(bytes);
  if (!decoded.ok) throw new Error(`test event does not decode: ${decoded.error.message}`);
  return { event: decoded.value, bytes };
}

/** Another character of the base64url alphabet at `i` (the text stays a well-formed signature). */
function otherChar(sig: string, i: number): string {
  return sig.slice(0, i) + (sig[i] === 'A' ? 'B' : 'A') + sig.slice(i + 1);
}

function spoiled(signed: SignedEvent, spoil: Spoil, other: DeviceId, random: DeviceId): ReceivedEvent {
  switch (spoil) {
    case 'none':
      return received(signed);
    case 'data':
      return received({ ...signed, data: { forged: signed.data } });
    case 'sig':
      return received({ ...signed, sig: otherChar(signed.sig, 7) });
    case 'device':
      return received({ ...signed, device: other });
    case 'not-a-key':
      return received({ ...signed, device: random });
    case 'sig-text':
      // Not canonical base64url (non-zero trailing bits): never decoded, but a caller may pass it.
      return { event: { ...signed, sig: `${signed.sig.slice(0, 85)}B` }, bytes: encodeSignedEvent(signed) };
    case 'device-text':
      return { event: { ...signed, device: 'd-not-a-device' as DeviceId }, bytes: encodeSignedEvent(signed) };
    case 'other-bytes':
      // Bytes that do not hold this event's signature: verified from the event itself.
      return { event: signed, bytes: encodeSignedEvent({ ...signed, sig: otherChar(signed.sig, 3) }) };
  }
}

describe('VerifierPool', () => {
  const pool = new VerifierPool(2);
  afterAll(() => pool.close());

  it('agrees with verifyEvents on valid and forged events (seeded)', async () => {
    const devices: TestDevice[] = [await makeTestDevice(), await makeTestDevice(), await makeTestDevice()];
    // Fixed per name; replay another with FC_SEED (fast-check prints the counterexample too).
    const seed = testSeed('verifier-pool');
    let valid = 0;
    let forged = 0;
    await fc
      .assert(
        fc.asyncProperty(
          fc.array(
            fc.tuple(arbEnvelope(), fc.nat(devices.length - 1), fc.constantFrom(...SPOILS), arbDeviceId()),
            { minLength: 1, maxLength: 24 },
          ),
          async (cases) => {
            const items: ReceivedEvent[] = [];
            for (const [envelope, d, spoil, random] of cases) {
              const device = devices[d]!;
              const signed = await device.sign(envelope);
              items.push(spoiled(signed, spoil, devices[(d + 1) % devices.length]!.deviceId, random));
            }
            const expected = await verifyEvents(items.map(({ event }) => event));
            const actual = await pool.verify(items);
            expect(actual).toEqual(expected);
            cases.forEach(([, , spoil], i) => {
              const ok = spoil === 'none' || spoil === 'other-bytes';
              expect(actual[i], `${spoil} event`).toBe(ok);
              if (ok) valid++;
              else forged++;
            });
          },
        ),
        { seed, numRuns: 40 },
      )
      .catch((err: unknown) => {
        throw new Error(`seed=${seed} (replay: FC_SEED=${seed}): ${String(err)}`);
      });
    expect(valid).toBeGreaterThan(0);
    expect(forged).toBeGreaterThan(0);
  }, 60_000);

  it('verifies a run longer than one chunk, in order, across workers', async () => {
    const device = await makeTestDevice();
    const [envelope] = fc.sample(arbEnvelope(), { seed: 12, numRuns: 1 });
    const items: ReceivedEvent[] = [];
    for (let seq = 1; seq <= 700; seq++) {
      const signed = await device.sign({ ...envelope!, seq });
      // Every seventh one carries another event's signature.
      items.push(received(seq % 7 === 0 ? { ...signed, sig: otherChar(signed.sig, 10) } : signed));
    }
    const actual = await pool.verify(items);
    expect(actual).toEqual(items.map((_, i) => (i + 1) % 7 !== 0));
  }, 60_000);

  it('verifies on the main thread once closed', async () => {
    const closed = new VerifierPool(1);
    const device = await makeTestDevice();
    const [envelope] = fc.sample(arbEnvelope(), { seed: 5, numRuns: 1 });
    const signed = await device.sign(envelope!);
    expect(await closed.verify([received(signed)])).toEqual([true]);
    await closed.close();
    expect(await closed.verify([received(signed), received({ ...signed, seq: signed.seq + 1 })])).toEqual([
      true,
      false,
    ]);
  });
});
