import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceLog } from '@accord/log';
import { parseSegmentSealedData, segmentName, SystemEventType, type FacilityId } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import type { Relay } from './relay.js';
import { enrolledWith, eventually, TestRoster, startTestRelay } from './testing.js';

const FACILITY = 'clinic-relay-seal' as FacilityId;
/** Small segments, so that a few dozen events fill several (relay and devices must agree). */
const SEGMENT = 10;

describe('relay-sealed segments (DESIGN.md §8)', () => {
  let dir: TempDir;
  let relay: Relay;
  const roster = new TestRoster(FACILITY);
  const logs: DeviceLog[] = [];

  beforeAll(async () => {
    dir = await tempDir('accord-relay-seal-');
    relay = await startTestRelay(dir.path, roster, { segmentSize: SEGMENT });
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  /** An enrolled device with its own log, dialling the relay over WebSocket. */
  async function device(name: string): Promise<DeviceLog> {
    const { log } = await enrolledWith(relay, dir.path, roster, {
      facility: FACILITY,
      name,
      segmentSize: SEGMENT,
    });
    logs.push(log);
    return log;
  }

  it('seals every full device segment once; a device joining later verifies them by the seals', async () => {
    const a = await device('Front desk');
    for (let i = 0; i < 25; i++) {
      await a.append({
        type: 'StockReceived',
        data: { lot: `L${i}`, antigen: 'BCG', quantity: 10, expiry: '2031-01-01' },
      });
    }
    const seals = () =>
      [...a.visibleEvents()]
        .filter((e) => e.type === SystemEventType.SegmentSealed && e.device === relay.id)
        .map((e) => parseSegmentSealedData(e.data))
        .flatMap((r) => (r.ok ? [segmentName(r.value.device, r.value.index)] : []));
    // Seqs 1-10 and 11-20 fill two segments; 21-25 do not fill the third.
    await eventually(() => seals().length >= 2, 'two seals on the writing device');
    expect(seals().sort()).toEqual([`${a.deviceId}/0`, `${a.deviceId}/1`]);
    await eventually(() => a.list().every((i) => i.status === 'accepted'), 'every event accepted');

    const c = await device('Back office');
    await eventually(() => c.list({ device: a.deviceId }).length === 25, 'the newcomer holds all 25');
    // 20 events by the two seals; the 5 of the open segment, and the relay's own events, one by one.
    expect(c.verification().bySeal).toBe(20);
    expect(c.incidents()).toEqual([]);
    expect(c.list({ device: a.deviceId }).map((i) => i.status)).toEqual(new Array(25).fill('accepted'));
    expect(seals()).toHaveLength(2); // nothing sealed twice
    // The relay hashed both segments from the bytes it verified, as they arrived (in seq order),
    // encoding none of their events again; the newcomer's 20 checks by seal say the digests hold.
    expect((await relay.facility(FACILITY)).sealDigests()).toEqual({ asVerified: 2, encoded: 0 });
  });
});
