import { encodeSignedEvent, type SignedEvent } from '@accord/protocol';
import {
  rootDocumentId,
  segmentDocumentId,
  type DeviceLog,
  type RootDoc,
  type SegmentDoc,
} from '@accord/log';

/**
 * Puts `events` again at the end of their authors' segment documents (and makes sure the root
 * index announces those segments), so every peer, the relay included, takes them in through the
 * ordinary sync and its verify-and-ingest path. Returns how many were re-added.
 *
 * @remarks Re-adding is the re-submit of issue #10: a peer whose store lacks events that its
 * documents already list (a relay restored from an older backup with a newer document, a
 * reader that skipped an entry) does not read old entries again, but it reads new ones. The
 * bytes are the signed originals, so no fact is changed or duplicated: logs ignore an event they
 * already hold, and only the document's list grows by the re-added entries.
 */
export async function reannounceEvents(log: DeviceLog, events: readonly SignedEvent[]): Promise<number> {
  const size = log.segmentSize;
  const bySegment = new Map<
    string,
    { device: SignedEvent['device']; index: number; events: SignedEvent[] }
  >();
  for (const e of events) {
    const index = Math.floor((e.seq - 1) / size);
    const id = segmentDocumentId(log.facility, e.device, index);
    let entry = bySegment.get(id);
    if (entry === undefined) bySegment.set(id, (entry = { device: e.device, index, events: [] }));
    entry.events.push(e);
  }
  const root = await log.repo.find<RootDoc>(rootDocumentId(log.facility));
  let resent = 0;
  for (const [id, { device, index, events: list }] of bySegment) {
    const handle = await log.repo.find<SegmentDoc>(id as ReturnType<typeof segmentDocumentId>);
    const sorted = [...list].sort((a, b) => a.seq - b.seq);
    handle.change((doc) => {
      for (const e of sorted) doc.events.push(encodeSignedEvent(e));
    });
    resent += sorted.length;
    const announced: unknown = root.doc().devices[device];
    if (typeof announced !== 'number' || announced < index + 1) {
      root.change((doc) => {
        doc.devices[device] = index + 1;
      });
    }
  }
  return resent;
}
