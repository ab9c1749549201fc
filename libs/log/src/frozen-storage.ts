import type { Chunk, StorageAdapterInterface, StorageKey } from '@automerge/automerge-repo';

/**
 * A storage adapter wrapper that makes the stored copy of *frozen* documents final:
 * saves and removals under their ids are dropped, loads pass through. Once closed, it
 * drops every write.
 *
 * @remarks Sealed segments are complete and never change again, and automerge-repo 2.5.6
 * can damage a stored document when it is unloaded from memory (unloading empties the
 * handle, whose throttled save then compacts the stored chunks away) or reloaded and
 * compacted concurrently. Freezing a document after its final flush rules all of that out.
 */
export class FrozenDocumentsStorage implements StorageAdapterInterface {
  readonly #inner: StorageAdapterInterface;
  readonly #frozen = new Set<string>();
  #closed = false;

  constructor(inner: StorageAdapterInterface) {
    this.#inner = inner;
  }

  /** From now on, nothing under `documentId` is written or removed. */
  freeze(documentId: string): void {
    this.#frozen.add(documentId);
  }

  /** True when `documentId` is frozen. */
  isFrozen(documentId: string): boolean {
    return this.#frozen.has(documentId);
  }

  /**
   * After the log has flushed and shut its Repo down, drop every write: automerge-repo's
   * throttled saves can still fire, and the database underneath may already be closed.
   */
  close(): void {
    this.#closed = true;
  }

  #blocked(key: StorageKey): boolean {
    return this.#closed || (key.length > 0 && this.#frozen.has(key[0]!));
  }

  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.#inner.load(key);
  }

  save(key: StorageKey, data: Uint8Array): Promise<void> {
    return this.#blocked(key) ? Promise.resolve() : this.#inner.save(key, data);
  }

  remove(key: StorageKey): Promise<void> {
    return this.#blocked(key) ? Promise.resolve() : this.#inner.remove(key);
  }

  loadRange(keyPrefix: StorageKey): Promise<Chunk[]> {
    return this.#inner.loadRange(keyPrefix);
  }

  removeRange(keyPrefix: StorageKey): Promise<void> {
    return this.#blocked(keyPrefix) ? Promise.resolve() : this.#inner.removeRange(keyPrefix);
  }
}
