import { seededRandom, type SeededRandom } from './random.js';

/**
 * The seed for a randomized, non-fast-check test: `FC_SEED` when set (an integer, or
 * `random` for a fresh one), otherwise a fixed seed derived from `name`.
 *
 * @remarks Deriving the default from the name keeps tests deterministic yet different
 * from one another; `FC_SEED` replays one seed across every test, as for fast-check.
 */
export function testSeed(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): number {
  const raw = env['FC_SEED'];
  if (raw === 'random') return Math.floor(Math.random() * 0x7fffffff);
  if (raw !== undefined && raw !== '') {
    const seed = Number.parseInt(raw, 10);
    if (!Number.isSafeInteger(seed))
      throw new RangeError(`FC_SEED must be an integer or "random", got ${raw}`);
    return seed;
  }
  // FNV-1a over the UTF-16 code units of the name: stable across platforms.
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash & 0x7fffffff;
}

/**
 * Runs a randomized test body with a seed and a {@link SeededRandom} from it; on failure
 * prints `seed=<n>` and adds it to the error message so the run can be replayed with
 * `FC_SEED=<n>`.
 *
 * @remarks The body's result is returned unchanged; the original error is rethrown.
 */
export async function withSeed<T>(
  name: string,
  fn: (seed: number, random: SeededRandom) => T | Promise<T>,
): Promise<T> {
  const seed = testSeed(name);
  try {
    return await fn(seed, seededRandom(seed));
  } catch (error) {
    const note = `${name}: failed with seed=${seed} (replay: FC_SEED=${seed})`;
    console.error(`[withSeed] ${note}`);
    if (error instanceof Error && !error.message.includes(`seed=${seed}`))
      error.message = `${error.message}\n${note}`;
    throw error;
  }
}
