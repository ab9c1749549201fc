/**
 * Copy-on-write holder of a Map: {@link Cow.fork} shares the Map between two owners; the first
 * write through either owner copies it. Lets `Projection.clone()` cost O(1) per map.
 */
export class Cow<K, V> {
  #map: Map<K, V>;
  #shared: boolean;

  constructor(map: Map<K, V> = new Map(), shared = false) {
    this.#map = map;
    this.#shared = shared;
  }

  /** The map, for reading only. */
  get r(): ReadonlyMap<K, V> {
    return this.#map;
  }

  /** The map, for writing (copied first if shared). */
  get w(): Map<K, V> {
    if (this.#shared) {
      this.#map = new Map(this.#map);
      this.#shared = false;
    }
    return this.#map;
  }

  /** A second owner of the same map; both copy before their next write. */
  fork(): Cow<K, V> {
    this.#shared = true;
    return new Cow(this.#map, true);
  }
}

/**
 * A set of ids that forks in O(1): frozen shared levels plus a private set of recent additions.
 *
 * @remarks On fork, the private additions become a new shared level; adjacent levels of similar
 * size are merged (size-tiered), so there are O(log n) levels and each id is copied O(log n)
 * times overall. Levels are never mutated once shared.
 */
export class IdSet<T> {
  #levels: readonly ReadonlySet<T>[];
  #own: Set<T>;
  #frozenSize: number;

  constructor(levels: readonly ReadonlySet<T>[] = [], frozenSize = 0) {
    this.#levels = levels;
    this.#own = new Set();
    this.#frozenSize = frozenSize;
  }

  /** Number of ids. */
  get size(): number {
    return this.#frozenSize + this.#own.size;
  }

  /** True when `id` was added. */
  has(id: T): boolean {
    if (this.#own.has(id)) return true;
    for (let i = this.#levels.length - 1; i >= 0; i--) if (this.#levels[i]!.has(id)) return true;
    return false;
  }

  /** Adds `id` (no-op when present). */
  add(id: T): void {
    if (!this.has(id)) this.#own.add(id);
  }

  /** An independent copy sharing this set's contents. */
  fork(): IdSet<T> {
    if (this.#own.size > 0) {
      const levels = [...this.#levels, this.#own];
      // Size-tiered compaction: merge the newest level into the previous while they are comparable.
      while (levels.length >= 2 && levels[levels.length - 1]!.size * 2 >= levels[levels.length - 2]!.size) {
        const top = levels.pop()!;
        const below = levels.pop()!;
        const merged = new Set(below);
        for (const id of top) merged.add(id);
        levels.push(merged);
      }
      this.#levels = levels;
      this.#frozenSize += this.#own.size;
      this.#own = new Set();
    }
    return new IdSet(this.#levels, this.#frozenSize);
  }
}
