/**
 * CRC-32C (Castagnoli, polynomial 0x82F63B78, reflected), slicing-by-8 in plain TypeScript.
 * Used to frame every stored value; see `frame.ts`.
 */

const POLY = 0x82f63b78;

/** Eight 256-entry tables: T[0] is the classic byte table, T[k] advances k more zero bytes. */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/**
 * Continues a CRC-32C over `data` (or its bytes `start` to `end`), starting from a previous
 * result (0 for a fresh checksum).
 *
 * @remarks `crc32c(b, crc32c(a)) === crc32c(concat(a, b))`, and a range gives the checksum of
 * `data.subarray(start, end)` without making that view. Returns an unsigned 32-bit integer.
 */
export function crc32c(data: Uint8Array, previous = 0, start = 0, end = data.length): number {
  const t = TABLES;
  let crc = ~previous;
  let i = start;
  const end8 = end - ((end - start) % 8);
  while (i < end8) {
    const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ crc;
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    crc =
      t[7 * 256 + (a & 0xff)]! ^
      t[6 * 256 + ((a >>> 8) & 0xff)]! ^
      t[5 * 256 + ((a >>> 16) & 0xff)]! ^
      t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + (b & 0xff)]! ^
      t[2 * 256 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^
      t[b >>> 24]!;
    i += 8;
  }
  while (i < end) {
    crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}
