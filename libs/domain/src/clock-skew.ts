import { eventIdTime, isEventId, verdictsIn, SystemEventType } from '@accord/protocol';
import type { DeviceId, EventId, SignedEvent } from '@accord/protocol';

/** Default: a device whose clock is more than an hour ahead of the relay's is flagged. */
export const CLOCK_SKEW_THRESHOLD_MS = 3_600_000;

const HOUR_MS = 3_600_000;

/** A device whose clock is off, as shown by `GET /api/status` (`clockSkews`) and the Sync Centre. */
export interface ClockSkew {
  readonly device: DeviceId;
  /** How far the device's clock is ahead of the relay's, in hours (one decimal). */
  readonly offByHours: number;
  /** The same in milliseconds: a lower bound (the time the event took to reach the relay is not counted). */
  readonly offByMs: number;
  /** The device's event that shows it (its latest one, by sequence number, with a verdict). */
  readonly event: EventId;
  /** The relay event stating that event's earliest verdict: the reference time. */
  readonly verdict: EventId;
}

/** What the detector needs of a judged event besides its id: where it sits in its author's sequence. */
export type JudgedPlace = Pick<SignedEvent, 'device' | 'seq'>;

interface Evidence {
  /** The judged event's sequence number on its device (recency). */
  readonly seq: number;
  readonly leadMs: number;
  readonly event: EventId;
  readonly verdict: EventId;
}

/**
 * Finds devices whose clocks are off, from evidence every device holds alike: the relay's verdicts.
 *
 * @remarks An event id carries its author's wall-clock time when it recorded the event (its HLC may
 * have been moved by observing others; the id's time is the raw clock), and a relay verdict's id
 * the relay's wall time when it judged it. An honest device's event cannot be judged before it was
 * made, so `event time − verdict time` is at most a clock's error; a device whose latest judged
 * event (by its sequence number) leads its earliest verdict by more than the threshold has a
 * clock that far ahead, at least. A clock that was put right stops being flagged with the
 * device's next judged event. A clock that is *behind* is not flagged:
 * an event that waited offline for its verdict looks the same. Feed every event of the log, in
 * any order; the result depends only on the set of events, so it is the same on every device.
 */
export class ClockSkewDetector {
  readonly #relay: DeviceId | null;
  readonly #thresholdMs: number;
  readonly #lookup: (id: EventId) => JudgedPlace | undefined;
  readonly #latest = new Map<DeviceId, Evidence>();
  /** Verdicts about events not seen yet: target → the relay's time and verdict id (the earliest). */
  readonly #awaiting = new Map<EventId, { at: number; verdict: EventId }>();

  /**
   * A detector for the facility whose relay is `relay` (null: no relay, nothing is flagged);
   * `lookup` finds where an event of the log sits by its id (a device's log answers from its
   * indexes, reading nothing: `DeviceLogApi.locate`; the event itself will do).
   */
  constructor(opts: {
    readonly relay: DeviceId | null;
    readonly lookup: (id: EventId) => JudgedPlace | undefined;
    readonly thresholdMs?: number;
  }) {
    this.#relay = opts.relay;
    this.#lookup = opts.lookup;
    this.#thresholdMs = opts.thresholdMs ?? CLOCK_SKEW_THRESHOLD_MS;
  }

  /** Takes one event of the log into account (duplicates are harmless). */
  add(event: SignedEvent): void {
    if (this.#relay === null) return;
    if (event.device !== this.#relay) {
      const waiting = this.#awaiting.get(event.id);
      if (waiting !== undefined) {
        this.#awaiting.delete(event.id);
        this.#measure(event.id, event, waiting.at, waiting.verdict);
      }
      return;
    }
    if (event.type !== SystemEventType.Verdict && event.type !== SystemEventType.AcceptedVerdicts) return;
    const at = timeOf(event.id);
    if (at === undefined) return;
    for (const { target } of verdictsIn(event)) {
      const judged = this.#lookup(target);
      if (judged !== undefined) {
        this.#measure(target, judged, at, event.id);
        continue;
      }
      const known = this.#awaiting.get(target);
      if (known === undefined || at < known.at || (at === known.at && event.id < known.verdict))
        this.#awaiting.set(target, { at, verdict: event.id });
    }
  }

  #measure(id: EventId, judged: JudgedPlace, at: number, verdict: EventId): void {
    if (judged.device === this.#relay) return;
    const made = timeOf(id);
    if (made === undefined) return;
    const leadMs = made - at;
    const prev = this.#latest.get(judged.device);
    // The device's latest event (its own sequence) wins; of its verdicts, the earliest (the
    // largest lead, the tightest bound); then the smaller verdict id. A total order: the outcome
    // does not depend on the order events arrive in.
    if (prev !== undefined) {
      const order =
        judged.seq - prev.seq ||
        leadMs - prev.leadMs ||
        (verdict < prev.verdict ? 1 : verdict > prev.verdict ? -1 : 0);
      if (order <= 0) return;
    }
    this.#latest.set(judged.device, { seq: judged.seq, leadMs, event: id, verdict });
  }

  /** Devices whose clock is ahead by more than the threshold, sorted by device id. */
  skews(): ClockSkew[] {
    const out: ClockSkew[] = [];
    for (const [device, e] of this.#latest) {
      if (e.leadMs <= this.#thresholdMs) continue;
      out.push({
        device,
        offByHours: Math.round((e.leadMs / HOUR_MS) * 10) / 10,
        offByMs: e.leadMs,
        event: e.event,
        verdict: e.verdict,
      });
    }
    return out.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  }
}

function timeOf(id: string): number | undefined {
  return isEventId(id) ? eventIdTime(id) : undefined;
}
