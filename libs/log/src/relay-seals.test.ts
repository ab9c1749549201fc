// The wait for relay seals is driven by timers alone, never by reading a clock: a log opened with
// a clock that stands still (as tests and skewed tablets have) must still end every wait.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  deviceIdFromPublicKey,
  segmentDigest,
  type DeviceId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { RelaySeals } from './relay-seals.js';
import type { SegmentState } from './segments.js';
import { VisibleSet } from './visible-set.js';

const SIZE = 4;
const device = (n: number): DeviceId => deviceIdFromPublicKey(new Uint8Array(32).fill(n));
const [ME, RELAY, A, B, C] = [device(1), device(2), device(3), device(4), device(5)];
const full = new Array<Uint8Array>(SIZE).fill(new Uint8Array([1]));

/** A segment document just received whole (the seal wait reads only these fields). */
const segment = (owner: DeviceId, index = 0): SegmentState =>
  ({ id: `${owner}/${index}`, device: owner, index, processed: 0 }) as unknown as SegmentState;

/** Seals of a log with no event store behind it (the tests here never read an event back). */
const sealsWith = (reread: (segment: SegmentState) => void): RelaySeals =>
  new RelaySeals({
    ctx: { facility: 'seal-unit' as FacilityId, deviceId: ME, segmentSize: SIZE },
    relay: RELAY,
    visible: new VisibleSet(RELAY, {
      event: (id) => {
        throw new Error(`no event store here (${id})`);
      },
    }),
    onSealed: () => {},
    reread,
  });

describe('RelaySeals, waiting for a seal', () => {
  let reread: string[];
  let seals: RelaySeals;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    reread = [];
    seals = sealsWith((s) => reread.push(String(s.id)));
  });
  afterEach(() => {
    seals.close();
    vi.useRealTimers();
  });

  it('holds the whole segments of a burst for one shared second, then reads them one by one', () => {
    expect(seals.shouldWait(segment(A), full)).toBe(true);
    vi.advanceTimersByTime(500);
    expect(seals.shouldWait(segment(B), full)).toBe(true); // same window
    vi.advanceTimersByTime(499);
    expect(reread).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(reread).toEqual([`${A}/0`, `${B}/0`]);
    expect(seals.shouldWait(segment(A), full)).toBe(false); // a segment waits once
  });

  it('opens no window for a second after one closed, then opens one again', () => {
    expect(seals.shouldWait(segment(A), full)).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(seals.shouldWait(segment(B), full)).toBe(false); // cooling: read at once
    vi.advanceTimersByTime(1000);
    expect(seals.shouldWait(segment(C), full)).toBe(true);
    vi.advanceTimersByTime(1000);
    expect(reread).toEqual([`${A}/0`, `${C}/0`]);
  });

  it('never holds a partial segment, the relay own, or its own', () => {
    expect(seals.shouldWait(segment(A), full.slice(1))).toBe(false);
    expect(seals.shouldWait(segment(RELAY), full)).toBe(false);
    expect(seals.shouldWait(segment(ME), full)).toBe(false);
  });
});

describe('RelaySeals.coversAsListed (a segment taken whole, digest first)', () => {
  const entries = [1, 2, 3, 4].map((n) => new TextEncoder().encode(`event ${n}`));
  const seals = sealsWith(() => {});
  const sealOf = async (owner: DeviceId, index: number, listed: readonly Uint8Array[]): Promise<void> =>
    seals.note({
      device: RELAY,
      type: 'SegmentSealed',
      data: { device: owner, index, size: SIZE, digest: await segmentDigest(listed) },
    } as unknown as SignedEvent);

  it("is true only for the sealed events listed in seq order, byte for byte, as the seal's digest", async () => {
    await sealOf(A, 1, entries);
    expect(await seals.coversAsListed({ device: A, index: 1 }, entries)).toBe(true);
    expect(await seals.coversAsListed({ device: A, index: 1 }, [...entries].reverse())).toBe(false);
    const changed = entries.map((e, i) => (i === 2 ? Uint8Array.of(...e, 0x20) : e));
    expect(await seals.coversAsListed({ device: A, index: 1 }, changed)).toBe(false);
    expect(await seals.coversAsListed({ device: A, index: 1 }, entries.slice(1))).toBe(false);
    expect(await seals.coversAsListed({ device: A, index: 1 }, [...entries.slice(1), 'text'])).toBe(false);
    // Another segment (or device) of the same bytes has no seal of its own.
    expect(await seals.coversAsListed({ device: A, index: 0 }, entries)).toBe(false);
    expect(await seals.coversAsListed({ device: B, index: 1 }, entries)).toBe(false);
  });
});
