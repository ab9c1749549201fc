import { compareTentative, isSystemEventType, type EventStatusInfo, type Projection } from '@accord/domain';
import type { DeviceId, EventId, SignedEvent } from '@accord/protocol';
import type { EventInfo, LogCounts } from './api.js';
import type { VisibleSet } from './visible-set.js';

/**
 * The log's read side over the {@link VisibleSet}: event infos, lists, counts and the tentative
 * and confirmed projections.
 *
 * @remarks The tentative view and the counts are cached and extended in place when a new plain
 * domain event sorts last (the common case of a local append); anything else drops them, and they
 * are refolded on the next read.
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

  /** Keeps derived views current: a plain new domain event that sorts last extends them in place. */
  onVisible(released: readonly SignedEvent[]): void {
    const folder = this.#visible.folder;
    const tentative = this.#tentative;
    const counts = this.#counts;
    const fastPath =
      released.length === 1 &&
      tentative !== undefined &&
      !isSystemEventType(released[0]!.type) &&
      released[0]!.supersedes === undefined &&
      !folder.targeted(released[0]!.id) &&
      (tentative.last === undefined || compareTentative(tentative.last, released[0]!) < 0);
    if (fastPath) {
      const event = released[0]!;
      tentative.projection.apply(event);
      tentative.last = event;
      if (counts !== undefined) {
        // A new domain event nobody has answered yet: pending.
        this.#counts = {
          ...counts,
          total: counts.total + 1,
          pending: counts.pending + 1,
          outbox: counts.outbox + (event.device === this.#deviceId ? 1 : 0),
        };
      }
      return;
    }
    this.reset();
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
    const folder = this.#visible.folder;
    const out: EventInfo[] = [];
    for (const event of folder.events.values()) {
      if (filter.device !== undefined && event.device !== filter.device) continue;
      const status = folder.status(event.id);
      if (status === undefined) continue; // relay statements have no status
      if (filter.status !== undefined && status.status !== filter.status) continue;
      out.push(info(event, status));
    }
    return out.sort((a, b) =>
      a.event.device < b.event.device ? -1 : a.event.device > b.event.device ? 1 : a.event.seq - b.event.seq,
    );
  }

  /** Event counts by status, as shown by `GET /api/status`. */
  counts(): LogCounts {
    if (this.#counts !== undefined) return { ...this.#counts };
    const folder = this.#visible.folder;
    const counts = { total: 0, pending: 0, accepted: 0, deadletter: 0, resolved: 0, outbox: 0 };
    for (const event of folder.events.values()) {
      const status = folder.status(event.id);
      if (status === undefined) continue;
      counts.total++;
      counts[status.status]++;
      if (status.status === 'pending' && event.device === this.#deviceId) counts.outbox++;
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

function info(event: SignedEvent, status: EventStatusInfo | undefined): EventInfo {
  if (status === undefined) return { event, status: 'accepted' };
  return {
    event,
    status: status.status,
    ...(status.verdict !== undefined ? { verdict: status.verdict } : {}),
    ...(status.resolvedBy !== undefined ? { resolvedBy: status.resolvedBy } : {}),
  };
}
