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
 * times overall. Levels are never mutated once shared. A level is a sorted array, searched by
 * bisection: one slot (8 bytes) per id where a `Set` costs ≈ 26 (its hash table), which at 100k
 * events is the projection's applied set going from 2.5 MB to 0.8. Ids compare with `<` (code
 * units for strings), so any ids `<` orders totally will do (strings, numbers).
 */
export class IdSet<T extends string | number> {
  #levels: readonly (readonly T[])[];
  #own: Set<T>;
  #frozenSize: number;

  constructor(levels: readonly (readonly T[])[] = [], frozenSize = 0) {
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
    for (let i = this.#levels.length - 1; i >= 0; i--) if (includes(this.#levels[i]!, id)) return true;
    return false;
  }

  /** Adds `id` (no-op when present). */
  add(id: T): void {
    if (!this.has(id)) this.#own.add(id);
  }

  /** An independent copy sharing this set's contents. */
  fork(): IdSet<T> {
    if (this.#own.size > 0) {
      const levels = [...this.#levels, [...this.#own].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))];
      // Size-tiered compaction: merge the newest level into the previous while they are comparable.
      while (
        levels.length >= 2 &&
        levels[levels.length - 1]!.length * 2 >= levels[levels.length - 2]!.length
      ) {
        const top = levels.pop()!;
        levels.push(mergeSorted(levels.pop()!, top));
      }
      this.#levels = levels;
      this.#frozenSize += this.#own.size;
      this.#own = new Set();
    }
    return new IdSet(this.#levels, this.#frozenSize);
  }
}

/** True when the sorted array `level` holds `id` (bisection). */
function includes<T extends string | number>(level: readonly T[], id: T): boolean {
  let lo = 0;
  let hi = level.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (level[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < level.length && level[lo] === id;
}

/** The union of two sorted arrays with no id in common, sorted. */
function mergeSorted<T extends string | number>(a: readonly T[], b: readonly T[]): T[] {
  const out = new Array<T>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! < b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}
