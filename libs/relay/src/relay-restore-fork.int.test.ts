// Issue #11 (hardening): a relay restored from an older backup must never reuse one of its own
// event numbers. Two ways it did: it went ahead once the first tablet showed it its history, and a
// tablet holding later relay events came back afterwards (bug 1); and a folder restored from before
// the facility's first load has an empty store, which the relay trusted at once (bug 2). Either
// way two relay events shared a number: every log takes that for an equivocation of the relay and
// withholds its events from there on. Real LevelDB in a temp dir, real WebSockets on port 0.
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceLog, type LogRoster } from '@accord/log';
import {
  verdictsIn,
  type DeviceId,
  type DeviceKeyPair,
  type EventId,
  type FacilityId,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { tempDir, testSeed, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import { relayFolder } from './relay-folder.js';
import { enrollOverHttp, eventually, registration, relayClient, seededDeviceKey } from './testing.js';

const SEED = testSeed('relay-restore-fork.int');
const FACILITY = 'clinic-restore-fork' as FacilityId;
/** How long the relay waits for the other tablets once one showed it its history. */
const CATCH_UP_MS = 4_000;

const keyFor = (label: string): Promise<DeviceKeyPair> => seededDeviceKey(SEED, label);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Parts {
  readonly store: MemoryEventStore;
  readonly storage: MemoryStorageAdapter;
}

describe('a relay restored from an older backup', () => {
  let dir: TempDir;
  let relay: Relay | undefined;
  let port = 0;
  const open = new Set<DeviceLog>();
  const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  const roster: LogRoster = { lookup: (device) => members.get(device) };
  const data = () => join(dir.path, 'relay');
  const backup = () => join(dir.path, 'backup');

  const start = async (): Promise<Relay> => {
    relay = await Relay.start({
      data: data(),
      port,
      logger: createRelayLogger({ level: 'silent' }),
      catchUpMaxMs: CATCH_UP_MS,
    });
    port = relay.port;
    members.set(relay.id, { facility: FACILITY, revoked: false });
    return relay;
  };
  const stop = async (): Promise<void> => {
    await relay?.stop();
    relay = undefined;
  };

  beforeEach(async () => {
    dir = await tempDir('accord-relay-restore-fork-');
    port = 0;
    members.clear();
  });

  afterEach(async () => {
    for (const log of open) await log.close();
    open.clear();
    await stop();
    await dir.cleanup();
  });

  /** A tablet's log on `parts` (kept across a close, as its disk), dialing the relay. */
  async function tablet(key: DeviceKeyPair, parts: Parts, relayId: DeviceId): Promise<DeviceLog> {
    const log = await DeviceLog.open({
      facility: FACILITY,
      key,
      eventStore: parts.store,
      storage: parts.storage,
      roster,
      relay: relayId,
    });
    open.add(log);
    log.addNetworkAdapter(relayClient({ port, relay: relayId, key, facility: FACILITY, roster }));
    return log;
  }
  async function closeTablet(log: DeviceLog): Promise<void> {
    open.delete(log);
    await log.close();
  }
  async function enroll(label: string): Promise<{ key: DeviceKeyPair; parts: Parts }> {
    const key = await keyFor(label);
    await enrollOverHttp({ data: data(), port, facility: FACILITY, key });
    members.set(key.deviceId, { facility: FACILITY, revoked: false });
    return { key, parts: { store: new MemoryEventStore(), storage: new MemoryStorageAdapter() } };
  }

  /** What no fork means on one log: no equivocation, nothing withheld, one verdict per event, seqs unique. */
  function expectNoFork(log: DeviceLog, relayId: DeviceId, targets: readonly EventId[]): void {
    expect(log.incidents().filter((i) => i.code === 'LOG_EQUIVOCATION')).toEqual([]);
    expect(log.withheld()).toEqual([]);
    const verdicts = [...log.visibleEvents()]
      .filter((e) => e.device === relayId)
      .flatMap((e) => verdictsIn(e));
    for (const target of targets) expect(verdicts.filter((v) => v.target === target)).toHaveLength(1);
    const seqs = verdicts.flatMap((v) => (v.outcome === 'accepted' ? [v.seq] : []));
    expect(new Set(seqs).size).toBe(seqs.length);
  }

  it('waits for every enrolled tablet, not only the first one back, and continues after the later relay events one holds (bug 1)', async () => {
    const r = await start();
    const a = await enroll('a');
    const b = await enroll('b');
    let aLog = await tablet(a.key, a.parts, r.id);
    let bLog = await tablet(b.key, b.parts, r.id);
    const { event: first } = await aLog.append(registration('F1'));
    await eventually(() => bLog.get(first.id)?.status === 'accepted', 'F1 accepted on B');

    // The backup; then B alone gets a later verdict from the relay.
    await stop();
    await cp(data(), backup(), { recursive: true });
    await closeTablet(aLog);
    await start();
    const { event: second } = await bLog.append(registration('F2'));
    await eventually(() => bLog.get(second.id)?.status === 'accepted', 'F2 accepted on B');
    await closeTablet(bLog);

    // The relay's folder is replaced by the backup; A, which never saw F2's verdict, comes back
    // first with a new event.
    await stop();
    await rm(data(), { recursive: true, force: true });
    await cp(backup(), data(), { recursive: true });
    await start();
    aLog = await tablet(a.key, a.parts, relay!.id);
    const { event: third } = await aLog.append(registration('F3'));
    const node = await relay!.facility(FACILITY);
    await eventually(() => node.stats().waiting === 1, 'F3 at the relay');
    // A showed its history, B did not (yet): nothing is written.
    await sleep(CATCH_UP_MS / 2);
    await node.settled();
    expect(node.trusted).toBe(false);
    expect(node.stats()).toMatchObject({ waiting: 1, verdicts: 0 });
    expect(aLog.get(third.id)?.status).toBe('pending');

    // B comes back: the relay takes F2's verdict back, then judges F3 after it.
    bLog = await tablet(b.key, b.parts, relay!.id);
    await eventually(() => aLog.get(third.id)?.status === 'accepted', 'F3 accepted on A');
    await eventually(() => bLog.get(third.id)?.status === 'accepted', 'F3 accepted on B');
    await eventually(() => aLog.get(second.id)?.status === 'accepted', 'F2 accepted on A');
    expect(node.trusted).toBe(true);
    const seqOf = (log: DeviceLog, id: EventId) => {
      const v = log.get(id)?.verdict;
      return v === undefined ? undefined : verdictsIn(v).find((x) => x.target === id);
    };
    expect(seqOf(aLog, third.id)).toMatchObject({ outcome: 'accepted', seq: 3 });
    expect(seqOf(aLog, second.id)).toMatchObject({ outcome: 'accepted', seq: 2 });
    for (const log of [aLog, bLog, node.log]) {
      await log.settled();
      expectNoFork(log, relay!.id, [first.id, second.id, third.id]);
    }
  });

  it('does not trust an empty store while enrolled tablets may hold its events (bug 2)', async () => {
    const r = await start();
    const a = await enroll('a');
    let aLog = await tablet(a.key, a.parts, r.id);
    const { event: first } = await aLog.append(registration('G1'));
    await eventually(() => aLog.get(first.id)?.status === 'accepted', 'G1 accepted');
    const relayEventsBefore = [...aLog.visibleEvents()].filter((e) => e.device === r.id).length;
    expect(relayEventsBefore).toBeGreaterThan(0);

    // Restored from before the facility's first load: `members.json` lists A, no database yet.
    await stop();
    await closeTablet(aLog);
    await rm(relayFolder(data()).facilityDb(FACILITY), { recursive: true, force: true });
    await start();
    const node = await relay!.facility(FACILITY);
    await node.settled();
    expect(node.trusted).toBe(false);
    // Nothing written: its roster would have taken number 1, which A holds another event under.
    expect(node.log.ownHistory().assigned).toBe(0);

    aLog = await tablet(a.key, a.parts, relay!.id);
    const { event: second } = await aLog.append(registration('G2'));
    await eventually(() => aLog.get(second.id)?.status === 'accepted', 'G2 accepted after the catch-up');
    expect(node.trusted).toBe(true);
    for (const log of [aLog, node.log]) {
      await log.settled();
      expectNoFork(log, relay!.id, [first.id, second.id]);
    }
    // The relay continued after what it had written before (G1 was seq 1).
    const v = aLog.get(second.id)?.verdict;
    expect(v === undefined ? undefined : verdictsIn(v).find((x) => x.target === second.id)).toMatchObject({
      outcome: 'accepted',
      seq: 2,
    });
  });
});
