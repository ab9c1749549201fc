import { encodeSignedEvent, type DeviceId, type SignedEvent } from '@accord/protocol';
import { bytesEqual } from './bytes.js';
import { MAX_INCIDENTS_KEPT, type Incidents } from './incidents.js';
import type { LogMetaSpace } from './ports.js';
import type { VisibleSet } from './visible-set.js';

/** The store's meta key holding the equivocation barriers (`{device: seq}` as JSON). */
const EQUIVOCATIONS = 'equivocations';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What {@link Equivocations} asks of the rest of the log. */
export interface EquivocationsDeps {
  /** Where the barriers are kept durably (the event store's meta). */
  readonly markers: LogMetaSpace;
  readonly visible: VisibleSet;
  readonly incidents: Incidents;
  /** Told when events that were visible are held back again (cached views must go). */
  readonly onWithheld: () => void;
  readonly isClosed: () => boolean;
}

/**
 * Devices caught signing two events with one sequence number: each is reported once
 * (`LOG_EQUIVOCATION`), and its events from the lowest such seq on are withheld on every device,
 * whichever copy each one stored first; the barriers are kept in the store's meta.
 */
export class Equivocations {
  readonly #deps: EquivocationsDeps;
  /** Equivocations already reported, so a rescan does not report one again. */
  readonly #reported = new Set<string>();

  constructor(deps: EquivocationsDeps) {
    this.#deps = deps;
  }

  /**
   * `event` is validly signed by its device but another event holds its (device, seq): the device
   * signed two histories. Reports it once, and withholds the device's events from that seq on.
   *
   * @remarks Every device applies the same rule to the same evidence (both copies end up in the
   * device's segment document, which every peer merges), whichever copy it happened to store:
   * the lowest equivocated seq is the barrier, so all devices show the same events.
   */
  async equivocated(event: SignedEvent): Promise<void> {
    const { visible, incidents, markers } = this.#deps;
    if (this.#deps.isClosed()) return;
    // Is it really a second event? (The copy we hold may be this very event after all.)
    const heldId = visible.idAt(event.device, event.seq);
    const held = heldId === undefined ? undefined : visible.known(heldId);
    if (held !== undefined && bytesEqual(encodeSignedEvent(held), encodeSignedEvent(event))) return;
    const key = `${event.device}/${event.seq}/${event.id}/${event.sig}`;
    if (!this.#reported.has(key)) {
      if (this.#reported.size < MAX_INCIDENTS_KEPT) this.#reported.add(key);
      incidents.report({
        code: 'LOG_EQUIVOCATION',
        message: `device ${event.device} signed two different events with seq ${event.seq}`,
        eventId: event.id,
        device: event.device,
      });
    }
    const barrier = visible.barrier(event.device);
    if (barrier !== undefined && barrier <= event.seq) return;
    visible.setBarrier(event.device, event.seq);
    await markers.put(
      EQUIVOCATIONS,
      new TextEncoder().encode(JSON.stringify(Object.fromEntries(visible.barriers()))),
    );
    if (visible.withholdFrom(event.device, event.seq)) this.#deps.onWithheld();
  }
}

/**
 * Restores the equivocation barriers kept in the store's meta into `visible` (before any event is
 * added to it, as the log opens). An unreadable record restores none: the evidence is found again
 * when the documents are read.
 */
export async function restoreBarriers(markers: LogMetaSpace, visible: VisibleSet): Promise<void> {
  for (const [device, seq] of await readBarriers(markers)) visible.setBarrier(device, seq);
}

async function readBarriers(markers: LogMetaSpace): Promise<[DeviceId, number][]> {
  const bytes = await markers.get(EQUIVOCATIONS);
  if (bytes === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(utf8.decode(bytes));
    if (typeof parsed !== 'object' || parsed === null) return [];
    return Object.entries(parsed).flatMap(([device, seq]) =>
      Number.isSafeInteger(seq) && (seq as number) > 0 ? [[device as DeviceId, seq as number]] : [],
    );
  } catch {
    return []; // evidence is found again when the documents are read
  }
}
