import {
  encodeSignedEvent,
  parseSegmentSealedData,
  segmentDigest,
  segmentName,
  SystemEventType,
  type DeviceId,
  type JsonValue,
  type SegmentSealedData,
  type SignedEvent,
} from '@accord/protocol';
import type { SystemDraft } from '@accord/log';

/** What the sealer needs of the relay's log. */
export interface SealableLog {
  readonly segmentSize: number;
  segmentEvents(device: DeviceId, index: number): readonly SignedEvent[] | undefined;
  appendSystem(draft: SystemDraft): Promise<SignedEvent>;
}

/**
 * Seals full segments of the devices' events (DESIGN.md §8): once the relay holds every event of
 * segment `k` of a device (each verified at ingest), it appends one relay-signed `SegmentSealed`
 * with their digest, so that a device receiving the segment checks one relay signature and a
 * hash instead of every device signature in it.
 *
 * @remarks Feed it every event of the log ({@link SegmentSealer.note}: history at start, then as
 * events arrive) and call {@link SegmentSealer.sealDue} from one place at a time. A segment is
 * sealed once: the relay's own `SegmentSealed` events in its log (history included) count.
 */
export class SegmentSealer {
  readonly #log: SealableLog;
  readonly #relay: DeviceId;
  /** `<device>/<index>` of segments sealed by this relay. */
  readonly #sealed = new Set<string>();
  /** Segments whose last event has arrived, not sealed yet (waiting for earlier events maybe). */
  readonly #due = new Map<string, { device: DeviceId; index: number }>();

  constructor(log: SealableLog, relay: DeviceId) {
    this.#log = log;
    this.#relay = relay;
  }

  /** Takes note of one event of the log. */
  note(event: SignedEvent): void {
    if (event.device === this.#relay) {
      if (event.type !== SystemEventType.SegmentSealed) return;
      const parsed = parseSegmentSealedData(event.data);
      if (!parsed.ok) return;
      const key = segmentName(parsed.value.device, parsed.value.index);
      this.#sealed.add(key);
      this.#due.delete(key);
      return;
    }
    const size = this.#log.segmentSize;
    if (event.seq % size !== 0) return;
    const index = event.seq / size - 1;
    const key = segmentName(event.device, index);
    if (!this.#sealed.has(key)) this.#due.set(key, { device: event.device, index });
  }

  /** True once segment `index` of `device` is sealed by this relay (in its history or now). */
  isSealed(device: DeviceId, index: number): boolean {
    return this.#sealed.has(segmentName(device, index));
  }

  /** Segments noted as full and not sealed yet. */
  get pending(): number {
    return this.#due.size;
  }

  /** Appends a seal for every due segment whose events are all held; resolves with how many. */
  async sealDue(): Promise<number> {
    let sealed = 0;
    for (const [key, { device, index }] of [...this.#due]) {
      const events = this.#log.segmentEvents(device, index);
      if (events === undefined) continue; // a hole before the last event: later
      const data: SegmentSealedData = {
        device,
        index,
        size: this.#log.segmentSize,
        digest: await segmentDigest(events.map((e) => encodeSignedEvent(e))),
      };
      await this.#log.appendSystem({
        type: SystemEventType.SegmentSealed,
        subject: { kind: 'segment', id: key },
        data: data as unknown as JsonValue,
      });
      this.#sealed.add(key);
      this.#due.delete(key);
      sealed++;
    }
    return sealed;
  }
}
