import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseSegmentSealedData, RELAY_EVENT_TYPES, segmentDigest, SystemEventType } from './index.js';
import { makeTestDevice } from './testing.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

describe('segmentDigest', () => {
  it('is SHA-256 over the length-prefixed events in order', async () => {
    const events = [bytes(1, 2, 3), bytes(), bytes(255)];
    const expected = createHash('sha256')
      .update(Buffer.from([0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 255]))
      .digest('base64url');
    expect(await segmentDigest(events)).toBe(expected);
  });

  it('tells apart reorderings and re-splittings of the same bytes', async () => {
    const a = await segmentDigest([bytes(1, 2), bytes(3)]);
    expect(await segmentDigest([bytes(3), bytes(1, 2)])).not.toBe(a);
    expect(await segmentDigest([bytes(1), bytes(2, 3)])).not.toBe(a);
    expect(await segmentDigest([bytes(1, 2, 3)])).not.toBe(a);
  });
});

describe('SegmentSealed data', () => {
  it('accepts a well-formed seal and refuses malformed ones with PROTOCOL_SCHEMA', async () => {
    const device = (await makeTestDevice()).deviceId;
    const good = { device, index: 0, size: 5000, digest: await segmentDigest([bytes(1)]) };
    expect(parseSegmentSealedData(good)).toEqual({ ok: true, value: good });
    for (const bad of [
      { ...good, device: 'nobody' },
      { ...good, index: -1 },
      { ...good, size: 0 },
      { ...good, digest: 'short' },
      { ...good, extra: true },
    ]) {
      const r = parseSegmentSealedData(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('PROTOCOL_SCHEMA');
    }
  });

  it('is a type only the relay may sign', () => {
    expect(RELAY_EVENT_TYPES.has(SystemEventType.SegmentSealed)).toBe(true);
    expect(RELAY_EVENT_TYPES.has(SystemEventType.RetryRequested)).toBe(false);
  });
});
