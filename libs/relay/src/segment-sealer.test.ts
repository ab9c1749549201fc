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
