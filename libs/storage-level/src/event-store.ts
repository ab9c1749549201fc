/**
 * The device's durable event log store: events by `(device, seq)` and by id, checksummed,
 * group-committed, with a start-up integrity check. {@link LevelEventStore} on LevelDB and
 * {@link MemoryEventStore} share one implementation over a {@link RawStore}.
 */
import { ErrorCode, isEventIdOf } from '@accord/protocol';
import { closedError, ioError, STORAGE_CONFLICT, storageError } from './errors.js';
import {
  FRAME_HEADER_BYTES,
  frameValue,
  newFrame,
  sealFrame,
  unframeValue,
  type CorruptionReason,
} from './frame.js';
import { GroupCommitter, type CommitStats } from './group-commit.js';
import {
  concatBytes,
  decodeSegments,
  decodeSeq,
  encodeSegments,
  encodeSeq,
  prefixRange,
  toHex,
  writeSeq,
} from './keys.js';
import { openLevel } from './level-open.js';
import { LevelRawStore, MemoryKeyValue, type LevelDatabase, type RawOp, type RawStore } from './raw-store.js';
import type { CorruptionReport } from './storage-adapter.js';

/** One stored event: its author device, that device's sequence number, its id and its signed bytes. */
export interface StoredEvent {
  readonly device: string;
  readonly seq: number;
  readonly id: string;
  readonly bytes: Uint8Array;
}

/** An inclusive range of sequence numbers. */
export interface SeqRange {
  readonly from: number;
  readonly to: number;
}

/** A problem with the id index (derived data: `get(id)` may miss or fail, `iterate` is unaffected). */
export interface IndexProblem {
  readonly id: string;
  /** `missing`: event stored but not indexed; `corrupt`: index value damaged; `dangling`: index points to no intact event; `mismatch`: index points to another slot; `duplicate`: the id is stored in two slots. */
  readonly problem: 'missing' | 'corrupt' | 'dangling' | 'mismatch' | 'duplicate';
}

/** Result of {@link EventStore.verify}. */
export interface VerifyReport {
  /** Per device, the sequence numbers absent between 1 and the highest stored one. */
  readonly holes: { readonly device: string; readonly missing: SeqRange[] }[];
  /** Stored events whose value is damaged (zero-length, truncated, checksum mismatch, bad record). */
  readonly corrupt: { readonly device: string; readonly seq: number; readonly reason?: CorruptionReason }[];
  /** Number of event slots found (intact or not). */
  readonly count: number;
  readonly index: IndexProblem[];
  /** Raw keys (hex) in the event key space that do not decode. */
  readonly badKeys: string[];
}

/** Options of {@link EventStore.iterate}. */
export interface IterateOptions {
  /** Only this device's events. */
  readonly device?: string;
  /** Only events with `seq >= fromSeq`. */
  readonly fromSeq?: number;
  /** Skip (and report) damaged events instead of throwing STORAGE_CORRUPT. */
  readonly skipCorrupt?: boolean;
  /**
   * With `skipCorrupt`: told the slot of every damaged event skipped, so that one pass can both
   * load the intact events and list the damaged ones (as `verify()` would in its `corrupt`).
   */
  readonly onSkipped?: (slot: { readonly device: string; readonly seq: number }) => void;
}

/** Small durable, checksummed key/value space beside the events (device key, clocks…). */
export interface EventStoreMeta {
  /** The value, or `undefined` if never put; STORAGE_CORRUPT if damaged. A zero-length value is returned as such. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Durable (synced) before resolving; group-committed with appends. */
  put(key: string, value: Uint8Array): Promise<void>;
}

/**
 * The device log's source of truth.
 *
 * @remarks
 * - `append` is all-or-nothing per call and durable before it resolves; concurrent calls
 *   are group-committed in call order. Re-appending an identical event (same id, device,
 *   seq and bytes) is a no-op. An id already stored with other bytes or another slot, or a
 *   `(device, seq)` slot holding another event, rejects the whole call with
 *   STORAGE_CONFLICT. Appending into a slot whose stored value is corrupt, or whose id
 *   index entry is missing or corrupt, rewrites it: that is how damage is repaired from a
 *   peer's copy, so callers must verify signatures before appending.
 * - Reads throw STORAGE_CORRUPT (`details.key`) rather than return damaged data.
 * - Holes are allowed (events arrive out of order); `verify()` reports them.
 * - After `close()` every method rejects with STORAGE_CLOSED.
 */
export interface EventStore {
  /** Stores events durably; see the contract above. */
  append(events: readonly StoredEvent[]): Promise<void>;
  /** The event with this id, if stored. */
  get(id: string): Promise<StoredEvent | undefined>;
  /**
   * {@link EventStore.get} without waiting: the log's on-demand read behind its synchronous
   * queries. Throws STORAGE_CORRUPT (index or slot damaged), STORAGE_IO or STORAGE_CLOSED.
   */
  readSync(id: string): StoredEvent | undefined;
  /** The event in slot `(device, seq)`, if stored. */
  getBySeq(device: string, seq: number): Promise<StoredEvent | undefined>;
  /** The highest stored seq of `device`, 0 if none (holes below it are possible). */
  highestSeq(device: string): Promise<number>;
  /** Every device with at least one stored event, in key order. */
  devices(): Promise<string[]>;
  /**
   * Events ordered by device (key order) then seq; optionally one device and/or `seq >= fromSeq`.
   *
   * @remarks Throws STORAGE_CORRUPT at a damaged event, unless `skipCorrupt` is set: then
   * damaged events are reported to `onCorruption` and skipped (use after `verify()` has
   * listed them, to rebuild from the intact part while repairing the rest from peers).
   */
  iterate(opts?: IterateOptions): AsyncIterable<StoredEvent>;
  /** Number of stored event slots. */
  count(): Promise<number>;
  /** Start-up integrity check: contiguity from seq 1 per device, checksums, id index. Never throws for damage. */
  verify(): Promise<VerifyReport>;
  /**
   * Makes the id index agree with the slots again, for a database LevelDB's repair rebuilt: the
   * repair drops a damaged block's records, so an event can keep its slot and lose its index
   * entry (it could no longer be read by id), or the reverse. Every intact slot gets the entry
   * pointing at it; entries pointing at no intact slot of their id are deleted; damaged slots
   * and undecodable keys are left for `verify` and the start-up scan to report. Returns how many
   * entries were written or deleted.
   */
  reindex(): Promise<number>;
  /** Durable key/value space for the log's own state. */
  readonly meta: EventStoreMeta;
  /** Group-commit counters. */
  stats(): CommitStats;
  /** Waits for pending writes, then refuses further use (closes a database it opened). */
  close(): Promise<void>;
}

/** Options of the event stores. */
export interface EventStoreOptions {
  /** Called for every corrupt value met by a read, `append` or `verify`; exceptions are swallowed. */
  readonly onCorruption?: (report: CorruptionReport) => void;
}

const TAG_SLOT = 0x73; // 's' + device segment + seq (8 bytes BE) → [idLen u32][id][bytes]
const TAG_INDEX = 0x69; // 'i' + id segment → device segment + seq
const TAG_META = 0x6d; // 'm' + key segment → value

const utf8 = new TextEncoder();
/** Only code points below 128: one UTF-8 byte each, the same as the code unit. */
const ASCII = /^[\x00-\x7f]*$/;
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Where a raw value lives, for test hooks and repair tools. */
export type EventStoreRawTarget =
  | { readonly kind: 'event'; readonly device: string; readonly seq: number }
  | { readonly kind: 'index'; readonly id: string }
  | { readonly kind: 'meta'; readonly key: string };

/** Slot key prefixes of recently seen devices (a device log writes the same few devices over and over). */
const slotPrefixes = new Map<string, Uint8Array>();
const MAX_CACHED_PREFIXES = 256;

/** The key prefix of every slot of `device` (shared: callers must not modify it). */
function slotPrefix(device: string): Uint8Array {
  let prefix = slotPrefixes.get(device);
  if (prefix === undefined) {
    prefix = encodeSegments([device], TAG_SLOT);
    if (slotPrefixes.size >= MAX_CACHED_PREFIXES) slotPrefixes.clear();
    slotPrefixes.set(device, prefix);
  }
  return prefix;
}

function slotKey(device: string, seq: number): Uint8Array {
  const prefix = slotPrefix(device);
  const key = new Uint8Array(prefix.length + 8);
  key.set(prefix);
  writeSeq(key, prefix.length, seq);
  return key;
}

/** The raw key under which an event store keeps `target` (for tests and tools). */
export function eventStoreRawKey(target: EventStoreRawTarget): Uint8Array {
  switch (target.kind) {
    case 'event':
      return slotKey(target.device, target.seq);
    case 'index':
      return encodeSegments([target.id], TAG_INDEX);
    case 'meta':
      return encodeSegments([target.key], TAG_META);
  }
}

/** The id-index key of `id` (a TypeError for a bad id: the caller's bug). */
function indexKey(id: string): Uint8Array {
  if (typeof id !== 'string' || id === '') throw new TypeError('id must be a non-empty string');
  return eventStoreRawKey({ kind: 'index', id });
}

/** Splits a segment-then-seq tail (after a 1-byte tag) into device and seq. */
function decodeSlotTail(bytes: Uint8Array, offset: number): { device: string; seq: number } | undefined {
  const end = bytes.indexOf(0x00, offset);
  if (end < 0) return undefined;
  const segs = decodeSegments(bytes, offset, end + 1);
  const seq = decodeSeq(bytes, end + 1);
  if (segs?.length !== 1 || seq === undefined || seq < 1) return undefined;
  return { device: segs[0]!, seq };
}

/**
 * The framed value of slot `key`: `[idLen u32][id][bytes]` in one allocation (a copy of `bytes`
 * taken now: the caller may reuse its buffer afterwards). `bytes` is its last `bytes.length` bytes.
 */
function frameRecord(key: Uint8Array, id: string, bytes: Uint8Array): Uint8Array {
  // An ASCII id (every event id) is written into the frame as it is: `encode` would allocate a
  // buffer of its own per event, each one more ArrayBuffer for the young generation to sweep.
  const ascii = ASCII.test(id);
  const idBytes = ascii ? undefined : utf8.encode(id);
  const idLength = idBytes?.length ?? id.length;
  const start = FRAME_HEADER_BYTES + 4 + idLength;
  const frame = newFrame(4 + idLength + bytes.length, true);
  const h = FRAME_HEADER_BYTES;
  frame[h] = idLength >>> 24; // u32 big-endian
  frame[h + 1] = idLength >>> 16;
  frame[h + 2] = idLength >>> 8;
  frame[h + 3] = idLength;
  if (idBytes === undefined) for (let i = 0; i < idLength; i++) frame[h + 4 + i] = id.charCodeAt(i);
  else frame.set(idBytes, h + 4);
  frame.set(bytes, start);
  return sealFrame(key, frame);
}

function decodeRecord(payload: Uint8Array): { id: string; bytes: Uint8Array } | undefined {
  if (payload.length < 4) return undefined;
  const idLen = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
  if (idLen === 0 || 4 + idLen > payload.length) return undefined;
  try {
    const id = utf8Strict.decode(payload.subarray(4, 4 + idLen));
    return { id, bytes: payload.slice(4 + idLen) };
  } catch {
    return undefined;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bin(key: Uint8Array): string {
  let s = '';
  for (const b of key) s += String.fromCharCode(b);
  return s;
}

/** The framed id-index value pointing at slot `sk`: the slot key without its tag byte. */
function frameIndex(ik: Uint8Array, sk: Uint8Array): Uint8Array {
  const frame = newFrame(sk.length - 1, true);
  // Byte by byte: a `subarray` of the (small, on-heap) key would give it an ArrayBuffer of its own.
  for (let i = 1; i < sk.length; i++) frame[FRAME_HEADER_BYTES - 1 + i] = sk[i]!;
  return sealFrame(ik, frame);
}

function checkEvent(e: StoredEvent): void {
  if (typeof e !== 'object' || e === null) throw new TypeError('an event must be an object');
  if (typeof e.device !== 'string' || e.device === '')
    throw new TypeError('event.device must be a non-empty string');
  if (!Number.isSafeInteger(e.seq) || e.seq < 1)
    throw new TypeError(`event.seq must be a positive safe integer, got ${String(e.seq)}`);
  if (typeof e.id !== 'string' || e.id === '') throw new TypeError('event.id must be a non-empty string');
  if (!(e.bytes instanceof Uint8Array)) throw new TypeError('event.bytes must be a Uint8Array');
}

/** An event of an `append` call, checked, with its keys and framed slot value made at call time. */
interface PreparedEvent extends StoredEvent {
  readonly slotKey: Uint8Array;
  readonly indexKey: Uint8Array;
  /** The framed slot value; `bytes` is a view into it. */
  readonly record: Uint8Array;
}

function prepareEvent(e: StoredEvent): PreparedEvent {
  const sk = slotKey(e.device, e.seq);
  // Framing copies the bytes now: the caller may reuse its buffers once append() returns.
  const record = frameRecord(sk, e.id, e.bytes);
  return {
    device: e.device,
    seq: e.seq,
    id: e.id,
    bytes: record.subarray(record.length - e.bytes.length),
    slotKey: sk,
    indexKey: encodeSegments([e.id], TAG_INDEX),
    record,
  };
}

function conflict(e: StoredEvent, reason: string, message: string): Error {
  return storageError(STORAGE_CONFLICT, message, {
    details: { id: e.id, device: e.device, seq: e.seq, reason },
  });
}

/** Events by device, then seq: the slots of a call or of a batch, with no string made per slot. */
class SlotMap<T> {
  readonly #devices = new Map<string, Map<number, T>>();

  get(device: string, seq: number): T | undefined {
    return this.#devices.get(device)?.get(seq);
  }

  set(device: string, seq: number, value: T): void {
    let seqs = this.#devices.get(device);
    if (seqs === undefined) this.#devices.set(device, (seqs = new Map<number, T>()));
    seqs.set(seq, value);
  }
}

/** What earlier appends of the batch being prepared wrote (not yet in storage): their own events. */
interface BatchState {
  readonly ids: Map<string, { readonly device: string; readonly seq: number }>;
  readonly slots: SlotMap<{ readonly id: string; readonly bytes: Uint8Array }>;
}

type Damaged = { readonly corrupt: CorruptionReason };
type Slot = { id: string; bytes: Uint8Array } | Damaged | undefined;
type Indexed = { device: string; seq: number } | Damaged | undefined;

function isDamaged(v: object | undefined): v is Damaged {
  return v !== undefined && 'corrupt' in v;
}

/** Shared implementation over a {@link RawStore}. */
class RawEventStore implements EventStore {
  readonly #raw: RawStore;
  readonly #committer: GroupCommitter<BatchState>;
  readonly #onCorruption: ((report: CorruptionReport) => void) | undefined;
  readonly #onClose: (() => Promise<void>) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly meta: EventStoreMeta;
  /**
   * Per device, a seq no stored slot of it lies above: read from storage once (the highest slot
   * key, damaged or not), then raised by every append this store prepares. Too high is only
   * cautious; it is never too low, since appends are the only writers of slots.
   */
  readonly #slotsUpTo = new Map<string, number>();

  constructor(raw: RawStore, options: EventStoreOptions, onClose?: () => Promise<void>) {
    this.#raw = raw;
    this.#committer = new GroupCommitter<BatchState>(raw, () => ({ ids: new Map(), slots: new SlotMap() }));
    this.#onCorruption = options.onCorruption;
    this.#onClose = onClose;
    this.meta = {
      get: (key) => this.#metaGet(key),
      put: (key, value) => this.#metaPut(key, value),
    };
  }

  #report(key: readonly string[], reason: CorruptionReason): void {
    try {
      this.#onCorruption?.({ key: [...key], reason });
    } catch {
      // A callback must not change what the caller sees.
    }
  }

  #corrupt(key: readonly string[], reason: CorruptionReason, extra: Record<string, unknown> = {}): Error {
    this.#report(key, reason);
    return storageError(ErrorCode.STORAGE_CORRUPT, `corrupt value under [${key.join(', ')}] (${reason})`, {
      details: { key: [...key], reason, ...extra },
    });
  }

  async #read<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw closedError('event store');
    try {
      return await fn();
    } catch (err) {
      // Bad arguments are the caller's bug, not an I/O failure.
      if (err instanceof TypeError || err instanceof RangeError) throw err;
      if (this.#closed) throw closedError('event store');
      throw ioError(err, operation);
    }
  }

  #submit(prepare: (ctx: BatchState) => Promise<readonly RawOp[]> | readonly RawOp[]): Promise<void> {
    if (this.#closed) throw closedError('event store');
    return this.#committer.submit(prepare);
  }

  /** Decodes a stored slot value (`{ corrupt }` when damaged; the caller reports). */
  static #slotValue(key: Uint8Array, value: Uint8Array | undefined): Slot {
    if (value === undefined) return undefined;
    const framed = unframeValue(key, value);
    if (!framed.ok) return { corrupt: framed.reason };
    return decodeRecord(framed.payload) ?? { corrupt: 'record' };
  }

  /** Decodes a stored id-index value (`{ corrupt }` when damaged; the caller reports). */
  static #indexValue(key: Uint8Array, value: Uint8Array | undefined): Indexed {
    if (value === undefined) return undefined;
    const framed = unframeValue(key, value);
    if (!framed.ok) return { corrupt: framed.reason };
    return decodeSlotTail(framed.payload, 0) ?? { corrupt: 'record' };
  }

  // Async so that argument errors reject; everything before `#submit` runs synchronously,
  // so calls are queued in call order.
  async append(events: readonly StoredEvent[]): Promise<void> {
    if (!(events instanceof Array)) throw new TypeError('append takes an array of events');
    const batch: PreparedEvent[] = [];
    if (events.length === 1) {
      checkEvent(events[0]!);
      // Keys are encoded now: a device or id that cannot be encoded is the caller's TypeError.
      batch.push(prepareEvent(events[0]!));
    } else {
      // Within one call: identical duplicates collapse, contradictions reject the call.
      const byId = new Map<string, StoredEvent>();
      const bySlot = new SlotMap<StoredEvent>();
      for (const e of events) {
        checkEvent(e);
        const sameId = byId.get(e.id);
        const sameSlot = bySlot.get(e.device, e.seq);
        if (
          sameId !== undefined &&
          (sameId.device !== e.device || sameId.seq !== e.seq || !equalBytes(sameId.bytes, e.bytes))
        )
          throw conflict(
            e,
            'duplicate-in-call',
            `event ${e.id} appears twice in one call with different content`,
          );
        if (sameSlot !== undefined && sameSlot.id !== e.id)
          throw conflict(
            e,
            'duplicate-in-call',
            `slot (${e.device}, ${e.seq}) appears twice in one call with different ids`,
          );
        if (sameId !== undefined) continue;
        byId.set(e.id, e);
        bySlot.set(e.device, e.seq, e);
        batch.push(prepareEvent(e));
      }
    }
    if (this.#closed) throw closedError('event store');
    if (batch.length === 0) return;
    return this.#submit((ctx) => this.#prepareAppend(batch, ctx));
  }

  /**
   * The ops of an append, checked against storage and the batch so far (see {@link GroupCommitter}).
   *
   * @remarks Read before write, but only what can be there: a slot above the device's stored ones
   * is free, and an id bound to such a slot (isEventIdOf) is indexed nowhere else (short of a
   * device whose key shares 48 bits, same seq, same millisecond: see the README). An own append
   * (the next seqs, bound ids) reads nothing, and its write does not wait for a read: then the ops
   * are returned at once, not in a promise (one turn of the microtask queue less per request).
   */
  #prepareAppend(
    batch: readonly PreparedEvent[],
    ctx: BatchState,
  ): readonly RawOp[] | Promise<readonly RawOp[]> {
    for (const e of batch)
      if (!this.#slotsUpTo.has(e.device))
        return this.#learnUpTo(batch).then(() => this.#prepareAppend(batch, ctx));
    let keys: Uint8Array[] | undefined;
    // Per event, where its slot and its index entry are in `keys` (-1: not read).
    const slotAt: number[] = [];
    const indexAt: number[] = [];
    for (const e of batch) {
      const fresh = e.seq > this.#slotsUpTo.get(e.device)!;
      slotAt.push(fresh ? -1 : (keys ??= []).push(e.slotKey) - 1);
      indexAt.push(fresh && isEventIdOf(e.id, e.device, e.seq) ? -1 : (keys ??= []).push(e.indexKey) - 1);
    }
    if (keys === undefined) return this.#checkAppend(batch, ctx, slotAt, indexAt, undefined);
    return this.#raw.getMany(keys).then((stored) => this.#checkAppend(batch, ctx, slotAt, indexAt, stored));
  }

  /** Learns {@link RawEventStore.#slotsUpTo} of every device of `batch`. */
  async #learnUpTo(batch: readonly PreparedEvent[]): Promise<void> {
    for (const e of batch) await this.#storedUpTo(e.device);
  }

  /** {@link RawEventStore.#prepareAppend} once what had to be read is read (`stored`, by `slotAt`/`indexAt`). */
  #checkAppend(
    batch: readonly PreparedEvent[],
    ctx: BatchState,
    slotAt: readonly number[],
    indexAt: readonly number[],
    stored: readonly (Uint8Array | undefined)[] | undefined,
  ): readonly RawOp[] {
    const ops: RawOp[] = [];
    let repairs: [string[], CorruptionReason][] | undefined;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i]!;
      const sk = e.slotKey;
      const ik = e.indexKey;
      const s = slotAt[i]!;
      const x = indexAt[i]!;
      const slot: Slot =
        ctx.slots.get(e.device, e.seq) ?? RawEventStore.#slotValue(sk, s < 0 ? undefined : stored![s]);
      const indexed: Indexed =
        ctx.ids.get(e.id) ?? RawEventStore.#indexValue(ik, x < 0 ? undefined : stored![x]);
      const slotOk = slot !== undefined && !isDamaged(slot);
      const indexOk = indexed !== undefined && !isDamaged(indexed);
      if (indexOk && (indexed.device !== e.device || indexed.seq !== e.seq))
        throw conflict(
          e,
          'id-elsewhere',
          `event ${e.id} is already stored as (${indexed.device}, ${indexed.seq})`,
        );
      if (slotOk && slot.id !== e.id)
        throw conflict(e, 'slot-taken', `slot (${e.device}, ${e.seq}) already holds event ${slot.id}`);
      if (slotOk && !equalBytes(slot.bytes, e.bytes))
        throw conflict(e, 'different-bytes', `event ${e.id} is already stored with different bytes`);
      if (!slotOk) ops.push({ type: 'put', key: sk, value: e.record });
      if (!indexOk) ops.push({ type: 'put', key: ik, value: frameIndex(ik, sk) });
      if (isDamaged(slot)) (repairs ??= []).push([['event', e.device, String(e.seq)], slot.corrupt]);
      if (isDamaged(indexed)) (repairs ??= []).push([['index', e.id], indexed.corrupt]);
    }
    // Validated: only now record this call's effects for later requests of the batch.
    for (const e of batch) {
      ctx.slots.set(e.device, e.seq, e);
      ctx.ids.set(e.id, e);
      if (e.seq > this.#slotsUpTo.get(e.device)!) this.#slotsUpTo.set(e.device, e.seq);
    }
    // Damage met on the way is being overwritten by this batch: still tell the owner.
    if (repairs !== undefined) for (const [where, reason] of repairs) this.#report(where, reason);
    return ops;
  }

  /** See {@link RawEventStore.#slotsUpTo}; runs inside a batch's preparation (no write overlaps it). */
  async #storedUpTo(device: string): Promise<number> {
    let upTo = this.#slotsUpTo.get(device);
    if (upTo === undefined) {
      const prefix = slotPrefix(device);
      upTo = 0;
      for await (const key of this.#raw.keys({ ...prefixRange(prefix), reverse: true, limit: 1 })) {
        // A key that does not decode: nothing is known, every slot of the device is read.
        upTo = decodeSeq(key, prefix.length) ?? Number.MAX_SAFE_INTEGER;
      }
      this.#slotsUpTo.set(device, upTo);
    }
    return upTo;
  }

  get(id: string): Promise<StoredEvent | undefined> {
    return this.#read('get', async () => {
      const ik = indexKey(id);
      const indexed = this.#intactIndex(id, RawEventStore.#indexValue(ik, await this.#raw.get(ik)));
      if (indexed === undefined) return undefined;
      const sk = slotKey(indexed.device, indexed.seq);
      return this.#checkedSlot(id, indexed, sk, await this.#raw.get(sk));
    });
  }

  readSync(id: string): StoredEvent | undefined {
    if (this.#closed) throw closedError('event store');
    const ik = indexKey(id);
    try {
      const indexed = this.#intactIndex(id, RawEventStore.#indexValue(ik, this.#raw.getSync(ik)));
      if (indexed === undefined) return undefined;
      const sk = slotKey(indexed.device, indexed.seq);
      return this.#checkedSlot(id, indexed, sk, this.#raw.getSync(sk));
    } catch (err) {
      if ((err as { code?: unknown }).code === ErrorCode.STORAGE_CORRUPT) throw err;
      if (this.#closed) throw closedError('event store');
      throw ioError(err, 'readSync');
    }
  }

  /** The slot an id-index entry points at (STORAGE_CORRUPT when the entry is damaged). */
  #intactIndex(id: string, indexed: Indexed): { device: string; seq: number } | undefined {
    if (isDamaged(indexed)) throw this.#corrupt(['index', id], indexed.corrupt, { id });
    return indexed;
  }

  /** The event in the slot an id's index entry points at, checked to be that id's. */
  #checkedSlot(
    id: string,
    indexed: { device: string; seq: number },
    sk: Uint8Array,
    value: Uint8Array | undefined,
  ): StoredEvent | undefined {
    if (value === undefined) return undefined;
    const event = this.#decodeEvent(indexed.device, indexed.seq, sk, value);
    if (event.id !== id)
      throw this.#corrupt(['index', id], 'record', { id, device: indexed.device, seq: indexed.seq });
    return event;
  }

  async #getSlot(device: string, seq: number): Promise<StoredEvent | undefined> {
    const sk = slotKey(device, seq);
    const value = await this.#raw.get(sk);
    if (value === undefined) return undefined;
    return this.#decodeEvent(device, seq, sk, value);
  }

  #decodeEvent(device: string, seq: number, key: Uint8Array, value: Uint8Array): StoredEvent {
    const framed = unframeValue(key, value);
    if (!framed.ok) throw this.#corrupt(['event', device, String(seq)], framed.reason, { device, seq });
    const record = decodeRecord(framed.payload);
    if (record === undefined) throw this.#corrupt(['event', device, String(seq)], 'record', { device, seq });
    return { device, seq, id: record.id, bytes: record.bytes };
  }

  getBySeq(device: string, seq: number): Promise<StoredEvent | undefined> {
    return this.#read('getBySeq', async () => {
      if (typeof device !== 'string' || device === '' || !Number.isSafeInteger(seq) || seq < 1)
        return undefined;
      return this.#getSlot(device, seq);
    });
  }

  highestSeq(device: string): Promise<number> {
    return this.#read('highestSeq', async () => {
      if (typeof device !== 'string' || device === '') return 0;
      const prefix = slotPrefix(device);
      for await (const key of this.#raw.keys({ ...prefixRange(prefix), reverse: true, limit: 1 })) {
        return decodeSeq(key, prefix.length) ?? 0;
      }
      return 0;
    });
  }

  devices(): Promise<string[]> {
    return this.#read('devices', async () => {
      // Skip-scan: one short seek per device instead of reading every key.
      const out: string[] = [];
      const all = prefixRange(Uint8Array.of(TAG_SLOT));
      let from = all.gte!;
      for (;;) {
        let next: Uint8Array | undefined;
        for await (const key of this.#raw.keys({ gte: from, lt: all.lt!, limit: 1 })) next = key;
        if (next === undefined) return out;
        const end = next.indexOf(0x00, 1);
        const segs = end < 0 ? undefined : decodeSegments(next, 1, end + 1);
        if (segs?.length !== 1) {
          // Undecodable key: step past it (verify() reports it).
          from = concatBytes(next, Uint8Array.of(0));
          continue;
        }
        out.push(segs[0]!);
        from = prefixRange(next.subarray(0, end + 1)).lt!;
      }
    });
  }

  iterate(opts: IterateOptions = {}): AsyncIterable<StoredEvent> {
    const skipCorrupt = opts.skipCorrupt === true;
    const fromSeq = opts.fromSeq !== undefined && opts.fromSeq > 1 ? Math.ceil(opts.fromSeq) : 1;
    let range: { gte?: Uint8Array; lt?: Uint8Array };
    if (opts.device !== undefined) {
      const prefix = slotPrefix(opts.device);
      range = {
        gte:
          fromSeq > 1 ? concatBytes(prefix, encodeSeq(Math.min(fromSeq, Number.MAX_SAFE_INTEGER))) : prefix,
        lt: prefixRange(prefix).lt!,
      };
    } else range = prefixRange(Uint8Array.of(TAG_SLOT));
    const onSkipped = opts.onSkipped;
    return { [Symbol.asyncIterator]: () => this.#iterate(range, fromSeq, skipCorrupt, onSkipped) };
  }

  async *#iterate(
    range: { gte?: Uint8Array; lt?: Uint8Array },
    fromSeq: number,
    skipCorrupt: boolean,
    onSkipped: IterateOptions['onSkipped'],
  ): AsyncGenerator<StoredEvent> {
    if (this.#closed) throw closedError('event store');
    try {
      for await (const { key, value } of this.#raw.entries(range)) {
        const slot = decodeSlotTail(key, 1);
        if (slot === undefined) {
          const err = this.#corrupt(['<raw>', toHex(key)], 'key');
          if (skipCorrupt) continue;
          throw err;
        }
        if (slot.seq < fromSeq) continue;
        let event: StoredEvent;
        try {
          event = this.#decodeEvent(slot.device, slot.seq, key, value);
        } catch (err) {
          // #decodeEvent has already reported the damage.
          if (!skipCorrupt) throw err;
          onSkipped?.({ device: slot.device, seq: slot.seq });
          continue;
        }
        yield event;
        if (this.#closed) throw closedError('event store');
      }
    } catch (err) {
      if (this.#closed) throw closedError('event store');
      throw ioError(err, 'iterate');
    }
  }

  count(): Promise<number> {
    return this.#read('count', async () => {
      let n = 0;
      for await (const _ of this.#raw.keys(prefixRange(Uint8Array.of(TAG_SLOT)))) n++;
      return n;
    });
  }

  verify(): Promise<VerifyReport> {
    return this.#read('verify', async () => {
      const holes: { device: string; missing: SeqRange[] }[] = [];
      const corrupt: { device: string; seq: number; reason: CorruptionReason }[] = [];
      const badKeys: string[] = [];
      const index: IndexProblem[] = [];
      const slotsById = new Map<string, string>();
      let count = 0;
      let device: string | undefined;
      let expected = 1;
      let missing: SeqRange[] = [];
      const closeDevice = (): void => {
        if (device !== undefined && missing.length > 0) holes.push({ device, missing });
      };
      for await (const { key, value } of this.#raw.entries(prefixRange(Uint8Array.of(TAG_SLOT)))) {
        count++;
        const slot = decodeSlotTail(key, 1);
        if (slot === undefined) {
          badKeys.push(toHex(key));
          this.#report(['<raw>', toHex(key)], 'key');
          continue;
        }
        if (slot.device !== device) {
          closeDevice();
          device = slot.device;
          expected = 1;
          missing = [];
        }
        if (slot.seq > expected) missing.push({ from: expected, to: slot.seq - 1 });
        expected = slot.seq + 1;
        const framed = unframeValue(key, value);
        const record = framed.ok ? decodeRecord(framed.payload) : undefined;
        if (record === undefined) {
          const reason: CorruptionReason = framed.ok ? 'record' : framed.reason;
          corrupt.push({ device: slot.device, seq: slot.seq, reason });
          this.#report(['event', slot.device, String(slot.seq)], reason);
          continue;
        }
        const here = bin(key);
        if (slotsById.has(record.id)) index.push({ id: record.id, problem: 'duplicate' });
        else slotsById.set(record.id, here);
      }
      closeDevice();
      const seen = new Set<string>();
      for await (const { key, value } of this.#raw.entries(prefixRange(Uint8Array.of(TAG_INDEX)))) {
        const segs = decodeSegments(key, 1);
        if (segs?.length !== 1) {
          badKeys.push(toHex(key));
          this.#report(['<raw>', toHex(key)], 'key');
          continue;
        }
        const id = segs[0]!;
        seen.add(id);
        const indexed = RawEventStore.#indexValue(key, value);
        const stored = slotsById.get(id);
        if (isDamaged(indexed)) {
          index.push({ id, problem: 'corrupt' });
          this.#report(['index', id], indexed.corrupt);
        } else if (stored === undefined) index.push({ id, problem: 'dangling' });
        else if (indexed !== undefined && bin(slotKey(indexed.device, indexed.seq)) !== stored)
          index.push({ id, problem: 'mismatch' });
      }
      for (const id of slotsById.keys()) if (!seen.has(id)) index.push({ id, problem: 'missing' });
      return { holes, corrupt, count, index, badKeys };
    });
  }

  async reindex(): Promise<number> {
    let changed = 0;
    await this.#submit(async () => {
      const slotById = new Map<string, Uint8Array>();
      for await (const { key, value } of this.#raw.entries(prefixRange(Uint8Array.of(TAG_SLOT)))) {
        if (decodeSlotTail(key, 1) === undefined) continue;
        const slot = RawEventStore.#slotValue(key, value);
        // The first slot of an id wins, as `verify` counts a second one a duplicate.
        if (slot !== undefined && !isDamaged(slot) && !slotById.has(slot.id)) slotById.set(slot.id, key);
      }
      const ops: RawOp[] = [];
      for await (const { key, value } of this.#raw.entries(prefixRange(Uint8Array.of(TAG_INDEX)))) {
        const segs = decodeSegments(key, 1);
        if (segs?.length !== 1) continue;
        const sk = slotById.get(segs[0]!);
        if (sk === undefined) {
          ops.push({ type: 'del', key });
          continue;
        }
        slotById.delete(segs[0]!);
        const expected = frameIndex(key, sk);
        if (!equalBytes(value, expected)) ops.push({ type: 'put', key, value: expected });
      }
      for (const [id, sk] of slotById) {
        const ik = indexKey(id);
        ops.push({ type: 'put', key: ik, value: frameIndex(ik, sk) });
      }
      changed = ops.length;
      return ops;
    });
    return changed;
  }

  #metaGet(key: string): Promise<Uint8Array | undefined> {
    return this.#read('meta.get', async () => {
      if (typeof key !== 'string') throw new TypeError('meta key must be a string');
      const mk = eventStoreRawKey({ kind: 'meta', key });
      const value = await this.#raw.get(mk);
      if (value === undefined) return undefined;
      const framed = unframeValue(mk, value);
      if (!framed.ok) throw this.#corrupt(['meta', key], framed.reason);
      return framed.payload;
    });
  }

  async #metaPut(key: string, value: Uint8Array): Promise<void> {
    if (typeof key !== 'string') throw new TypeError('meta key must be a string');
    if (!(value instanceof Uint8Array)) throw new TypeError('meta value must be a Uint8Array');
    const mk = eventStoreRawKey({ kind: 'meta', key });
    const framed = frameValue(mk, value);
    return this.#submit(() => [{ type: 'put', key: mk, value: framed }]);
  }

  stats(): CommitStats {
    return this.#committer.stats();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#committer.idle();
      await this.#onClose?.();
    })();
    return this.#closing;
  }
}

/**
 * {@link EventStore} on LevelDB: every append is one synced batch shared with concurrent
 * callers.
 *
 * @remarks Open with a path (the store owns and closes the database) or with an open
 * `Level`/sublevel you own (the store uses its whole key space and never closes it).
 * `rawDb` is the database underneath, for tests and repair tools only.
 */
export class LevelEventStore extends RawEventStore {
  readonly #db: LevelDatabase;

  /** A store on a database (or sublevel) the caller owns; prefer {@link LevelEventStore.open}. */
  constructor(db: LevelDatabase, options: EventStoreOptions = {}, onClose?: () => Promise<void>) {
    super(new LevelRawStore(db), options, onClose);
    this.#db = db;
  }

  /** The database underneath (test hook: raw reads and writes bypass checksums). */
  get rawDb(): LevelDatabase {
    return this.#db;
  }

  /** Opens (creating if needed) a LevelDB at `path` owned by the store, or wraps `db`. STORAGE_IO if it cannot be opened. */
  static async open(
    pathOrDb: string | LevelDatabase,
    options: EventStoreOptions = {},
  ): Promise<LevelEventStore> {
    if (typeof pathOrDb !== 'string') return new LevelEventStore(pathOrDb, options);
    const db = await openLevel(pathOrDb);
    return new LevelEventStore(db, options, () => db.close());
  }
}

/** Options of {@link MemoryEventStore}. */
export interface MemoryEventStoreOptions extends EventStoreOptions {
  /** Backend to use: share it to simulate a restart, or reach raw bytes in tests. */
  readonly backend?: MemoryKeyValue;
}

/** In-memory twin of {@link LevelEventStore}: same layout, checksums, group commit and errors. */
export class MemoryEventStore extends RawEventStore {
  readonly #backend: MemoryKeyValue;

  constructor(options: MemoryEventStoreOptions = {}) {
    const backend = options.backend ?? new MemoryKeyValue();
    super(backend, options);
    this.#backend = backend;
  }

  /** The backend underneath (test hook). */
  get backend(): MemoryKeyValue {
    return this.#backend;
  }
}
