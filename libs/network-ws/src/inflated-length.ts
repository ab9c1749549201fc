// Counts what raw DEFLATE data inflates to without keeping the output. `inflateRawSync` builds a
// new zlib engine per call (a 32 KiB window and its state), collects the output in fresh 16 KiB
// buffers and concatenates them: for the guard, which only needs the length, that copying and
// allocating cost more than the inflation itself (device CPU profiles of the relay bench:
// `Buffer.concat` and `allocUnsafe` 1.5–2.5× zlib's own time under `measureSyncMessage`). Here one
// engine is reset and reused, and its output goes into one scratch buffer, overwritten.
import zlib, { inflateRawSync } from 'node:zlib';

/** The outcome of {@link inflatedLength}. */
export type InflatedLength =
  | { readonly ok: true; readonly bytes: number }
  | { readonly ok: false; readonly problem: 'too-large' | 'corrupt' };

// NOT PUBLIC: Node's own `processChunkSync` (lib/zlib.js, Node 20–24) drives the engine's handle
// this way. When the shape is not there, `inflateRawSync` does the same job, slower.
interface EngineInternals {
  _handle?: {
    writeSync(
      flush: number,
      input: Uint8Array,
      inOffset: number,
      inLength: number,
      output: Uint8Array,
      outOffset: number,
      outLength: number,
    ): void;
  } | null;
  _writeState?: Uint32Array;
}

const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;
let engine: (zlib.InflateRaw & EngineInternals) | undefined;

function freshEngine(): (zlib.InflateRaw & EngineInternals) | undefined {
  const e = zlib.createInflateRaw() as zlib.InflateRaw & EngineInternals;
  if (typeof e._handle?.writeSync !== 'function' || !(e._writeState instanceof Uint32Array)) {
    e.close();
    return undefined;
  }
  // On corrupt data the handle destroys the stream at once (we see `destroyed`) and emits 'error'
  // on the next tick: without a listener that would be an uncaught exception.
  e.on('error', () => {});
  return e;
}

function viaInflateRawSync(compressed: Uint8Array, limit: number): InflatedLength {
  try {
    return {
      ok: true,
      bytes: inflateRawSync(compressed, { maxOutputLength: Math.max(1, limit + 1) }).length,
    };
  } catch (cause) {
    return { ok: false, problem: cause instanceof RangeError ? 'too-large' : 'corrupt' };
  }
}

/**
 * The number of bytes raw DEFLATE `compressed` inflates to, or `too-large` as soon as the output
 * passes `limit` (inflation stops there), or `corrupt` (bad data, or a stream that ends early);
 * never throws. Synchronous, so one engine serves every caller in turn.
 */
export function inflatedLength(compressed: Uint8Array, limit: number): InflatedLength {
  engine ??= freshEngine();
  const e = engine;
  const handle = e?._handle;
  const state = e?._writeState;
  if (e === undefined || handle === undefined || handle === null || state === undefined)
    return viaInflateRawSync(compressed, limit);
  const out = (scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES));
  let inOffset = 0;
  let inLength = compressed.length;
  let total = 0;
  try {
    for (;;) {
      handle.writeSync(zlib.constants.Z_FINISH, compressed, inOffset, inLength, out, 0, SCRATCH_BYTES);
      if (e.destroyed) return { ok: false, problem: 'corrupt' };
      const outLeft = state[0]!;
      const inLeft = state[1]!;
      total += SCRATCH_BYTES - outLeft;
      if (total > limit) return { ok: false, problem: 'too-large' };
      // The scratch buffer filled: more may follow. Otherwise the stream ended.
      if (outLeft !== 0) return { ok: true, bytes: total };
      inOffset += inLength - inLeft;
      inLength = inLeft;
    }
  } finally {
    if (e.destroyed || e._handle === null) engine = undefined;
    else e.reset();
  }
}
