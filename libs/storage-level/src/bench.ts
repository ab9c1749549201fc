import { ioError } from './errors.js';
import { encodeSeq } from './keys.js';
import { openLevel } from './level-open.js';

/** Options of {@link benchRawLevelPuts}. */
export interface RawLevelBenchOptions {
  /** Puts per batch (default 64). */
  readonly batchSize?: number;
  /** Sync (fsync) each batch, as the stores do (default true). */
  readonly sync?: boolean;
}

/** Result of {@link benchRawLevelPuts}. */
export interface RawLevelBenchResult {
  readonly perSecond: number;
  readonly count: number;
  readonly batches: number;
  readonly ms: number;
}

/**
 * Raw LevelDB baseline: writes `payloads` under sequential keys in batched puts (synced by
 * default), with no framing or checks, into a new database at `path`, then closes it.
 *
 * @remarks A measurement helper for `npm run bench`; it asserts nothing about speed.
 */
export async function benchRawLevelPuts(
  path: string,
  payloads: readonly Uint8Array[],
  options: RawLevelBenchOptions = {},
): Promise<RawLevelBenchResult> {
  const batchSize = Math.max(1, options.batchSize ?? 64);
  const sync = options.sync ?? true;
  const db = await openLevel(path);
  try {
    let batches = 0;
    const start = performance.now();
    for (let i = 0; i < payloads.length; i += batchSize) {
      const ops = payloads
        .slice(i, i + batchSize)
        .map((value, j) => ({ type: 'put' as const, key: encodeSeq(i + j + 1), value }));
      await db.batch(ops, { sync });
      batches++;
    }
    const ms = performance.now() - start;
    return {
      perSecond: ms > 0 ? (payloads.length / ms) * 1000 : Number.POSITIVE_INFINITY,
      count: payloads.length,
      batches,
      ms,
    };
  } catch (err) {
    throw ioError(err, 'bench');
  } finally {
    await db.close();
  }
}
