// Strings that events keep for as long as the log holds them (ids, signatures, HLC stamps) are
// built as one flat string from character codes. Built with `+=` or a template, V8 keeps them as
// trees of concatenation nodes (a 26-character id made of 17 of them, ≈ 550 bytes instead of
// 48), which a device holding 100k own events would carry for good.

// ASCII is its own UTF-8: the decoder gives one flat one-byte string and allocates nothing else.
// `String.fromCharCode.apply` over the codes (what this was) copied them into an argument list
// of 8 bytes a character first: an 86-character signature cost ≈ 690 bytes of garbage and
// 1.3–1.7 µs, against ≈ 0.4 µs here (every append makes three: id, stamp, signature).
const DECODER = new TextDecoder();

/** One flat string of the ASCII codes `codes[0 … length-1]` (every code below 0x80). */
export function asciiString(codes: Uint8Array, length = codes.length): string {
  return DECODER.decode(length === codes.length ? codes : codes.subarray(0, length));
}
