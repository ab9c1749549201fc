import { describe, expect, it } from 'vitest';
import { rootDocumentId, segmentDocumentId } from '@accord/log';
import {
  SystemEventType,
  type DeviceId,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { SegmentRelease } from './segment-release.js';

const FACILITY = 'clinic-release' as FacilityId;
const RELAY = 'relay' as DeviceId;
const A = 'device-a' as DeviceId;
const B = 'device-b' as DeviceId;
const SIZE = 4;

const event = (device: DeviceId, seq: number): SignedEvent =>
  ({ device, seq, id: `${device}/${seq}` as EventId }) as unknown as SignedEvent;
const segment = (device: DeviceId, index: number): string => segmentDocumentId(FACILITY, device, index);
const bringsNothing = (): boolean => false;

function release(
  opts: { sealed?: Set<string>; maxWithholdMs?: number; onReleased?: (ids: string[]) => void } = {},
) {
  const sealed = opts.sealed ?? new Set<string>();
  return new SegmentRelease({
    facility: FACILITY,
    relay: RELAY,
    segmentSize: SIZE,
    devices: () => [RELAY, A, B],
    sealed: (device, index) => sealed.has(`${device}/${index}`),
    maxWithholdMs: opts.maxWithholdMs ?? 60_000,
    onReleased: opts.onReleased ?? (() => undefined),
  });
}

describe('SegmentRelease', () => {
  it("serves a device's segment to that device, the relay's and the root to anyone, another device's only once judged", () => {
    const r = release();
    for (let seq = 1; seq <= 2; seq++) r.note(event(A, seq), false);
    expect(r.serves(A, segment(A, 0), bringsNothing)).toBe(true);
    expect(r.serves(B, segment(RELAY, 0), bringsNothing)).toBe(true);
    expect(r.serves(B, String(rootDocumentId(FACILITY)), bringsNothing)).toBe(true);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    // A segment the relay holds nothing of yet is withheld too: its events may be on the way in.
    expect(r.serves(B, segment(A, 1), bringsNothing)).toBe(false);

    r.judged([event(A, 1).id]);
    expect(r.due()).toEqual([]);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    r.judged([event(A, 2).id]);
    expect(r.due()).toEqual([segment(A, 0)]);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(true);
    // Released for good: events arriving later in it go out as they come.
    r.note(event(A, 3), false);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(true);
    expect(r.due()).toEqual([]);
    r.close();
  });

  it('names the peers a released segment was refused to, while they stay connected, once', () => {
    const C = 'device-c' as DeviceId;
    const r = release();
    r.note(event(A, 1), false);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    expect(r.serves(C, segment(A, 0), bringsNothing)).toBe(false);
    // Served at once, never refused: A's own segment, the relay's.
    expect(r.serves(A, segment(A, 0), bringsNothing)).toBe(true);
    r.peerGone(C);
    // Refused once, then it brought changes of it (a tablet carrying A's events): it holds them.
    const D = 'device-d' as DeviceId;
    expect(r.serves(D, segment(A, 0), bringsNothing)).toBe(false);
    expect(r.serves(D, segment(A, 0), () => true)).toBe(true);
    r.judged([event(A, 1).id]);
    expect(r.due()).toEqual([segment(A, 0)]);
    expect(r.takeRefused(segment(A, 0))).toEqual([B]);
    expect(r.takeRefused(segment(A, 0))).toEqual([]);
    expect(r.takeRefused(segment(RELAY, 0))).toEqual([]);
    r.close();
  });

  it('waits for the seal of a full segment, and takes events judged before they were noted as judged', () => {
    const sealed = new Set<string>();
    const r = release({ sealed });
    for (let seq = 1; seq <= SIZE; seq++) r.note(event(A, seq), seq === 1);
    r.judged([2, 3, 4].map((seq) => event(A, seq).id));
    expect(r.due()).toEqual([]);
    sealed.add(`${A}/0`);
    expect(r.due()).toEqual([segment(A, 0)]);
    r.close();
  });

  it("counts the relay's own verdicts as they arrive (its history relearned after a restore)", () => {
    const r = release();
    r.note(event(A, 1), false);
    r.note(event(A, 2), false);
    const accepted = {
      device: RELAY,
      seq: 1,
      id: 'relay/1' as EventId,
      type: SystemEventType.AcceptedVerdicts,
      data: { ruleSet: 'r1', firstSeq: 1, targets: [event(A, 1).id, event(A, 2).id] },
    } as unknown as SignedEvent;
    r.note(accepted, false);
    expect(r.due()).toEqual([segment(A, 0)]);
    r.close();
  });

  it('serves a peer that brings changes the relay lacks (it carries another device’s events in) until it goes away', () => {
    const r = release();
    r.note(event(A, 1), false);
    expect(r.serves(B, segment(A, 0), () => true)).toBe(true);
    // For the rest of its connection (its acknowledgements bring nothing new).
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(true);
    r.peerGone(B);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    r.close();
  });

  it('releases a withheld segment after maxWithholdMs when nothing else does', async () => {
    const released: string[][] = [];
    const r = release({ maxWithholdMs: 30, onReleased: (ids) => released.push(ids) });
    r.note(event(A, 1), false); // never judged (say it waits for a dependency)
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false); // one timer, not one per refusal
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(released).toEqual([[segment(A, 0)]]);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(true);
    expect(r.due()).toEqual([]);
    r.close();
  });

  it('serves documents it cannot place, and stops its timers when closed', async () => {
    const released: string[][] = [];
    const r = release({ maxWithholdMs: 20, onReleased: (ids) => released.push(ids) });
    // Far past anything held of A (and not a segment of any member): nothing to withhold.
    expect(r.serves(B, segment(A, 500), bringsNothing)).toBe(true);
    expect(r.serves(B, segment('stranger' as DeviceId, 0), bringsNothing)).toBe(true);
    expect(r.serves(B, segment(A, 0), bringsNothing)).toBe(false);
    r.close();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(released).toEqual([]);
  });
});
