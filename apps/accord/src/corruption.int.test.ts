// A damaged database is detected at start-up and repaired from a peer (P1, P8): one of
// device B's stored copies of A's events and every stored chunk of the sync document
// carrying it are overwritten with garbage while B is stopped. B must notice both on
// restart, hold back the hole instead of serving a projection with it, and get the
// event back, byte for byte, from A.
import { describe, expect, it } from 'vitest';
import { initDevice } from '@accord/device';
import { segmentDocumentId } from '@accord/log';
import { encodeSignedEvent, type DeviceId, type FacilityId, type SignedEvent } from '@accord/protocol';
import { eventStoreRawKey, openDeviceDatabase, storageAdapterRawKey } from '@accord/storage-level';
import { AgentProcess, agentWorkspace, eventually, registration } from './test-support.js';

const { path, agents } = agentWorkspace('accord-corrupt-');

interface Status {
  integrity: {
    holes: { device: string }[];
    corrupt: unknown[];
    detectedAtStart: { corruptEvents: number; corruptChunks: number };
  };
}

describe('a corrupted database', () => {
  it('is detected at start-up and repaired from a peer, byte for byte', async () => {
    const roster = path('roster.json');
    await initDevice({ data: path('a'), facility: 'clinic-9', name: 'A', roster });
    await initDevice({ data: path('b'), facility: 'clinic-9', name: 'B', roster });
    const a = await AgentProcess.start([
      '--data',
      path('a'),
      '--listen',
      '0',
      '--listen-host',
      '127.0.0.1',
      '--http',
      '0',
    ]);
    agents.push(a);
    let b = await AgentProcess.start(['--data', path('b'), '--peer', a.peerUrl, '--http', '0']);
    agents.push(b);

    const ids: string[] = [];
    for (let n = 1; n <= 5; n++)
      ids.push((await a.api<{ id: string }>('POST', '/api/events', registration(n))).json.id);
    await eventually(
      'B to hold all five events',
      async () => (await b.api<unknown[]>('GET', '/api/events')).json.length === 5,
    );
    const victim = ids[2]!;
    const original = (await a.text(`/api/events/${victim}`)).text;
    const patientsBefore = (await a.text('/api/patients')).text;
    await b.stop('SIGTERM');

    // Damage B's copy while it is down: the event's stored value and the sync document's chunks.
    const db = await openDeviceDatabase(path('b', 'db'));
    const slot = eventStoreRawKey({ kind: 'event', device: a.ready.device, seq: 3 });
    const view = { keyEncoding: 'view', valueEncoding: 'view' } as const;
    const raw = await db.eventStore.rawDb.get(slot, view);
    expect(raw).toBeDefined();
    const flipped = Uint8Array.from(raw!);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0x55;
    await db.eventStore.rawDb.put(slot, flipped, view);
    const docId = segmentDocumentId('clinic-9' as FacilityId, a.ready.device as DeviceId, 0);
    const chunks = await db.storageAdapter.loadRange([docId]);
    expect(chunks.length).toBeGreaterThan(0);
    const automerge = db.db.sublevel<Uint8Array, Uint8Array>('automerge', {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    for (const chunk of chunks)
      await automerge.put(
        storageAdapterRawKey(chunk.key),
        new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
      );
    await db.close();

    // Offline restart: the damage is found, and the projection is served without what the hole
    // withholds (A's events from seq 3 on), saying so.
    b = await AgentProcess.start(['--data', path('b'), '--http', '0']);
    agents.push(b);
    const status = (await b.api<Status & { withheld: unknown[] }>('GET', '/api/status')).json;
    const found = status.integrity;
    expect(found.detectedAtStart.corruptEvents).toBe(1);
    expect(found.detectedAtStart.corruptChunks).toBe(chunks.length);
    expect(found.holes.map((h) => h.device)).toEqual([a.ready.device]);
    expect(status.withheld).toEqual([
      { device: a.ready.device, from: 3, reason: 'hole', missing: [3], heldBack: 2 },
    ]);
    const partial = await b.api<{ id: string }[]>('GET', '/api/patients');
    expect(partial.status).toBe(200);
    expect(partial.json.map((p) => p.id)).toEqual(['P-1', 'P-2']);
    expect((await b.api('GET', `/api/events/${victim}`)).status).toBe(404);
    await b.stop('SIGTERM');

    // Back with its peer: the event returns from A, identical, and the hole closes.
    b = await AgentProcess.start(['--data', path('b'), '--peer', a.peerUrl, '--http', '0']);
    agents.push(b);
    await eventually(
      'B to repair the event from A',
      async () => (await b.api('GET', `/api/events/${victim}`)).status === 200,
    );
    // Same signed bytes (the HTTP answer's key order follows each device's own object).
    const repaired = JSON.parse((await b.text(`/api/events/${victim}`)).text) as { event: SignedEvent };
    const before = JSON.parse(original) as { event: SignedEvent };
    expect(encodeSignedEvent(repaired.event)).toEqual(encodeSignedEvent(before.event));
    await eventually(
      'the hole to close',
      async () => (await b.api<Status>('GET', '/api/status')).json.integrity.holes.length === 0,
    );
    expect((await b.text('/api/patients')).text).toBe(patientsBefore);
  }, 90_000);
});
