import { segmentDocumentId } from '@accord/log';
import {
  forEachVerdictIn,
  type DeviceId,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';

/** Options of {@link SegmentRelease}. */
export interface SegmentReleaseOptions {
  readonly facility: FacilityId;
  readonly relay: DeviceId;
  readonly segmentSize: number;
  /** The facility's devices (revoked ones included): whose segments may be withheld. */
  readonly devices: () => Iterable<DeviceId>;
  /** True once the relay has sealed segment `index` of `device`. */
  readonly sealed: (device: DeviceId, index: number) => boolean;
  /** A withheld segment is served anyway this long after it was first refused to a peer. */
  readonly maxWithholdMs: number;
  /** Told of segments released by the fallback timer (the others are returned by {@link SegmentRelease.due}). */
  readonly onReleased: (documentIds: string[]) => void;
}

/** A device segment the relay holds events of and has not released yet. */
interface Held {
  readonly device: DeviceId;
  readonly index: number;
  held: number;
  unjudged: number;
}

/** Segment indexes computed ahead of the highest one held, per device (see {@link SegmentRelease.serves}). */
const LOOKAHEAD = 16;

/**
 * Which devices' segments the relay serves to which peers (issue #12): a device's segment goes to
 * its own device at once, and to the others only once the relay has judged every event it holds
 * of it (and sealed it, when it is full).
 *
 * @remarks A backlog arrives as whole segments. Forwarded at once, each one costs the relay a
 * whole-document sync message per other device, and each device verifies, stores and folds every
 * event of it while the relay judges the same events on the same machine. Released after the
 * judgement, a full segment is checked by the relay's seal (one signature and a digest) and comes
 * with its verdicts. Once released, a segment stays released: later events in it go out as they
 * arrive (a peer cut off in mid-sync could stall, DESIGN.md §7), so only a segment's first
 * delivery waits, and an ordinary event waits for its verdict round, milliseconds. A segment
 * that nothing releases (its author never sends it, junk entries the log refuses, an event
 * waiting for a dependency) is served anyway `maxWithholdMs` after it was first refused, so
 * a device carrying another device's events to the relay is never kept out for longer.
 */
export class SegmentRelease {
  readonly #opts: SegmentReleaseOptions;
  /** Device segment document ids, computed ahead for the facility's devices. */
  readonly #ids = new Map<string, { readonly device: DeviceId; readonly index: number }>();
  /** Per device, how many of its segment ids are in {@link #ids}. */
  readonly #computed = new Map<DeviceId, number>();
  /** Per device, the highest segment index it holds events of. */
  readonly #highest = new Map<DeviceId, number>();
  readonly #held = new Map<string, Held>();
  /** Events without a verdict yet, and their segment. */
  readonly #pending = new Map<EventId, string>();
  readonly #released = new Set<string>();
  /** Unreleased segments served to a peer that brought changes of them, by peer, until it goes away. */
  readonly #granted = new Map<DeviceId, Set<string>>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Unreleased segments refused to a peer, and the peers they were refused to (until they go away). */
  readonly #refused = new Map<string, Set<DeviceId>>();
  #closed = false;
  /** The segment of the last event noted: events come in segment-sized runs. */
  #lastId: { readonly device: DeviceId; readonly index: number; readonly id: string } | undefined;

  constructor(opts: SegmentReleaseOptions) {
    this.#opts = opts;
  }

  /**
   * Takes note of an event the relay holds: a device's (`judged` when it already has a verdict),
   * or one of the relay's own, whose verdicts count (its history relearned from the devices after
   * a restore judges what it names).
   */
  note(event: SignedEvent, judged: boolean): void {
    if (event.device === this.#opts.relay) {
      forEachVerdictIn(event, (v) => this.#judged(v.target));
      return;
    }
    const index = Math.floor((event.seq - 1) / this.#opts.segmentSize);
    if (index > (this.#highest.get(event.device) ?? -1)) this.#highest.set(event.device, index);
    const id = this.#idOf(event.device, index);
    if (this.#released.has(id)) return;
    let held = this.#held.get(id);
    if (held === undefined)
      this.#held.set(id, (held = { device: event.device, index, held: 0, unjudged: 0 }));
    held.held++;
    if (!judged) {
      held.unjudged++;
      this.#pending.set(event.id, id);
    }
  }

  /** Takes note of verdicts recorded for `targets`. */
  judged(targets: Iterable<EventId>): void {
    for (const target of targets) this.#judged(target);
  }

  #judged(target: EventId): void {
    const id = this.#pending.get(target);
    if (id === undefined) return;
    this.#pending.delete(target);
    const held = this.#held.get(id);
    if (held !== undefined) held.unjudged--;
  }

  /**
   * Releases every held segment whose events all have a verdict (a full one once sealed too);
   * returns their document ids.
   */
  due(): string[] {
    const out: string[] = [];
    for (const [id, held] of this.#held) {
      if (held.unjudged > 0) continue;
      if (held.held >= this.#opts.segmentSize && !this.#opts.sealed(held.device, held.index)) continue;
      this.#release(id);
      out.push(id);
    }
    return out;
  }

  /**
   * Whether document `id` may be served to `peer` now. Anything but another device's segment is:
   * the root index, the relay's own segments, the peer's own segments, and documents it cannot
   * place (more than {@link LOOKAHEAD} segments past what the relay holds of a device). So is
   * another device's segment when the peer has changes of it to bring (`bringsChanges`: a device
   * carrying another one's events to the relay), which then goes both ways for the rest of the
   * peer's connection.
   */
  serves(peer: DeviceId, id: string, bringsChanges: () => boolean): boolean {
    if (this.#released.has(id)) return true;
    const segment = this.#place(id);
    if (segment === undefined || segment.device === peer || segment.device === this.#opts.relay) return true;
    let granted = this.#granted.get(peer);
    if (granted?.has(id) === true) return true;
    if (bringsChanges()) {
      // Served for the rest of the connection: its next messages (acknowledgements) bring nothing
      // new, and dropping them in mid-sync could stall it (DESIGN.md §7).
      if (granted === undefined) this.#granted.set(peer, (granted = new Set()));
      granted.add(id);
      this.#refused.get(id)?.delete(peer); // it holds what it brings: nothing to send it at the release
      return true;
    }
    let refused = this.#refused.get(id);
    if (refused === undefined) this.#refused.set(id, (refused = new Set()));
    refused.add(peer);
    if (!this.#timers.has(id) && !this.#closed) {
      const timer = setTimeout(() => {
        this.#release(id);
        this.#opts.onReleased([id]);
      }, this.#opts.maxWithholdMs);
      timer.unref();
      this.#timers.set(id, timer);
    }
    return false;
  }

  /** Forgets what `peer` was served and refused for its connection (it went away). */
  peerGone(peer: DeviceId): void {
    this.#granted.delete(peer);
    for (const [id, peers] of this.#refused) {
      peers.delete(peer);
      if (peers.size === 0) this.#refused.delete(id);
    }
  }

  /**
   * The peers segment `id` was refused to while it was withheld and that have not gone away since
   * (they asked for it, and wait for it); forgotten once taken. Empty for a segment never refused.
   */
  takeRefused(id: string): DeviceId[] {
    const peers = this.#refused.get(id);
    this.#refused.delete(id);
    return peers === undefined ? [] : [...peers];
  }

  /** Stops the fallback timers. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#refused.clear();
  }

  #release(id: string): void {
    this.#released.add(id);
    this.#held.delete(id);
    const timer = this.#timers.get(id);
    if (timer !== undefined) clearTimeout(timer);
    this.#timers.delete(id);
  }

  /** The document id of segment `index` of `device` (hashing it once per segment, not per event). */
  #idOf(device: DeviceId, index: number): string {
    const last = this.#lastId;
    if (last !== undefined && last.device === device && last.index === index) return last.id;
    const id = segmentDocumentId(this.#opts.facility, device, index);
    this.#lastId = { device, index, id };
    return id;
  }

  /** The device and index of segment document `id`, computing ids ahead for every device. */
  #place(id: string): { readonly device: DeviceId; readonly index: number } | undefined {
    const known = this.#ids.get(id);
    if (known !== undefined) return known;
    for (const device of this.#opts.devices()) {
      const upTo = (this.#highest.get(device) ?? -1) + 1 + LOOKAHEAD;
      for (let index = this.#computed.get(device) ?? 0; index < upTo; index++) {
        this.#ids.set(segmentDocumentId(this.#opts.facility, device, index), { device, index });
      }
      this.#computed.set(device, Math.max(upTo, this.#computed.get(device) ?? 0));
    }
    return this.#ids.get(id);
  }
}
