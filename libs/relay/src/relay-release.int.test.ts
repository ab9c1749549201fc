// Issue #12: the relay gives a device's segment to the other devices only once it has judged it.
// A whole segment of a third device, one event of which waits for a dependency that never comes,
// reaches the relay through a tablet carrying it; another tablet connected to the relay gets
// none of those events before the relay holds a verdict for each (the waiting one's 404 after
// the deadline), and checks the full segment by the relay's seal instead of one signature per
// event. Released, the segment stays released. Real relay (LevelDB in a temp dir, WebSockets on
// port 0), two devices with their own logs.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segmentDocumentId, type DeviceLog } from '@accord/log';
import { hostileDevice } from '@accord/log/testing';
import {
  eventIdFor,
  generateDeviceKey,
  type DeviceKeyPair,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import type { Relay } from './relay.js';
import {
  enrolledWith,
  enrollOverHttp,
  eventually,
  registration,
  verdictsAbout,
  TestRoster,
  startTestRelay,
} from './testing.js';

const FACILITY = 'clinic-release' as FacilityId;
const SEGMENT = 4;
// Past the Repo's first save of the segment (1 s after it arrives), so that the relay holds it
// stored when it releases it.
const DEADLINE_MS = 2500;

describe('a device segment reaches the other devices once the relay has judged it (issue #12)', () => {
  let dir: TempDir;
  let relay: Relay;
  const roster = new TestRoster(FACILITY);
  const logs: DeviceLog[] = [];

  /** An enrolled device with its own log; it dials the relay once the test connects it. */
  async function device(name: string): Promise<{ log: DeviceLog; key: DeviceKeyPair; connect: () => void }> {
    const d = await enrolledWith(relay, dir.path, roster, {
      facility: FACILITY,
      name,
      segmentSize: SEGMENT,
      connectLater: true,
    });
    logs.push(d.log);
    return d;
  }

  beforeAll(async () => {
    dir = await tempDir('accord-relay-release-');
    relay = await startTestRelay(dir.path, roster, {
      segmentSize: SEGMENT,
      dependencyDeadlineMs: DEADLINE_MS,
    });
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('withholds the segment until every event in it has a verdict, then it is checked by the seal', async () => {
    const reader = await device('Front desk');
    const carrier = await device('Store room');
    const third = await generateDeviceKey();
    await enrollOverHttp({ data: join(dir.path, 'relay'), port: relay.port, facility: FACILITY, key: third });
    roster.add(third.deviceId);
    const node = await relay.facility(FACILITY);
    // What the reader asks of the relay about the third device's segment, and what it is sent.
    const thirds = segmentDocumentId(FACILITY, third.deviceId, 0);
    const readerId: string = reader.key.deviceId;
    let asked = false;
    node.network.on('message', (m) => {
      if (m.senderId === readerId && m.documentId === thirds) asked = true;
    });
    const sent: Uint8Array[] = [];
    const send = node.network.send.bind(node.network);
    node.network.send = (m) => {
      if (m.targetId === readerId && m.documentId === thirds && m.type === 'sync' && m.data !== undefined)
        sent.push(m.data);
      send(m);
    };
    reader.connect();
    await eventually(() => asked, "the reader's request for the segment");

    // The third device's whole segment, written into the carrier's documents (as a LAN peer would).
    const author = hostileDevice(carrier.log, third);
    const never = eventIdFor(Date.now(), (await generateDeviceKey()).deviceId, 1);
    const segment: SignedEvent[] = [];
    for (let i = 1; i <= SEGMENT; i++) {
      const { type, data } = registration(`P${i}`);
      segment.push(
        await author.sign({
          type,
          data,
          subject: { kind: 'patient', id: `P${i}` },
          deps: i === 2 ? [never] : [],
        }),
      );
    }
    await author.write(segment);
    await eventually(
      () => segment.every((e) => carrier.log.get(e.id) !== undefined),
      'the segment on the carrier',
    );

    const unjudgedOnArrival: string[] = [];
    reader.log.onEvents((events) => {
      for (const e of events) {
        if (e.device !== third.deviceId) continue;
        if (verdictsAbout(node.log.visibleEvents(), e.id, relay.id).length === 0)
          unjudgedOnArrival.push(e.id);
      }
    });
    const started = Date.now();
    carrier.connect();

    for (const e of segment) {
      await eventually(
        () => reader.log.get(e.id)?.status !== 'pending' && reader.log.get(e.id),
        `${e.id} judged on the reader`,
      );
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(DEADLINE_MS);
    expect(reader.log.get(segment[1]!.id)?.status).toBe('deadletter');
    expect(unjudgedOnArrival).toEqual([]);
    expect(reader.log.verification().bySeal).toBe(SEGMENT);
    // The reader asked while it was withheld: it got the segment as the relay stored it (read once,
    // not a document generated anew for it), and no other message carried any of it.
    const stored = await node.log.storedSyncMessage(thirds);
    expect(stored).toBeDefined();
    // (A message without changes holds heads and a filter: a small fraction of the document.)
    const carrying = sent.filter((data) => data.length > stored!.length / 2);
    expect(carrying).toEqual([stored]);
    expect(node.stats().servedStored).toBe(1);
    // The reader took that copy in as sent, outside its Repo: checked by the seal and stored whole,
    // never applied to a document in memory (its entries materialized one by one). Asserted below.
    const takenAsSent = reader.log.wholeDocuments().takenAsSent;
    const inMemory = reader.log.documentsInMemory().some((d) => d.documentId === String(thirds));
    // Every device event was verified once by the relay, and none of its own (rosters, verdicts,
    // seals), which each device syncs back to it.
    expect(node.log.verification()).toEqual({ oneByOne: SEGMENT, bySeal: 0 });

    // Released for good: a later event of the device comes as it is.
    const { type, data } = registration('P-later');
    const later = await author.sign({ type, data, subject: { kind: 'patient', id: 'P-later' } });
    await author.write([later]);
    await eventually(() => reader.log.get(later.id) !== undefined, 'the later event on the reader');
    // (The later event's segment came as automerge-repo generated it, and went to the Repo: a message
    // it made is never refused, or the relay's Repo would count its changes as delivered.)
    expect(takenAsSent).toBe(1);
    expect(reader.log.wholeDocuments().takenAsSent).toBe(1);
    expect(inMemory).toBe(false);
  });
});
