// Strings that events keep for as long as the log holds them (ids, signatures, HLC stamps) are
// built as one flat string from character codes. Built with `+=` or a template, V8 keeps them as
// trees of concatenation nodes (a 26-character id made of 17 of them, ≈ 550 bytes instead of
// 48), which a device holding 100k own events would carry for good.

/** Longest run of codes passed to one `String.fromCharCode` call (argument-count limit). */
const CHUNK = 8192;

/** One flat string of the UTF-16 code units `codes[0 … length-1]`. */
export function stringFromCodes(codes: ArrayLike<number>, length = codes.length): string {
  if (length <= CHUNK) return String.fromCharCode.apply(null, codesUpTo(codes, 0, length));
  const parts: string[] = [];
  for (let at = 0; at < length; at += CHUNK)
    parts.push(String.fromCharCode.apply(null, codesUpTo(codes, at, Math.min(length, at + CHUNK))));
  return parts.join('');
}

// A typed array is passed to `apply` as a view (no copy): copying it into a plain array first
// cost ≈ 4 µs per 86-character signature, which every append pays three times (id, stamp, sig).
function codesUpTo(codes: ArrayLike<number>, from: number, to: number): number[] {
  if (ArrayBuffer.isView(codes)) {
    const typed = codes as unknown as Uint16Array;
    return (from === 0 && to === typed.length ? typed : typed.subarray(from, to)) as unknown as number[];
  }
  return Array.prototype.slice.call(codes, from, to) as number[];
}
