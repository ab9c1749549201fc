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
 * One segment: up to `segmentSize` events of ONE device, each stored as one opaque value
 * (its signed canonical bytes), never as nested objects of strings (DESIGN.md §7).
 *
 * @remarks Segment `k` of device `d` holds sequence numbers `k*size+1 … (k+1)*size`, so a
 * full segment is a closed, sealable set. Only device `d` appends to it.
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
 * The sequence numbers of `device`'s events among a segment document's entries (entries that are
 * not bytes, do not decode or are another device's are skipped).
 */
export function seqsIn(list: unknown, device: DeviceId): Set<number> {
  const seqs = new Set<number>();
  if (!Array.isArray(list)) return seqs;
  for (const bytes of list as unknown[]) {
    const decoded = bytes instanceof Uint8Array ? decodeSignedEvent(bytes) : undefined;
    if (decoded?.ok === true && decoded.value.device === device) seqs.add(decoded.value.seq);
  }
  return seqs;
}
