import { asciiString } from './flat-string.js';
import { AccordError, ErrorCode } from './errors.js';
import type { Hlc } from './ids.js';

/** Largest counter value of an HLC timestamp. */
export const MAX_HLC_COUNTER = 999_999;
/** Largest wall time an HLC can carry: 9999-12-31T23:59:59.999Z. */
export const MAX_HLC_WALL_MS = 253_402_300_799_999;
/** Default largest lead of a remote wall time over the local wall clock that {@link HybridClock.observe} adopts. */
export const DEFAULT_MAX_DRIFT_MS = 24 * 60 * 60 * 1000;
/**
 * Wall times a {@link HybridClock} reads from its wall clock or adopts from a remote stamp stop
 * this far short of {@link MAX_HLC_WALL_MS} (one day).
 *
 * @remarks The day left above is only reached by counter overflow, one millisecond per million
 * stamps: 8.6e13 stamps, so `now()` cannot run out of stamps in practice, whatever it observed.
 */
export const HLC_RESERVE_MS = 24 * 60 * 60 * 1000;
/** The greatest wall time a {@link HybridClock} reads or adopts (see {@link HLC_RESERVE_MS}). */
export const HLC_WALL_CAP_MS = MAX_HLC_WALL_MS - HLC_RESERVE_MS;

const HLC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z\/(\d{6})$/;

function clockError(message: string): AccordError {
  return new AccordError(ErrorCode.PROTOCOL_CLOCK, message);
}

/** Scratch space of the stamp being formatted: the string is built from it before formatHlc returns. */
const STAMP_CODES = new Uint8Array(31);

/**
 * Formats an HLC timestamp: `YYYY-MM-DDTHH:MM:SS.mmmZ/cccccc`.
 *
 * @remarks Fixed width, so string order equals `(wallMs, counter)` order.
 * @throws AccordError `PROTOCOL_CLOCK` when `wallMs` is not an integer in 0..{@link MAX_HLC_WALL_MS}
 * or `counter` not an integer in 0..{@link MAX_HLC_COUNTER}.
 */
export function formatHlc(wallMs: number, counter: number): Hlc {
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > MAX_HLC_WALL_MS) {
    throw clockError(`HLC wall time out of range: ${wallMs}`);
  }
  if (!Number.isSafeInteger(counter) || counter < 0 || counter > MAX_HLC_COUNTER) {
    throw clockError(`HLC counter out of range: ${counter}`);
  }
  const iso = new Date(wallMs).toISOString();
  const codes = STAMP_CODES;
  for (let i = 0; i < 24; i++) codes[i] = iso.charCodeAt(i);
  codes[24] = 0x2f; // '/'
  for (let i = 30, c = counter; i > 24; i--, c = Math.floor(c / 10)) codes[i] = 0x30 + (c % 10);
  return asciiString(codes) as Hlc;
}

function tryParse(hlc: string): { wallMs: number; counter: number } | undefined {
  const m = HLC.exec(hlc);
  if (m === null) return undefined;
  const wallMs = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
  // Date.UTC maps years 0..99 to 1900..1999, and rolls over out-of-range fields (Feb 30 → Mar 2):
  // accept only what formats back to the same text.
  if (!Number.isFinite(wallMs) || wallMs < 0 || new Date(wallMs).toISOString() !== hlc.slice(0, 24))
    return undefined;
  return { wallMs, counter: +m[8]! };
}

/**
 * Parses an HLC timestamp.
 *
 * @throws AccordError `PROTOCOL_CLOCK` when `hlc` is not exactly what {@link formatHlc} produces.
 */
export function parseHlc(hlc: string): { wallMs: number; counter: number } {
  const parsed = tryParse(hlc);
  if (parsed === undefined) throw clockError('malformed HLC timestamp');
  return parsed;
}

/** True when `s` is a well-formed HLC timestamp. */
export function isHlc(s: string): s is Hlc {
  return tryParse(s) !== undefined;
}

/** Orders two HLC timestamps: negative, zero or positive (plain string order, by construction). */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A hybrid logical clock: wall time plus a counter, strictly increasing per clock, and merged
 * with the timestamps of received events so later local events sort after them.
 *
 * @remarks Not thread-safe by design (single JS thread). Persist {@link HybridClock.last} and pass
 * it back as `last` on restart to stay monotonic across restarts; `last` must be one of this
 * device's own stamps (anything else goes through {@link HybridClock.observe}, see
 * {@link HybridClock.ceiling}). Bound: no remote input moves the clock's wall part past
 * `max(last, wall clock + maxDriftMs)`, plus one millisecond per million stamps issued at one
 * wall time; {@link HybridClock.now} never throws.
 */
export class HybridClock {
  readonly #wallClock: () => number;
  readonly #maxDriftMs: number;
  #wallMs: number;
  #counter: number;

  constructor(opts: { wallClock: () => number; maxDriftMs?: number; last?: Hlc }) {
    this.#wallClock = opts.wallClock;
    this.#maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!(this.#maxDriftMs >= 0)) throw clockError('maxDriftMs must be a non-negative number');
    const start = opts.last === undefined ? { wallMs: 0, counter: 0 } : parseHlc(opts.last);
    this.#wallMs = start.wallMs;
    this.#counter = start.counter;
  }

  /**
   * The greatest stamp {@link HybridClock.observe} adopts while the wall clock reads `wallMs`.
   *
   * @remarks For picking, among many stored remote stamps, the one worth observing at start-up
   * (plain string comparison against it) without parsing each of them.
   */
  static ceiling(wallMs: number, maxDriftMs: number = DEFAULT_MAX_DRIFT_MS): Hlc {
    const wall = Math.floor(wallMs);
    const top = Number.isNaN(wall) ? -1 : Math.min(Math.max(wall, -1) + maxDriftMs, HLC_WALL_CAP_MS);
    return top < 0 ? formatHlc(0, 0) : formatHlc(Math.floor(top), MAX_HLC_COUNTER);
  }

  // The wall clock as an integer in range; a NaN reading counts as "no progress".
  #readWall(): number {
    const w = Math.floor(this.#wallClock());
    if (Number.isNaN(w)) return -1;
    return Math.min(Math.max(w, -1), HLC_WALL_CAP_MS);
  }

  /**
   * A new timestamp, strictly greater than every timestamp this clock has issued or adopted.
   *
   * @remarks Uses the wall clock when it is ahead, otherwise increments the counter; a counter
   * overflow advances the wall part by 1 ms. Never throws: remote stamps are adopted only up to
   * {@link HLC_WALL_CAP_MS}, and the reserve above it holds 8.6e13 stamps; a clock that did
   * reach `9999-12-31T23:59:59.999Z/999999` (a `last` there) repeats that stamp rather than
   * fail the append it is for.
   */
  now(): Hlc {
    const wall = this.#readWall();
    if (wall > this.#wallMs) {
      this.#wallMs = wall;
      this.#counter = 0;
    } else if (this.#counter < MAX_HLC_COUNTER) {
      this.#counter++;
    } else if (this.#wallMs < MAX_HLC_WALL_MS) {
      this.#wallMs++;
      this.#counter = 0;
    }
    return formatHlc(this.#wallMs, this.#counter);
  }

  /**
   * Merges a received timestamp so that the next {@link HybridClock.now} sorts after it.
   *
   * @returns false, and changes nothing, when `remote` is malformed, its wall time is more than
   * `maxDriftMs` ahead of the local wall clock (a device with a wildly wrong clock must not drag
   * everyone's clock into the future) or above {@link HLC_WALL_CAP_MS}; true otherwise (whether
   * or not it was ahead of this clock).
   */
  observe(remote: Hlc): boolean {
    const r = tryParse(remote);
    if (r === undefined) return false;
    if (r.wallMs > HLC_WALL_CAP_MS || r.wallMs - this.#readWall() > this.#maxDriftMs) return false;
    if (r.wallMs > this.#wallMs || (r.wallMs === this.#wallMs && r.counter > this.#counter)) {
      this.#wallMs = r.wallMs;
      this.#counter = r.counter;
    }
    return true;
  }

  /** The greatest timestamp issued or adopted so far (the initial `last`, or the epoch). */
  last(): Hlc {
    return formatHlc(this.#wallMs, this.#counter);
  }
}
