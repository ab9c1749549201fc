import { parseRosterUpdatedData, type DeviceId, type SignedEvent } from '@accord/protocol';
import type { LogRoster } from './api.js';
import { BULK_IN_FLIGHT } from './bulk-segments.js';
import type { LogContext, SegmentState, Segments } from './segments.js';
import type { VisibleSet } from './visible-set.js';

/** Devices the log discovers from relay rosters, the root index or their events, at most (bounds a hostile index). */
const MAX_FOLLOWED_DEVICES = 10_000;

/**
 * Segments of another device that relay seals name, followed at most this many past the one that
 * holds its next missing event. A relay's seals name every full segment of a facility at once (a
 * new device learns of all of them in one burst): following every one of them at once had the
 * serving peer load and send every sealed document together, and this log take all of them in,
 * materialized side by side, before it could verify and store the first (a 100k-event cold sync
 * stood still for seconds, then committed everything at the end). A few at a time, the peer loads
 * and sends the next segments while this log stores the last ones, and memory stays flat.
 */
export const SEALED_AHEAD = 2;

/**
 * Segments of another device that relay seals name, offered to the bulk transfer (`bulk-segments.ts`)
 * at most this many past the one that holds its next missing event. The transfer materializes
 * nothing and asks a few at a time (`BULK_IN_FLIGHT`), so it may look further ahead than the Repo:
 * what bounds it is the events held back should a segment before them never come (each one an
 * entry of the visible set's map until the hole is filled).
 */
export const BULK_AHEAD = 8;

/** What {@link Following} asks of the rest of the log. */
export interface FollowingDeps {
  readonly ctx: LogContext;
  /** The relay's device id, if any: only its rosters and seals count as evidence. */
  readonly relay: DeviceId | undefined;
  readonly roster: LogRoster;
  readonly visible: VisibleSet;
  readonly segments: Segments;
  /** The highest own sequence number handed out. */
  readonly assigned: () => number;
  /** Reads a segment the log opened (or re-read). */
  readonly read: (segment: SegmentState) => void;
  /** Whether `device`'s segments may be asked for before their seals are known (`BulkSegments.speculates`). */
  readonly speculates: (device: DeviceId) => boolean;
  /** Runs `work` on the log's serial work chain. */
  readonly enqueue: (work: () => Promise<void>) => void;
  readonly isClosed: () => boolean;
}

/**
 * Which documents exist for the log: the devices it follows and, for each, how many segments.
 *
 * @remarks The root index is writable by any peer, so its counts are never trusted: the log
 * follows segment `k` of a device only on signed evidence (the segment after the device's
 * complete prefix, each segment a relay seal names and the one after it, its own segments), and
 * devices are discovered from the root index, relay-signed rosters and their events (roster
 * members only). A hostile index costs at most one document per enrolled device.
 */
export class Following {
  readonly #deps: FollowingDeps;
  /** Per device: how many of its segments the log follows (see {@link Following.segmentBound}). */
  readonly #following = new Map<DeviceId, number>();
  /** Per device: the highest segment index a relay seal names. */
  readonly #sealedIndex = new Map<DeviceId, number>();
  /** Devices named by the relay's signed rosters (discovered even if the root index hides them). */
  readonly #rosterDevices = new Set<DeviceId>();
  /** A refresh is queued on the work chain and has not started (see {@link Following.refresh}). */
  #refreshQueued = false;

  constructor(deps: FollowingDeps) {
    this.#deps = deps;
  }

  /**
   * How many segments of `device` the log follows: the one after its complete prefix, every one a
   * relay seal names and the one after it (another device's: {@link SEALED_AHEAD} past its prefix
   * at a time), and (for this device) every one it wrote.
   *
   * @remarks A segment is opened only on signed evidence that it holds, or is next to hold, the
   * device's events. A hostile root entry (a million segments, or none) changes nothing; a device
   * whose own events skip numbers only ever gets its next segment followed (issue #13, scenario 3).
   * Another device's sealed segments are followed as its prefix grows (each one completed moves the
   * window on); behind a hole they wait, as its later events would wait to be shown anyway. This
   * device's own sealed segments are all followed at once: its own history is checked with peers
   * before it appends (`OwnHistoryCheck`).
   */
  segmentBound(device: DeviceId): number {
    const { segmentSize: size, deviceId } = this.#deps.ctx;
    const next = this.#next(device);
    let bound = next;
    const sealed = this.#sealedIndex.get(device);
    if (sealed !== undefined)
      bound = Math.max(bound, device === deviceId ? sealed + 2 : Math.min(sealed + 2, next + SEALED_AHEAD));
    if (device === deviceId) bound = Math.max(bound, Math.ceil(this.#deps.assigned() / size));
    return bound;
  }

  /**
   * Up to which segment index (exclusive) the relay is expected to have sealed `device`'s segments,
   * whether its seals of them are known here yet or not: the segments the root index announces,
   * but for the last one (still filling), at most {@link BULK_IN_FLIGHT} past the device's next
   * missing event. Those whose seals are not known yet are asked of a peer in bulk at once
   * (`speculative`), and taken in when their seals arrive (`BulkSegments.sealNoted`).
   *
   * @remarks A new device hears of the relay's seals only once it has synced, verified and stored
   * the relay's own segment: a second or more, during which it asked for nothing, and followed the
   * segment holding each device's next event the Repo's way (materialized, compacted). The root
   * index is any peer's to write, so it is only a hint here: a wrong count costs at most
   * {@link BULK_IN_FLIGHT} requests per device, answered `segment-unavailable` or kept until
   * `SPECULATIVE_WAIT_MS`, then synced the Repo's way (and the device's later segments wait for
   * their seals, as before: `speculates`). Without a relay no seal ever comes: 0. Not only before
   * the first seal: the relay's segment may arrive in pieces, and the segment after the last seal
   * known would go the Repo's way meanwhile.
   */
  #expectedSealed(device: DeviceId): number {
    const { relay, ctx, segments } = this.#deps;
    // (The relay seals; it expects no seal of anyone.)
    if (relay === undefined || relay === ctx.deviceId || device === relay || device === ctx.deviceId)
      return 0;
    if (!this.#deps.speculates(device)) return 0;
    const announced: unknown = segments.root.doc().devices[device];
    if (typeof announced !== 'number' || !Number.isSafeInteger(announced)) return 0;
    return Math.min(announced - 1, this.#next(device) - 1 + BULK_IN_FLIGHT);
  }

  /** How many segments of `device` this log follows at least: up to the one holding its next missing event. */
  #next(device: DeviceId): number {
    return Math.floor(this.#deps.visible.contiguous(device) / this.#deps.ctx.segmentSize) + 1;
  }

  /** Devices whose segments the log follows: named by the root index, a relay roster or their events. */
  #followedDevices(): DeviceId[] {
    const out = new Set<DeviceId>([this.#deps.ctx.deviceId]);
    const relay = this.#deps.relay;
    if (relay !== undefined) out.add(relay);
    for (const device of this.#rosterDevices) out.add(device);
    for (const device of this.#deps.visible.devices()) out.add(device);
    for (const device of Object.keys(this.#deps.segments.root.doc().devices)) {
      if (out.size >= MAX_FOLLOWED_DEVICES) break;
      out.add(device as DeviceId);
    }
    // The relay's segments first: the seals in them spare verifying sealed segments one by one.
    return [...out].sort((a, b) => Number(b === relay) - Number(a === relay));
  }

  /** Re-reads which segments to follow when new evidence (a complete segment, a seal) appears. */
  evidenceGrew(device: DeviceId): void {
    if (this.#deps.isClosed() || !this.#deps.segments.rootOpen) return;
    if (this.segmentBound(device) > (this.#following.get(device) ?? 0)) this.refresh();
  }

  /** A relay seal names segment `index` of `device`: that segment and the next one are followed. */
  noteSealed(device: DeviceId, index: number): void {
    if (index > (this.#sealedIndex.get(device) ?? -1)) {
      this.#sealedIndex.set(device, index);
      this.evidenceGrew(device);
    }
  }

  /** Remembers the devices a relay-signed roster names, so that no root-index edit can hide them. */
  noteRoster(event: SignedEvent): void {
    if (this.#deps.relay === undefined || event.device !== this.#deps.relay) return;
    const parsed = parseRosterUpdatedData(event.data);
    if (!parsed.ok) return;
    const before = this.#rosterDevices.size;
    for (const member of parsed.value.devices) {
      if (this.#rosterDevices.size >= MAX_FOLLOWED_DEVICES) break;
      this.#rosterDevices.add(member.id);
    }
    if (this.#rosterDevices.size > before && !this.#deps.isClosed() && this.#deps.segments.rootOpen)
      this.refresh();
  }

  /**
   * Queues {@link Following.refreshNow} on the log's serial work chain, unless one is queued and
   * has not started yet (it will see the new evidence too).
   *
   * @remarks A new device notes a relay's seals one after another as they become visible, each one
   * new evidence: it queued one refresh per seal (20 in a row at 100k events), each going over
   * every followed segment again.
   */
  refresh(): void {
    if (this.#refreshQueued) return;
    this.#refreshQueued = true;
    this.#deps.enqueue(() => {
      this.#refreshQueued = false;
      return this.refreshNow();
    });
  }

  /** Opens (and reads) every segment the evidence now points to, for every roster member followed. */
  async refreshNow(): Promise<void> {
    const { roster, segments, ctx } = this.#deps;
    const read = (segment: SegmentState): void => this.#deps.read(segment);
    for (const device of this.#followedDevices()) {
      const member = roster.lookup(device);
      // Only the roster's devices get documents opened.
      if (member === undefined || member.facility !== ctx.facility) continue;
      const count = this.segmentBound(device);
      if (count > (this.#following.get(device) ?? 0)) this.#following.set(device, count);
      const sealed = this.#sealedIndex.get(device) ?? -1;
      const expected = this.#expectedSealed(device);
      for (let index = 0; index < count; index++) {
        const relaySealed = index <= sealed;
        await segments.follow(device, index, read, relaySealed, !relaySealed && index < expected);
      }
      if (device === ctx.deviceId) continue;
      // Past the Repo's window, relay-sealed segments go to the bulk transfer alone.
      const ahead = Math.min(Math.max(sealed + 1, expected), this.#next(device) + BULK_AHEAD);
      for (let index = count; index < ahead; index++) segments.offerWhole(device, index, index > sealed);
    }
  }
}
