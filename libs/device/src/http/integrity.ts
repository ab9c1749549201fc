// `GET /api/integrity` and `POST /api/resubmit` (issue #10): this device's events per UTC day against
// the relay's, and re-sending what the relay lacks.
import {
  dayDigest,
  ErrorCode,
  eventIdTime,
  utcDay,
  type DayDigest,
  type SignedEvent,
} from '@accord/protocol';
import type { DeviceLogApi } from '@accord/log';
import { deviceError } from '../errors.js';
import type { RelayAdminClient } from '../relay-client.js';
import { isCalendarDate } from './schemas.js';
import type { IntegrityDay, ResubmitDay } from './types.js';

/** Longest range of the integrity check and re-submit, in days. */
const MAX_RANGE_DAYS = 366;

/** The integrity check and re-submit of one device against its relay. */
export class IntegrityCheck {
  readonly #log: DeviceLogApi;
  readonly #clock: () => number;
  /** The relay's client; throws `DEVICE_RELAY_UNREACHABLE` when there is none or the device is offline. */
  readonly #relay: () => RelayAdminClient;
  readonly #resend: ((events: readonly SignedEvent[]) => Promise<number>) | undefined;

  constructor(opts: {
    readonly log: DeviceLogApi;
    readonly clock: () => number;
    readonly relay: () => RelayAdminClient;
    readonly resend?: (events: readonly SignedEvent[]) => Promise<number>;
  }) {
    this.#log = opts.log;
    this.#clock = opts.clock;
    this.#relay = opts.relay;
    this.#resend = opts.resend;
  }

  /** `from`…`to` as UTC days (default: the 30 days up to today), at most {@link MAX_RANGE_DAYS}. */
  range(from: unknown, to: unknown): { from: string; to: string } {
    const today = utcDay(this.#clock());
    const end = to ?? today;
    if (typeof end !== 'string' || !isCalendarDate(end)) {
      throw deviceError(ErrorCode.DEVICE_BAD_REQUEST, 'from and to must be dates YYYY-MM-DD');
    }
    const start = from ?? utcDay(Date.parse(`${end}T00:00:00Z`) - 29 * 86_400_000);
    if (
      typeof start !== 'string' ||
      typeof end !== 'string' ||
      !isCalendarDate(start) ||
      !isCalendarDate(end)
    ) {
      throw deviceError(ErrorCode.DEVICE_BAD_REQUEST, 'from and to must be dates YYYY-MM-DD');
    }
    const span = (Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86_400_000 + 1;
    if (span < 1 || span > MAX_RANGE_DAYS) {
      throw deviceError(ErrorCode.DEVICE_BAD_REQUEST, `from…to must be 1-${MAX_RANGE_DAYS} days`, {
        details: { from: start, to: end },
      });
    }
    return { from: start, to: end };
  }

  /** This device's events by UTC day of their id, for `from`…`to` (one pass over the log's memory). */
  #eventsByDay(from: string, to: string): Map<string, SignedEvent[]> {
    const byDay = new Map<string, SignedEvent[]>();
    for (const e of this.#log.visibleEvents()) {
      const day = utcDay(eventIdTime(e.id));
      if (day < from || day > to) continue;
      const list = byDay.get(day);
      if (list === undefined) byDay.set(day, [e]);
      else list.push(e);
    }
    return byDay;
  }

  /** Compares this device's per-day digests with the relay's (`mine`: its events of each day). */
  async compare(
    from: string,
    to: string,
  ): Promise<{
    from: string;
    to: string;
    zone: 'UTC';
    match: boolean;
    days: IntegrityDay[];
    mine: Map<string, SignedEvent[]>;
  }> {
    const relayDays = await this.#relay().digests(from, to);
    const mine = this.#eventsByDay(from, to);
    const theirs = new Map<string, DayDigest>(relayDays.map((d) => [d.day, d]));
    const days: IntegrityDay[] = [];
    for (const day of [...new Set([...mine.keys(), ...theirs.keys()])].sort()) {
      const own = await dayDigest(
        day,
        (mine.get(day) ?? []).map((e) => e.id),
      );
      const relay = theirs.get(day);
      days.push({
        day,
        device: own.count,
        relay: relay?.count ?? 0,
        match: relay !== undefined && relay.digest === own.digest,
      });
    }
    return { from, to, zone: 'UTC', match: days.every((d) => d.match), days, mine };
  }

  /** Finds, per mismatching day, the events the relay lacks and re-adds them to the sync documents. */
  async resubmit(from: string, to: string): Promise<{ from: string; to: string; days: ResubmitDay[] }> {
    const { days: compared, mine } = await this.compare(from, to);
    const days: ResubmitDay[] = [];
    const client = this.#relay();
    for (const d of compared) {
      if (d.match) continue;
      const own = mine.get(d.day) ?? [];
      const held = new Set(d.relay === 0 ? [] : await client.ids(d.day));
      const missing = own.filter((e) => !held.has(e.id));
      const resent = missing.length === 0 || this.#resend === undefined ? 0 : await this.#resend(missing);
      days.push({ day: d.day, missing: missing.length, resent });
    }
    return { from, to, days };
  }
}
