import { describe, expect, it } from 'vitest';
import {
  encodeSignedEvent,
  parseSegmentSealedData,
  segmentDigest,
  SystemEventType,
  type DeviceId,
  type SignedEvent,
} from '@accord/protocol';
import type { SystemDraft } from '@accord/log';
import { EventFactory, TEST_RELAY, testDeviceId } from '@accord/domain/testing';
import { SegmentSealer, type SealableLog } from './segment-sealer.js';

const SIZE = 3;
const D1 = testDeviceId(1);
const D2 = testDeviceId(2);

/** A log of `SIZE`-event segments holding whatever the test says; appended drafts are kept. */
class FakeLog implements SealableLog {
  readonly segmentSize = SIZE;
  readonly held = new Map<DeviceId, Map<number, SignedEvent>>();
  readonly appended: SystemDraft[] = [];
  readonly #f = new EventFactory();

  hold(device: DeviceId, seq: number): SignedEvent {
    const e = { ...this.#f.event(device, 'StockReceived', { lot: `L${seq}` }), seq };
    let seqs = this.held.get(device);
    if (seqs === undefined) this.held.set(device, (seqs = new Map<number, SignedEvent>()));
    seqs.set(seq, e);
    return e;
  }

  segmentEvents(device: DeviceId, index: number): SignedEvent[] | undefined {
    const out: SignedEvent[] = [];
    for (let seq = index * SIZE + 1; seq <= (index + 1) * SIZE; seq++) {
      const e = this.held.get(device)?.get(seq);
      if (e === undefined) return undefined;
      out.push(e);
    }
    return out;
  }

  appendSystem(draft: SystemDraft): Promise<SignedEvent> {
    this.appended.push(draft);
    return Promise.resolve(this.#f.event(TEST_RELAY, draft.type, draft.data, { subject: draft.subject }));
  }
}

describe('SegmentSealer', () => {
  it('seals each full segment once, with the digest of its events in seq order', async () => {
    const log = new FakeLog();
    const sealer = new SegmentSealer(log, TEST_RELAY);
    const events = [1, 2, 3, 4].map((seq) => log.hold(D1, seq));
    for (const e of [...events].reverse()) sealer.note(e);
    expect(sealer.pending).toBe(1);
    expect(await sealer.sealDue()).toBe(1);
    expect(log.appended).toHaveLength(1);
    const [draft] = log.appended;
    expect(draft).toMatchObject({
      type: SystemEventType.SegmentSealed,
      subject: { kind: 'segment', id: `${D1}/0` },
    });
    const data = parseSegmentSealedData(draft!.data);
    expect(data.ok && data.value).toEqual({
      device: D1,
      index: 0,
      size: SIZE,
      digest: await segmentDigest(events.slice(0, 3).map((e) => encodeSignedEvent(e))),
    });
    // Noting the same boundary again (a duplicate delivery) seals nothing more.
    sealer.note(events[2]!);
    expect(await sealer.sealDue()).toBe(0);
  });

  it('waits for a hole below the last event, and skips what its own history sealed', async () => {
    const log = new FakeLog();
    const sealer = new SegmentSealer(log, TEST_RELAY);
    // D2's segment 0 was sealed before a restart: its SegmentSealed is in the relay's history.
    const history = new EventFactory().event(
      TEST_RELAY,
      SystemEventType.SegmentSealed,
      { device: D2, index: 0, size: SIZE, digest: await segmentDigest([]) },
      { subject: { kind: 'segment', id: `${D2}/0` } },
    );
    sealer.note(history);
    sealer.note(log.hold(D2, 3));
    log.hold(D1, 1);
    sealer.note(log.hold(D1, 3)); // seq 2 missing
    expect(await sealer.sealDue()).toBe(0);
    expect(sealer.pending).toBe(1);
    sealer.note(log.hold(D1, 2));
    expect(await sealer.sealDue()).toBe(1);
    expect(log.appended.map((d) => d.subject.id)).toEqual([`${D1}/0`]);
    // Its own events and a device's event in mid-segment are no boundaries.
    sealer.note(log.hold(D1, 5));
    expect(sealer.pending).toBe(0);
  });
});

describe('SegmentSealer digests taken as events are verified', () => {
  const received = (events: readonly SignedEvent[]) =>
    events.map((event) => ({ event, bytes: encodeSignedEvent(event) }));
  const expected = (events: readonly SignedEvent[]) => segmentDigest(events.map((e) => encodeSignedEvent(e)));
  const digestOf = (draft: SystemDraft | undefined): string | undefined => {
    const data = parseSegmentSealedData(draft?.data);
    return data.ok ? data.value.digest : undefined;
  };

  it('seals a segment verified in seq order from the bytes it was verified from, encoding nothing', async () => {
    const log = new FakeLog();
    const sealer = new SegmentSealer(log, TEST_RELAY);
    const events = [1, 2, 3, 4].map((seq) => log.hold(D1, seq));
    // Two verification batches, as the log verifies a segment read in two goes.
    sealer.verified(received(events.slice(0, 2)), [true, true]);
    sealer.verified(received(events.slice(2)), [true, true]);
    for (const e of events) sealer.note(e);
    expect(await sealer.sealDue()).toBe(1);
    expect(digestOf(log.appended[0])).toBe(await expected(events.slice(0, 3)));
    expect(sealer.digests()).toEqual({ asVerified: 1, encoded: 0 });
  });

  it('encodes the events held when what was verified is not them, not in order, or not all verified', async () => {
    const log = new FakeLog();
    const sealer = new SegmentSealer(log, TEST_RELAY);
    // D1: the log holds another event at seq 2 than the one verified (it refused that one later).
    const d1 = [1, 2, 3].map((seq) => log.hold(D1, seq));
    // (Test events share one placeholder signature: this copy gets another one.)
    const other = { ...d1[1]!, data: { lot: 'other' }, sig: 'B'.repeat(d1[1]!.sig.length) };
    sealer.verified(received([d1[0]!, other, d1[2]!]), [true, true, true]);
    // D2: seq 2 before seq 1 (a hole while hashing).
    const d2 = [1, 2, 3].map((seq) => log.hold(D2, seq));
    sealer.verified(received([d2[1]!]), [true]);
    sealer.verified(received([d2[0]!, d2[2]!]), [true, true]);
    for (const e of [...d1, ...d2]) sealer.note(e);
    expect(await sealer.sealDue()).toBe(2);
    expect(log.appended.map(digestOf)).toEqual([await expected(d1), await expected(d2)]);
    expect(sealer.digests()).toEqual({ asVerified: 0, encoded: 2 });
    // D1's next segment: one event failed verification (another copy of it is held later).
    const next = [4, 5, 6].map((seq) => log.hold(D1, seq));
    sealer.verified(received(next), [true, false, true]);
    for (const e of next) sealer.note(e);
    expect(await sealer.sealDue()).toBe(1);
    expect(digestOf(log.appended[2])).toBe(await expected(next));
    expect(sealer.digests()).toEqual({ asVerified: 0, encoded: 3 });
  });
});
