// Issue #13, scenario 6 in-process: a relay that starts on a folder holding its own history cannot
// tell a restart from a restore, so it writes nothing until a device showed it that history.
// Real LevelDB in a temp dir, real WebSockets on port 0.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLog, type LogRoster } from '@accord/log';
import {
  encodeSignedEvent,
  verdictsIn,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter, openDeviceDatabase } from '@accord/storage-level';
import { tempDir, testSeed, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import { relayFolder } from './relay-folder.js';
import { enrollOverHttp, eventually, registration, relayClient, seededDeviceKey } from './testing.js';

const SEED = testSeed('relay-catch-up.int');
const FACILITY = 'clinic-catch-up' as FacilityId;
const CATCH_UP_MS = 400;

const keyFor = (label: string): Promise<DeviceKeyPair> => seededDeviceKey(SEED, label);

describe('a relay starting on its own history', () => {
  let dir: TempDir;
  let relay: Relay;
  let port = 0;
  const logs: DeviceLog[] = [];
  const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  const roster: LogRoster = { lookup: (device) => members.get(device) };
  const data = () => join(dir.path, 'relay');
  const start = () =>
    Relay.start({
      data: data(),
      port,
      logger: createRelayLogger({ level: 'silent' }),
      catchUpMaxMs: CATCH_UP_MS,
    });

  beforeAll(async () => {
    dir = await tempDir('accord-relay-catch-up-');
    relay = await start();
    port = relay.port;
    members.set(relay.id, { facility: FACILITY, revoked: false });
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  /** A device log dialing the relay; `parts` keeps its data across a close (in memory). */
  async function device(
    key: DeviceKeyPair,
    parts = { store: new MemoryEventStore(), storage: new MemoryStorageAdapter() },
  ): Promise<DeviceLog> {
    const log = await DeviceLog.open({
      facility: FACILITY,
      key,
      eventStore: parts.store,
      storage: parts.storage,
      roster,
      relay: relay.id,
    });
    logs.push(log);
    log.addNetworkAdapter(relayClient({ port: port, relay: relay.id, key: key, facility: FACILITY, roster }));
    return log;
  }

  const relayVerdicts = (log: DeviceLog) =>
    [...log.visibleEvents()].filter((e) => e.device === relay.id).flatMap((e) => verdictsIn(e));

  it('decides nothing with no device connected, answers an enrollment after the bound, and goes on once a device showed its history', async () => {
    const aKey = await keyFor('a');
    await enrollOverHttp({ data: data(), port, facility: FACILITY, key: aKey });
    members.set(aKey.deviceId, { facility: FACILITY, revoked: false });
    const aParts = { store: new MemoryEventStore(), storage: new MemoryStorageAdapter() };
    let a = await device(aKey, aParts);
    const { event: first } = await a.append(registration('C1'));
    await eventually(() => a.get(first.id)?.status === 'accepted', 'C1 accepted');

    // The relay stops; A records an event; the relay's store gets it unjudged (as a backup of a
    // busy relay would hold it), and the relay starts with no device connected.
    await relay.stop();
    const { event: second } = await a.append(registration('C2'));
    await a.close();
    const db = await openDeviceDatabase(relayFolder(data()).facilityDb(FACILITY));
    await db.eventStore.append([
      { device: second.device, seq: second.seq, id: second.id, bytes: encodeSignedEvent(second) },
    ]);
    await db.close();
    relay = await start();
    const node = await relay.facility(FACILITY);
    await node.settled();
    expect(node.trusted).toBe(false);
    expect(node.stats()).toMatchObject({ waiting: 1, verdicts: 0 });

    // An enrollment must answer with the roster: it waits for the catch-up, but not forever.
    const bKey = await keyFor('b');
    const enrolled = await enrollOverHttp({ data: data(), port, facility: FACILITY, key: bKey });
    const listed = (enrolled.roster.data as { devices: { id: string }[] }).devices.map((d) => d.id);
    expect(listed).toContain(bKey.deviceId);
    await node.settled();
    expect(node.stats()).toMatchObject({ waiting: 1, verdicts: 0 });

    // A comes back and shows the relay its history: then C2 gets its one verdict, next in line.
    a = await device(aKey, aParts);
    await eventually(() => a.get(second.id)?.status === 'accepted', 'C2 accepted');
    expect(node.trusted).toBe(true);
    const forSecond = relayVerdicts(a).filter((v) => v.target === second.id);
    expect(forSecond).toEqual([expect.objectContaining({ outcome: 'accepted', seq: 2 })]);

    // Unloaded and loaded again by the same process: nothing can have been restored in between.
    await relay.unload(FACILITY);
    const again = await relay.facility(FACILITY);
    expect(again.trusted).toBe(true);
  });
});
