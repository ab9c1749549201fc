import type { DocumentId } from '@automerge/automerge-repo';
import type { RepoHost } from './repo-host.js';
import type { LogMetaSpace } from './ports.js';
import { SEALED, sealMarker, type Segments } from './segments.js';

/**
 * How often idle sealed segments are dropped from memory, by default. Short: a device appending
 * thousands of events a second seals a segment every second or two, and each one kept loaded
 * holds every event's bytes twice (Automerge's copy, the materialized one). Long enough that the
 * throttled document save (RepoHost's save debounce, 1 s) is done before a segment can count as
 * idle.
 */
export const DEFAULT_SWEEP_MS = 2000;

/** What {@link SealingSweep} asks of the rest of the log. */
export interface SealingDeps {
  readonly host: RepoHost;
  readonly segments: Segments;
  /** Where own segments are recorded as sealed (the event store's meta). */
  readonly markers: LogMetaSpace;
  /** How often the sweep runs; a sealed document must stay idle this long to be unloaded. */
  readonly intervalMs: number;
  /** Runs `work` on the log's serial work chain (so a sweep never races ingest). */
  readonly enqueue: (work: () => Promise<void>) => void;
}

/**
 * The sealing sweep: drops sealed segment documents from memory once they are idle.
 *
 * @remarks A sealed document (just sealed, or reloaded by the Repo to serve a peer) is unloaded
 * once its heads have not moved and no sync message about it has arrived for a whole interval
 * (a peer being served is never cut off mid-sync). Idleness is counted in sweeps, not read from a
 * clock: the log's injected clock may stand still or jump. Before the first unload its stored copy is
 * saved and frozen, and an own segment is marked sealed in the store, so that a restart never
 * loads it again. Waiting for idleness matters: automerge-repo's throttled save and an explicit
 * flush racing on the same document can compact its stored chunks away.
 */
export class SealingSweep {
  readonly #deps: SealingDeps;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Heads of each loaded sealed document at the last sweep. */
  readonly #heads = new Map<DocumentId, string>();
  /** Sealed documents a peer sent a sync message about since the last sweep. */
  #traffic = new Set<DocumentId>();

  constructor(deps: SealingDeps) {
    this.#deps = deps;
  }

  /** Starts watching traffic and sweeping every interval. */
  start(): void {
    const { host, segments, intervalMs, enqueue } = this.#deps;
    host.onMessage((id) => {
      if (segments.isSealed(id)) this.#traffic.add(id);
    });
    this.#timer = setInterval(() => enqueue(() => this.sweep()), intervalMs);
    this.#timer.unref();
  }

  /** Stops sweeping. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** One sweep: unloads every sealed document that stayed idle since the last one. */
  async sweep(): Promise<void> {
    const { host, segments, markers } = this.#deps;
    const traffic = this.#traffic;
    this.#traffic = new Set();
    for (const id of segments.sealedIds()) {
      const handle = host.loaded(id);
      if (handle === undefined) {
        this.#heads.delete(id);
        continue;
      }
      const heads = handle.heads().join(',');
      if (traffic.has(id) || this.#heads.get(id) !== heads) {
        this.#heads.set(id, heads);
        continue;
      }
      this.#heads.delete(id);
      if (!host.isFrozen(id)) {
        await host.save(id);
        host.freeze(id);
        const own = segments.ownIndex(id);
        if (own !== undefined) await markers.put(sealMarker(own), SEALED);
      }
      await host.unload(id);
    }
  }
}
