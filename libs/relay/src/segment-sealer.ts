import { createHash, type Hash } from 'node:crypto';
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
import type { ReceivedEvent, SystemDraft } from '@accord/log';

/** What the sealer needs of the relay's log. */
export interface SealableLog {
  readonly segmentSize: number;
  segmentEvents(device: DeviceId, index: number): readonly SignedEvent[] | undefined;
  appendSystem(draft: SystemDraft): Promise<SignedEvent>;
}

/**
 * A segment's digest taken as its events were verified, in seq order from its first event: the
 * running SHA-256 of {@link segmentDigest}'s input, and one over the events' signatures that says
 * at seal time whether the events the log holds are the very ones hashed.
 */
interface RunningDigest {
  /** The seq of the next event this digest can take. */
  next: number;
  readonly bytes: Hash;
  readonly sigs: Hash;
}

/** How the sealer found the digests of the segments it sealed (see {@link SegmentSealer.verified}). */
export interface SealDigestStats {
  /** Taken from the bytes the events were verified from, as they were verified. */
  readonly asVerified: number;
  /** Encoded again from the events at seal time. */
  readonly encoded: number;
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
  /** Segments being received in order, by `<device>/<index>`: their digest so far (see {@link SegmentSealer.verified}). */
  readonly #running = new Map<string, RunningDigest>();
  #asVerified = 0;
  #encoded = 0;

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
      this.#running.delete(key);
      return;
    }
    const size = this.#log.segmentSize;
    if (event.seq % size !== 0) return;
    const index = event.seq / size - 1;
    const key = segmentName(event.device, index);
    if (!this.#sealed.has(key)) this.#due.set(key, { device: event.device, index });
  }

  /**
   * Takes in the events the log just verified (`ok[i]` for `received[i]`), with the canonical bytes
   * they arrived as: while a device's segment arrives in seq order from its first event, its digest
   * is hashed from those bytes as they pass, so sealing it needs no encoding of its events again
   * (about a twentieth of the relay's main thread while it takes in a backlog).
   *
   * @remarks Only a hint: at seal time the digest is used when the signatures of the events the log
   * holds hash to those of the bytes hashed, in the same order (one signature verifies one envelope
   * under its device's key, and the bytes are the envelope's canonical encoding), and the events are
   * encoded again otherwise (out of order, a hole, an event the log refused after it was verified).
   * One running digest per segment received in order and not sealed: a few hundred bytes each.
   */
  verified(received: readonly ReceivedEvent[], ok: readonly boolean[]): void {
    const size = this.#log.segmentSize;
    for (const [i, { event, bytes }] of received.entries()) {
      if (ok[i] !== true || event.device === this.#relay) continue;
      const index = Math.floor((event.seq - 1) / size);
      const key = segmentName(event.device, index);
      let running = this.#running.get(key);
      if (running === undefined) {
        if (event.seq !== index * size + 1 || this.#sealed.has(key)) continue;
        running = { next: event.seq, bytes: createHash('sha256'), sigs: createHash('sha256') };
        this.#running.set(key, running);
      }
      if (event.seq < running.next) continue; // taken already (checked by the signatures at seal time)
      if (event.seq > running.next) {
        this.#running.delete(key); // a hole: this segment's digest is encoded at seal time
        continue;
      }
      const length = new Uint8Array(4);
      new DataView(length.buffer).setUint32(0, bytes.length);
      running.bytes.update(length).update(bytes);
      running.sigs.update(event.sig).update('\n');
      running.next++;
    }
  }

  /** How the digests of the segments sealed so far were found. */
  digests(): SealDigestStats {
    return { asVerified: this.#asVerified, encoded: this.#encoded };
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
        digest: this.#verifiedDigest(key, events) ?? (await this.#encodedDigest(events)),
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

  /** The digest of a full segment hashed as its events were verified, when they are the events held. */
  #verifiedDigest(key: string, events: readonly SignedEvent[]): string | undefined {
    const running = this.#running.get(key);
    this.#running.delete(key);
    if (running === undefined || running.next !== events[0]!.seq + events.length) return undefined;
    const held = createHash('sha256');
    for (const e of events) held.update(e.sig).update('\n');
    if (!held.digest().equals(running.sigs.digest())) return undefined;
    this.#asVerified++;
    return running.bytes.digest('base64url');
  }

  async #encodedDigest(events: readonly SignedEvent[]): Promise<string> {
    this.#encoded++;
    return segmentDigest(events.map((e) => encodeSignedEvent(e)));
  }
}
