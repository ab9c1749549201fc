import type { EventSource } from '@accord/domain';
import { AccordError, ErrorCode, isAccordError, type EventId, type SignedEvent } from '@accord/protocol';
import type { LogEventStore, LogStoredEvent } from './ports.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** How many damaged ids met on demand are remembered for the integrity report. */
const MAX_DAMAGED_KEPT = 1000;

/**
 * Reads back an event the log itself stored; undefined when the bytes do not parse to an event
 * of their slot.
 *
 * @remarks The store only ever holds events that were fully decoded, schema-checked and
 * verified before they were written, behind a checksum: reading them back needs no second
 * validation. A value that no longer parses, or parses to something else, is corruption.
 */
export function parseStoredEvent(stored: LogStoredEvent): SignedEvent | undefined {
  try {
    const event = JSON.parse(utf8.decode(stored.bytes)) as SignedEvent;
    return event.id === stored.id && event.device === stored.device && event.seq === stored.seq
      ? event
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The log's events, read from its event store on demand: the {@link EventSource} behind the
 * visible set and its projection folder (events are not kept in memory).
 *
 * @remarks Reads are synchronous (`LogEventStore.readSync`), so the log's queries stay
 * synchronous. No cache: a read is one or two LevelDB block-cache hits and a JSON parse, and
 * the hot paths (appends, the cached tentative view, counts, statuses) read nothing. An event
 * that cannot be read back (damaged on disk since the start-up scan) throws `STORAGE_CORRUPT`
 * with its id: the query fails clearly instead of answering without it, the damage is listed
 * by {@link StoredEvents.damaged} (the integrity report), and the next start-up scan sets it
 * aside for repair from peers.
 */
export class StoredEvents implements EventSource {
  readonly #store: LogEventStore;
  readonly #damaged = new Map<EventId, { readonly device?: string; readonly seq?: number }>();

  constructor(store: LogEventStore) {
    this.#store = store;
  }

  /** The stored event with this id; throws `STORAGE_CORRUPT` when it is missing or damaged. */
  event(id: EventId): SignedEvent {
    let stored: LogStoredEvent | undefined;
    try {
      stored = this.#store.readSync(id);
    } catch (err) {
      if (!isAccordError(err, ErrorCode.STORAGE_CORRUPT)) throw err;
      const { device, seq } = err.details as { device?: unknown; seq?: unknown };
      throw this.#damage(
        id,
        err,
        typeof device === 'string' && typeof seq === 'number' ? { device, seq } : {},
      );
    }
    const event = stored === undefined ? undefined : parseStoredEvent(stored);
    if (event === undefined)
      throw this.#damage(
        id,
        undefined,
        stored === undefined ? {} : { device: stored.device, seq: stored.seq },
      );
    return event;
  }

  /** The events found missing or damaged when read on demand since open (at most 1000 listed). */
  damaged(): { readonly id: EventId; readonly device?: string; readonly seq?: number }[] {
    return [...this.#damaged].map(([id, slot]) => ({ id, ...slot }));
  }

  #damage(id: EventId, cause: unknown, slot: { device?: string; seq?: number }): AccordError {
    if (this.#damaged.size < MAX_DAMAGED_KEPT) this.#damaged.set(id, slot);
    return new AccordError(
      ErrorCode.STORAGE_CORRUPT,
      `event ${id} cannot be read back from the event store`,
      {
        details: { id, ...slot },
        ...(cause === undefined ? {} : { cause }),
      },
    );
  }
}
