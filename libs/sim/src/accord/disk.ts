import { MemoryEventStore, MemoryKeyValue, MemoryStorageAdapter } from '@accord/storage-level';

/**
 * What a simulated process keeps on its disk: the event store's and the sync documents' backends.
 * A process opens fresh stores on them; the disk outlives the process.
 *
 * @remarks A crash keeps {@link copy} of the disk taken at the crash instant for the restarted
 * process: what the dying process still writes (a pending flush, its close) lands on the old
 * backends and is lost with them, as on a real crash. A backup is such a copy taken earlier.
 */
export class Disk {
  readonly #events: MemoryKeyValue;
  readonly #documents: MemoryKeyValue;

  constructor(events = new MemoryKeyValue(), documents = new MemoryKeyValue()) {
    this.#events = events;
    this.#documents = documents;
  }

  /** Everything on the disk now, as a disk of its own. */
  copy(): Disk {
    return new Disk(this.#events.clone(), this.#documents.clone());
  }

  /** A new event store on the disk (a process opening it). */
  eventStore(): MemoryEventStore {
    return new MemoryEventStore({ backend: this.#events });
  }

  /** A new automerge-repo storage adapter on the disk (a process opening it). */
  storage(): MemoryStorageAdapter {
    return new MemoryStorageAdapter({ backend: this.#documents });
  }
}
