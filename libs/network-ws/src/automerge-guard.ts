// Bounds what an Automerge sync message expands to before the Repo applies it. A sync message
// carries change chunks and whole-document chunks whose columns (or whole bodies) are raw
// DEFLATE: a few kilobytes can inflate to gigabytes inside Automerge, with no limit. We walk the
// chunk layout (https://automerge.org/automerge-binary-format-spec/), inflate every compressed
// part ourselves with a hard output limit, and refuse the frame when the total goes over budget.
import { decodeSyncMessage } from '@automerge/automerge';
import { inflateRawSync } from 'node:zlib';

const MAGIC = [0x85, 0x6f, 0x4a, 0x83] as const;
const CHUNK_DOCUMENT = 0;
const CHUNK_CHANGE = 1;
const CHUNK_COMPRESSED_CHANGE = 2;
const HASH_BYTES = 32;
const DEFLATE_BIT = 0b1000;

/** Why a sync message was refused by {@link measureSyncMessage}. */
export type SyncMessageProblem = 'malformed' | 'too-large';

/** The outcome of {@link measureSyncMessage}. */
export type SyncMessageMeasure =
  | { readonly ok: true; readonly expandedBytes: number }
  | { readonly ok: false; readonly problem: SyncMessageProblem; readonly detail: string };

class Refused extends Error {
  constructor(
    readonly problem: SyncMessageProblem,
    detail: string,
  ) {
    super(detail);
  }
}

class Reader {
  #at = 0;
  constructor(private readonly bytes: Uint8Array) {}

  get offset(): number {
    return this.#at;
  }

  get done(): boolean {
    return this.#at >= this.bytes.length;
  }

  uleb(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (result > Number.MAX_SAFE_INTEGER) throw new Refused('malformed', 'LEB128 value too large');
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Refused('malformed', 'LEB128 value too long');
  }

  // Signed LEB128: only skipped, never interpreted.
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new Refused('malformed', 'LEB128 value too long');
  }

  byte(): number {
    const b = this.bytes[this.#at];
    if (b === undefined) throw new Refused('malformed', 'truncated chunk');
    this.#at++;
    return b;
  }

  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.#at) throw new Refused('malformed', 'truncated chunk');
    const out = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  skip(n: number): void {
    this.take(n);
  }
}

class Budget {
  used = 0;
  constructor(readonly limit: number) {}

  add(n: number): void {
    this.used += n;
    if (this.used > this.limit)
      throw new Refused('too-large', `Automerge data expands over ${this.limit} bytes`);
  }

  inflate(compressed: Uint8Array): Uint8Array {
    const room = this.limit - this.used;
    let out: Buffer;
    try {
      // maxOutputLength stops zlib as soon as the output would pass the remaining budget.
      out = inflateRawSync(compressed, { maxOutputLength: Math.max(1, room + 1) });
    } catch (cause) {
      if (cause instanceof RangeError)
        throw new Refused('too-large', `Automerge data expands over ${this.limit} bytes`);
      throw new Refused('malformed', 'corrupt DEFLATE data in an Automerge chunk');
    }
    this.add(out.length);
    return out;
  }
}

function columnMetadata(r: Reader): { spec: number; length: number }[] {
  const count = r.uleb();
  const columns: { spec: number; length: number }[] = [];
  for (let i = 0; i < count; i++) columns.push({ spec: r.uleb(), length: r.uleb() });
  return columns;
}

// Measures a run of columns: uncompressed bytes count as they are, compressed ones as inflated.
function columns(r: Reader, meta: { spec: number; length: number }[], budget: Budget): void {
  for (const { spec, length } of meta) {
    const data = r.take(length);
    if ((spec & DEFLATE_BIT) !== 0) budget.inflate(data);
    else budget.add(length);
  }
}

function skipLengthPrefixedList(r: Reader): void {
  const count = r.uleb();
  for (let i = 0; i < count; i++) r.skip(r.uleb());
}

function documentBody(body: Uint8Array, budget: Budget): void {
  const r = new Reader(body);
  skipLengthPrefixedList(r); // actors
  r.skip(r.uleb() * HASH_BYTES); // heads
  const changeMeta = columnMetadata(r);
  const opsMeta = columnMetadata(r);
  columns(r, changeMeta, budget);
  columns(r, opsMeta, budget);
  budget.add(body.length - r.offset); // heads indexes, if any
}

function changeBody(body: Uint8Array, budget: Budget): void {
  const r = new Reader(body);
  r.skip(r.uleb() * HASH_BYTES); // dependencies
  r.skip(r.uleb()); // actor
  r.uleb(); // seq
  r.uleb(); // start op
  r.skipLeb(); // time
  r.skip(r.uleb()); // message
  skipLengthPrefixedList(r); // other actors
  const opsMeta = columnMetadata(r);
  budget.add(r.offset);
  columns(r, opsMeta, budget);
  budget.add(body.length - r.offset); // extra bytes
}

function chunks(bytes: Uint8Array, budget: Budget): void {
  const r = new Reader(bytes);
  while (!r.done) {
    const magic = r.take(4);
    if (MAGIC.some((m, i) => magic[i] !== m)) throw new Refused('malformed', 'not an Automerge chunk');
    r.skip(4); // checksum: Automerge checks it
    const type = r.byte();
    const body = r.take(r.uleb());
    budget.add(9);
    if (type === CHUNK_DOCUMENT) documentBody(body, budget);
    else if (type === CHUNK_CHANGE) changeBody(body, budget);
    else if (type === CHUNK_COMPRESSED_CHANGE) changeBody(budget.inflate(body), budget);
    // Fail closed: a chunk we cannot measure could hide anything.
    else throw new Refused('malformed', `unknown Automerge chunk type ${type}`);
  }
}

/**
 * Measures what Automerge chunks laid end to end (a stored document: the bytes of `A.save`, maybe
 * followed by incremental changes) expand to; never throws. Refuses as {@link measureSyncMessage}
 * does.
 */
export function measureChunks(data: Uint8Array, maxExpandedBytes: number): SyncMessageMeasure {
  try {
    const budget = new Budget(maxExpandedBytes);
    chunks(data, budget);
    return { ok: true, expandedBytes: budget.used };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, problem: e.problem, detail: e.message };
    return { ok: false, problem: 'malformed', detail: 'unreadable Automerge data' };
  }
}

/**
 * Decodes an Automerge sync message and measures what its changes expand to; never throws.
 *
 * @remarks Refuses (`malformed`) what Automerge cannot decode or what does not follow the chunk
 * layout, and (`too-large`) anything whose expanded size (raw bytes plus every inflated DEFLATE
 * part) exceeds `maxExpandedBytes`. Inflation stops at the budget, so a bomb costs at most
 * `maxExpandedBytes` of work and memory.
 */
export function measureSyncMessage(data: Uint8Array, maxExpandedBytes: number): SyncMessageMeasure {
  try {
    let changes: Uint8Array[];
    try {
      changes = decodeSyncMessage(data).changes;
    } catch {
      return { ok: false, problem: 'malformed', detail: 'not an Automerge sync message' };
    }
    const budget = new Budget(maxExpandedBytes);
    // The envelope (heads, needs, bloom filters) counts as is; the chunks as they expand.
    budget.add(data.length - changes.reduce((n, c) => n + c.length, 0));
    for (const change of changes) chunks(change, budget);
    return { ok: true, expandedBytes: budget.used };
  } catch (e) {
    if (e instanceof Refused) return { ok: false, problem: e.problem, detail: e.message };
    return { ok: false, problem: 'malformed', detail: 'unreadable Automerge data' };
  }
}
