import { createHash } from 'node:crypto';
import * as A from '@automerge/automerge';
import {
  interpretAsDocumentId,
  stringifyAutomergeUrl,
  type AutomergeUrl,
  type DocumentId,
} from '@automerge/automerge-repo';
import { decodeSignedEvent, type DeviceId, type FacilityId } from '@accord/protocol';

/**
 * The facility's root document: which devices have written how many segments.
 *
 * @remarks `devices[d]` is only ever written by device `d` (single writer per key), and
 * the `devices` map itself exists in the deterministic first change, so two devices that
 * create the root concurrently produce the very same change and nothing is shadowed
 * (DESIGN.md §7, "concurrent creation of the same container").
 */
export interface RootDoc {
  facility: string;
  devices: Record<string, number>;
}

/**
 * One segment: up to `segmentSize` events of ONE device, stored as opaque values, never as
 * nested objects of strings (DESIGN.md §7). Each entry of `events` is a *run*: the signed
 * canonical bytes of one or more events joined by a single `\n` (0x0a), a byte canonical JSON
 * never holds raw (see {@link RUN_SEPARATOR}). A run of one event is exactly one event's bytes,
 * which is how every entry was written before runs (session 15), so old documents read the same.
 *
 * @remarks Segment `k` of device `d` holds sequence numbers `k*size+1 … (k+1)*size`, so a
 * full segment is a closed, sealable set. Only device `d` appends to it, one run per change
 * (an own push, a reconcile, a republish): one Automerge list operation and one materialized
 * value per change instead of one per event, which was most of the segment documents' cost on
 * the append path and in a new device's load (README, "Segment format"). A run never spans two
 * segments; a whole segment (≈ 2.3 MB at 5000 events) is one Automerge document under the WebSocket
 * adapter's 16 MB frame cap, so a run needs no cap of its own. Every reader splits entries with
 * {@link eventsOfEntry}; counts of events (a segment is full, a seal covers it) count pieces, never
 * entries.
 */
export interface SegmentDoc {
  facility: string;
  device: string;
  index: number;
  events: Uint8Array[];
}

function digest(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}

function documentIdFor(label: string): DocumentId {
  return interpretAsDocumentId(new Uint8Array(digest(`accord/doc/${label}`).subarray(0, 16)) as never);
}

/** A deterministic actor id so every device writes the same first change of a shared document. */
function actorFor(label: string): string {
  return digest(`accord/actor/${label}`).subarray(0, 16).toString('hex');
}

/** The root document's id: the same on every device of the facility. */
export function rootDocumentId(facility: FacilityId): DocumentId {
  return documentIdFor(`root/${facility}`);
}

/** The id of segment `index` of `device`: computable by anyone who knows the facility. */
export function segmentDocumentId(facility: FacilityId, device: DeviceId, index: number): DocumentId {
  return documentIdFor(`segment/${facility}/${device}/${index}`);
}

/** The automerge URL of a document id. */
export function urlOf(id: DocumentId): AutomergeUrl {
  return stringifyAutomergeUrl({ documentId: id });
}

/** The byte-identical first change of the root document (deterministic actor, time 0). */
export function rootInitialBytes(facility: FacilityId): Uint8Array {
  const doc = A.change(A.init<RootDoc>({ actor: actorFor(`root/${facility}`) }), { time: 0 }, (d) => {
    d.facility = facility;
    d.devices = {};
  });
  return saveAndFree(doc);
}

/** The byte-identical first change of a segment document. */
export function segmentInitialBytes(facility: FacilityId, device: DeviceId, index: number): Uint8Array {
  const label = `segment/${facility}/${device}/${index}`;
  const doc = A.change(A.init<SegmentDoc>({ actor: actorFor(label) }), { time: 0 }, (d) => {
    d.facility = facility;
    d.device = device;
    d.index = index;
    d.events = [];
  });
  return saveAndFree(doc);
}

/** A document's bytes; its WebAssembly memory is freed now, not whenever the garbage collector finalizes it. */
function saveAndFree(doc: A.Doc<unknown>): Uint8Array {
  try {
    return A.save(doc);
  } finally {
    A.free(doc);
  }
}

/**
 * The byte that joins the events of a run (`\n`): canonical JSON escapes every control character
 * in strings and holds no whitespace between tokens, so no signed event's bytes contain it, and
 * `decodeSignedEvent` refuses bytes that do (the protocol's event tests say both).
 */
export const RUN_SEPARATOR = 0x0a;

/**
 * The events' bytes of one segment entry (a run, see {@link SegmentDoc}), in order: views of
 * `entry` (`subarray`), never copies. A piece that is empty (a leading, trailing or doubled
 * separator) is returned as it is, an empty array, so that the reader judges it as it judges any
 * entry that does not decode.
 *
 * @remarks The pieces share `entry`'s buffer: a holder that keeps a piece beyond the read keeps the
 * whole run alive, and one that hands the piece's `.buffer` on (a transfer, a view built on it)
 * must copy it first. Checked for the log's holders (session 15): the ingest keeps a candidate's
 * bytes only until the store has taken them; the event stores frame (LevelDB) or copy (the memory
 * store) what they keep and read views by their `byteOffset`; events held back behind a hole and
 * incidents keep decoded events and messages, never entry bytes.
 */
export function eventsOfEntry(entry: Uint8Array): Uint8Array[] {
  let at = entry.indexOf(RUN_SEPARATOR);
  if (at < 0) return [entry]; // a run of one: today's entry, and the writer's single event
  const pieces: Uint8Array[] = [];
  let from = 0;
  while (at >= 0) {
    pieces.push(entry.subarray(from, at));
    from = at + 1;
    at = entry.indexOf(RUN_SEPARATOR, from);
  }
  pieces.push(entry.subarray(from));
  return pieces;
}

/** How many pieces {@link eventsOfEntry} would split `entry` into, without making them. */
export function eventCountOf(entry: Uint8Array): number {
  let count = 1;
  for (let at = entry.indexOf(RUN_SEPARATOR); at >= 0; at = entry.indexOf(RUN_SEPARATOR, at + 1)) count++;
  return count;
}

/**
 * A segment document's list with every run split into its events' bytes ({@link eventsOfEntry}),
 * in order; entries that are not bytes are kept as they are (the reader reports them).
 */
export function eventsOfList(list: readonly unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const entry of list) {
    if (entry instanceof Uint8Array) for (const piece of eventsOfEntry(entry)) out.push(piece);
    else out.push(entry);
  }
  return out;
}

/** How many events a segment document's list holds (its runs' pieces; an entry that is not bytes counts one). */
export function eventCountOfList(list: readonly unknown[]): number {
  let count = 0;
  for (const entry of list) count += entry instanceof Uint8Array ? eventCountOf(entry) : 1;
  return count;
}

/**
 * One run of `events` (signed canonical bytes, none empty, none holding {@link RUN_SEPARATOR}):
 * what a writer pushes as one entry of a segment document (see {@link SegmentDoc}).
 */
export function joinRun(events: readonly Uint8Array[]): Uint8Array {
  if (events.length === 1) return events[0]!;
  let total = events.length - 1;
  for (const bytes of events) total += bytes.length;
  const run = new Uint8Array(total);
  let at = 0;
  for (const [i, bytes] of events.entries()) {
    if (i > 0) run[at++] = RUN_SEPARATOR;
    run.set(bytes, at);
    at += bytes.length;
  }
  return run;
}

/**
 * The sequence numbers of `device`'s events among a segment document's entries (runs are split;
 * pieces that are not bytes, do not decode or are another device's are skipped).
 */
export function seqsIn(list: unknown, device: DeviceId): Set<number> {
  const seqs = new Set<number>();
  if (!Array.isArray(list)) return seqs;
  for (const bytes of eventsOfList(list as unknown[])) {
    const decoded = bytes instanceof Uint8Array ? decodeSignedEvent(bytes) : undefined;
    if (decoded?.ok === true && decoded.value.device === device) seqs.add(decoded.value.seq);
  }
  return seqs;
}
