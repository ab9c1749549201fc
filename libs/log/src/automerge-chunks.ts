// Reads the header of an Automerge document chunk (the bytes of `A.save`), by the Automerge binary
// format (https://automerge.org/automerge-binary-format-spec/): no Automerge call, no copy.

const MAGIC = [0x85, 0x6f, 0x4a, 0x83] as const;
const CHUNK_DOCUMENT = 0x00;
const HASH_BYTES = 32;

/** An unsigned LEB128 at `at`: its value and where it ends, or undefined past the end or beyond 2^53. */
function uleb(bytes: Uint8Array, at: number): { value: number; end: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 8; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return Number.isSafeInteger(value) ? { value, end: i + 1 } : undefined;
    scale *= 128;
  }
  return undefined;
}

/**
 * The heads a document chunk names (hex change hashes, sorted as `A.getHeads` gives them), or
 * undefined when `bytes` is not one whole document chunk.
 *
 * @remarks Only the header is read: the heads are what the chunk claims, not checked against its
 * changes (Automerge does that when it loads the chunk).
 */
export function documentChunkHeads(bytes: Uint8Array): string[] | undefined {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b) || bytes[8] !== CHUNK_DOCUMENT)
    return undefined;
  const length = uleb(bytes, 9);
  if (length === undefined || length.end + length.value !== bytes.length) return undefined;
  const actors = uleb(bytes, length.end);
  if (actors === undefined) return undefined;
  let at = actors.end;
  for (let i = 0; i < actors.value; i++) {
    const size = uleb(bytes, at);
    if (size === undefined) return undefined;
    at = size.end + size.value;
  }
  const count = uleb(bytes, at);
  if (count === undefined || count.end + count.value * HASH_BYTES > bytes.length) return undefined;
  const heads: string[] = [];
  for (let i = 0; i < count.value; i++) {
    const start = count.end + i * HASH_BYTES;
    heads.push(Buffer.from(bytes.buffer, bytes.byteOffset + start, HASH_BYTES).toString('hex'));
  }
  return heads.sort();
}
