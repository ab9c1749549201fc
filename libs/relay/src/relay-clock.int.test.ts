// Issue #13, scenario 2 (clock poisoning), as a field tablet would meet it: a relay, tablet A whose
// clock runs two years ahead, and tablet B on real LevelDB. B and the relay take in A's events,
// then restart from their LevelDB data; their own next stamps must still be in the real year. And a
// peer's event stamped at the HLC's very maximum must never make an honest append fail.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClockSkewDetector } from '@accord/domain';
import { DeviceLog } from '@accord/log';
import { hostileDevice } from '@accord/log/testing';
import {
  formatHlc,
  generateDeviceKey,
  MAX_HLC_COUNTER,
  MAX_HLC_WALL_MS,
  parseHlc,
  type DeviceKeyPair,
  type EventId,
  type FacilityId,
  type Hlc,
  type SignedEvent,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter, openDeviceDatabase } from '@accord/storage-level';
import { tempDir, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import {
  enrollOverHttp,
  eventually,
  registration,
  verdictsAbout,
  relayClient,
  TestRoster,
} from './testing.js';

const FACILITY = 'clinic-clock' as FacilityId;
const HOUR_MS = 3_600_000;
const TWO_YEARS_MS = 2 * 365 * 24 * HOUR_MS;

interface Tablet {
  readonly log: DeviceLog;
  close(): Promise<void>;
}

/** True when an HLC stamp's wall time is within an hour of the real clock (the test machine's). */
function inRealTime(hlc: Hlc): boolean {
  return Math.abs(parseHlc(hlc).wallMs - Date.now()) < HOUR_MS;
}

describe('clock poisoning: one tablet with a wrong clock', () => {
  let dir: TempDir;
  let relay: Relay;
  let port = 0;
  const roster = new TestRoster(FACILITY);
  const open: { close(): Promise<void> }[] = [];

  const startRelay = async (): Promise<Relay> =>
    Relay.start({
      data: join(dir.path, 'relay'),
      port,
      logger: createRelayLogger({ level: 'silent' }),
      membershipPollMs: 50,
      // After a restart the relay waits this long for enrolled devices that stay away (some do here).
      catchUpMaxMs: 1_000,
    });

  async function enroll(name: string): Promise<DeviceKeyPair> {
    const key = await generateDeviceKey();
    await enrollOverHttp({ data: join(dir.path, 'relay'), port, facility: FACILITY, key, name });
    roster.add(key.deviceId);
    return key;
  }

  function connect(log: DeviceLog, key: DeviceKeyPair): void {
    log.addNetworkAdapter(relayClient({ port: port, relay: relay.id, key: key, facility: FACILITY, roster }));
  }

  /** A tablet whose log lives in LevelDB at `<dir>/<name>`, so it can be closed and reopened. */
  async function levelTablet(name: string, key: DeviceKeyPair): Promise<Tablet> {
    const db = await openDeviceDatabase(join(dir.path, name));
    const log = await DeviceLog.open({
      facility: FACILITY,
      key,
      eventStore: db.eventStore,
      storage: db.storageAdapter,
      roster,
      relay: relay.id,
    });
    connect(log, key);
    const tablet: Tablet = {
      log,
      close: async () => {
        await log.close();
        await db.close();
      },
    };
    open.push(tablet);
    return tablet;
  }

  /** The relay-signed event stating a verdict about `target`, as `log` holds it. */
  const relayVerdict = (log: DeviceLog, target: EventId): SignedEvent | undefined =>
    verdictsAbout(log.visibleEvents(), target, relay.id)[0]?.event;

  beforeEach(async () => {
    dir = await tempDir('accord-relay-clock-');
    port = 0;
    relay = await startRelay();
    port = relay.port;
    roster.add(relay.id);
  });

  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('does not make B or the relay stamp their own events in the year of a tablet two years ahead, before or after a restart', async () => {
    const keyA = await enroll('A (clock two years ahead)');
    const keyB = await enroll('B');
    const a = await DeviceLog.open({
      facility: FACILITY,
      key: keyA,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster,
      relay: relay.id,
      clock: () => Date.now() + TWO_YEARS_MS,
    });
    open.push(a);
    connect(a, keyA);
    let b = await levelTablet('b', keyB);

    const fromA: SignedEvent[] = [];
    for (let i = 1; i <= 5; i++) fromA.push((await a.append(registration(`PA${i}`))).event);
    expect(parseHlc(fromA[0]!.hlc).wallMs - Date.now()).toBeGreaterThan(TWO_YEARS_MS - HOUR_MS);
    for (const e of fromA) {
      await eventually(() => b.log.get(e.id)?.status === 'accepted', `A's ${e.id} accepted on B`);
    }
    // A's events are accepted, and flagged: its clock is two years ahead of the relay's verdicts.
    const detector = new ClockSkewDetector({ relay: relay.id, lookup: (id) => b.log.get(id)?.event });
    for (const e of b.log.visibleEvents()) detector.add(e);
    const skews = detector.skews();
    expect(skews.map((s) => s.device)).toEqual([keyA.deviceId]);
    expect(skews[0]!.offByHours).toBeGreaterThan(2 * 365 * 24 - 1);
    // At runtime the drift guard already holds: B's own stamp and the relay's verdict are real.
    const { event: before } = await b.log.append(registration('PB1'));
    expect(inRealTime(before.hlc)).toBe(true);
    const beforeVerdict = await eventually(() => relayVerdict(b.log, before.id), 'verdict on PB1');
    expect(inRealTime(beforeVerdict.hlc)).toBe(true);

    // B and the relay restart from their LevelDB data.
    await b.close();
    open.splice(open.indexOf(b), 1);
    await relay.stop();
    relay = await startRelay();
    b = await levelTablet('b', keyB);
    expect(b.log.get(fromA[4]!.id)?.event.hlc).toBe(fromA[4]!.hlc);

    const { event: after } = await b.log.append(registration('PB2'));
    expect(after.hlc > before.hlc).toBe(true);
    expect(inRealTime(after.hlc), `B stamped ${after.hlc} after its restart`).toBe(true);
    const afterVerdict = await eventually(() => relayVerdict(b.log, after.id), 'verdict on PB2');
    expect(inRealTime(afterVerdict.hlc), `the relay stamped its verdict ${afterVerdict.hlc}`).toBe(true);
  });

  it('lets no honest append fail because a peer stamped an event at the HLC maximum, before or after a restart', async () => {
    const keyB = await enroll('B');
    const keyC = await enroll('C (modified client)');
    let b = await levelTablet('b', keyB);
    const c = hostileDevice(b.log, keyC);
    const maxed = await c.sign({
      type: 'PatientRegistered',
      data: registration('PC1').data,
      subject: { kind: 'patient', id: 'PC1' },
      hlc: formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER),
    });
    await c.write([maxed]);
    await eventually(() => b.log.get(maxed.id), 'the maxed event taken in by B');
    const { event: before } = await b.log.append(registration('PB1'));
    expect(inRealTime(before.hlc)).toBe(true);
    // The relay takes it in through B, and answers both without failing to stamp its verdicts.
    await eventually(() => relayVerdict(b.log, maxed.id), 'verdict on the maxed event');
    await eventually(() => relayVerdict(b.log, before.id), 'verdict on PB1');

    await b.close();
    open.splice(open.indexOf(b), 1);
    await relay.stop();
    relay = await startRelay();
    b = await levelTablet('b', keyB);
    expect(b.log.get(maxed.id)?.event.hlc).toBe(maxed.hlc);

    const { event: after } = await b.log.append(registration('PB2'));
    expect(inRealTime(after.hlc), `B stamped ${after.hlc} after its restart`).toBe(true);
    const verdict = await eventually(() => relayVerdict(b.log, after.id), 'verdict on PB2 after the restart');
    expect(inRealTime(verdict.hlc)).toBe(true);
  });
});
