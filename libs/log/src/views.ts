import { compareTentative, isSystemEventType, type EventStatusInfo, type Projection } from '@accord/domain';
import { SystemEventType, type DeviceId, type EventId, type SignedEvent } from '@accord/protocol';
import type { EventInfo, LogCounts } from './api.js';
import type { VisibleSet } from './visible-set.js';

/**
 * The log's read side over the {@link VisibleSet}: event infos, lists, counts and the tentative
 * and confirmed projections.
 *
 * @remarks The tentative view and the counts are cached and extended in place when a new plain
 * domain event sorts last (the common case of a local append); anything else drops them, and they
 * are refolded on the next read (which reads the pending events back from the store). Counts need
 * statuses and devices only: no event is read for them. Lists read back only the events they
 * return, walking each device's ids in seq order (so they come out in (device, seq) order).
 */
export class Views {
  readonly #visible: VisibleSet;
  readonly #deviceId: DeviceId;
  #counts: LogCounts | undefined;
  #tentative: { projection: Projection; last: SignedEvent | undefined } | undefined;

  constructor(visible: VisibleSet, deviceId: DeviceId) {
    this.#visible = visible;
    this.#deviceId = deviceId;
  }

  /**
   * Keeps derived views current: events that cannot change the tentative view or anyone's status
   * extend them in place (a plain new domain event that sorts last, a roster or a seal); anything
   * else drops them.
   */
  onVisible(released: readonly SignedEvent[]): void {
    for (const event of released) {
      if (!this.#extend(event)) {
        this.reset();
        return;
      }
    }
  }

  /** Extends the cached views with one new visible event; false when they must be rebuilt. */
  #extend(event: SignedEvent): boolean {
    const folder = this.#visible.folder;
    const tentative = this.#tentative;
    if (tentative === undefined || event.supersedes !== undefined || folder.targeted(event.id)) return false;
    if (isSystemEventType(event.type)) {
      // Rosters and seals name no other event: only their own status (if any) is new.
      if (event.type !== SystemEventType.RosterUpdated && event.type !== SystemEventType.SegmentSealed)
        return false;
    } else {
      if (tentative.last !== undefined && compareTentative(tentative.last, event) >= 0) return false;
      try {
        tentative.projection.apply(event);
      } catch {
        // The projection could not read back a record the event changes (a registration damaged
        // on disk: `@accord/domain`, "Records read back"). The event is stored and visible all the
        // same; the view is rebuilt at the next query, which then reports the damage.
        return false;
      }
      tentative.last = event;
    }
    const status = folder.status(event.id);
    const counts = this.#counts;
    if (counts !== undefined && status !== undefined) {
      // A new event nobody has answered yet: pending.
      this.#counts = {
        ...counts,
        total: counts.total + 1,
        [status.status]: counts[status.status] + 1,
        outbox: counts.outbox + (status.status === 'pending' && event.device === this.#deviceId ? 1 : 0),
      };
    }
    return true;
  }

  /** Drops the cached views (the visible set changed in a way they cannot follow). */
  reset(): void {
    this.#counts = undefined;
    this.#tentative = undefined;
  }

  /** The event, its status and latest verdict; undefined when unknown or still held back. */
  get(id: EventId): EventInfo | undefined {
    const event = this.#visible.visible(id);
    if (event === undefined) return undefined;
    return info(event, this.#visible.folder.status(id));
  }

  /** Visible non-verdict events, optionally filtered, in (device, seq) order. */
  list(filter: { status?: EventInfo['status']; device?: DeviceId } = {}): EventInfo[] {
    const visible = this.#visible;
    const folder = visible.folder;
    const devices = filter.device !== undefined ? [filter.device] : [...visible.devices()].sort(cmp);
    const out: EventInfo[] = [];
    for (const device of devices) {
      for (const id of visible.visibleIds(device)) {
        const status = folder.status(id);
        if (status === undefined) continue; // relay statements have no status
        if (filter.status !== undefined && status.status !== filter.status) continue;
        out.push(info(folder.event(id)!, status));
      }
    }
    return out;
  }

  /** Event counts by status, as shown by `GET /api/status`. */
  counts(): LogCounts {
    if (this.#counts !== undefined) return { ...this.#counts };
    const visible = this.#visible;
    const folder = visible.folder;
    const counts = { total: 0, pending: 0, accepted: 0, deadletter: 0, resolved: 0, outbox: 0 };
    for (const device of visible.devices()) {
      for (const id of visible.visibleIds(device)) {
        const status = folder.status(id);
        if (status === undefined) continue;
        counts.total++;
        counts[status.status]++;
        if (status.status === 'pending' && device === this.#deviceId) counts.outbox++;
      }
    }
    this.#counts = counts;
    return { ...counts };
  }

  /** Confirmed state: accepted events in relay order. A copy: callers may not mutate the cache. */
  confirmed(): Projection {
    return this.#visible.folder.confirmed().clone();
  }

  /** Tentative state: confirmed plus pending events in (HLC, device, seq) order (the cached instance). */
  tentative(): Projection {
    if (this.#tentative === undefined) {
      const folder = this.#visible.folder;
      this.#tentative = { projection: folder.tentative(), last: folder.pending().at(-1) };
    }
    return this.#tentative.projection;
  }
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function info(event: SignedEvent, status: EventStatusInfo | undefined): EventInfo {
  if (status === undefined) return { event, status: 'accepted' };
  return {
    event,
    status: status.status,
    ...(status.verdict !== undefined ? { verdict: status.verdict } : {}),
    ...(status.resolvedBy !== undefined ? { resolvedBy: status.resolvedBy } : {}),
  };
}
