import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asFacilityId, parseEnvelope, verifyEvent } from './index.js';
import { arbEnvelope, arbJsonValue, makeTestDevice, sampleEnvelope } from './testing.js';

describe('testing helpers', () => {
  it('arbEnvelope honours fixed fields and covers both shapes of the optional fields', () => {
    const device = sampleEnvelope().device;
    const samples = fc.sample(arbEnvelope({ device, facility: asFacilityId('f1'), type: 'StockReceived' }), {
      numRuns: 200,
      seed: 1,
    });
    for (const e of samples) {
      expect(e).toMatchObject({ device, facility: 'f1', type: 'StockReceived', v: 1 });
      expect(parseEnvelope(e).ok).toBe(true);
    }
    expect(samples.some((e) => e.basis !== undefined)).toBe(true);
    expect(samples.some((e) => !('basis' in e))).toBe(true);
    expect(samples.some((e) => e.supersedes !== undefined)).toBe(true);
    expect(samples.some((e) => !('supersedes' in e))).toBe(true);
  });

  it('arbEnvelope can take a data arbitrary', () => {
    for (const e of fc.sample(arbEnvelope({ data: fc.constant({ n: 1 }) }), { numRuns: 5, seed: 2 }))
      expect(e.data).toEqual({ n: 1 });
    expect(
      fc
        .sample(arbJsonValue({ maxDepth: 0 }), { numRuns: 20, seed: 3 })
        .every((v) => v === null || typeof v !== 'object'),
    ).toBe(true);
  });

  it('makeTestDevice signs any envelope as itself, verifiably', async () => {
    const dev = await makeTestDevice();
    const signed = await dev.sign(sampleEnvelope());
    expect(signed.device).toBe(dev.deviceId);
    expect(dev.key.deviceId).toBe(dev.deviceId);
    expect(await verifyEvent(signed)).toBe(true);
    const other = await makeTestDevice();
    expect(other.deviceId).not.toBe(dev.deviceId);
    expect(await verifyEvent({ ...signed, device: other.deviceId })).toBe(false);
  });
});
