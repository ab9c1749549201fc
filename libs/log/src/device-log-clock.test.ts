// Issue #13, clock poisoning: a restarted log resumes its HLC from its own stamps and sees other
// devices' stamps only through the drift-bounded observe, so a peer in a wrong year (or at the
// HLC's last stamp) neither drags its clock forward nor makes an append fail.
import { describe, expect, it } from 'vitest';
import {
  formatHlc,
  MAX_HLC_COUNTER,
  MAX_HLC_WALL_MS,
  parseHlc,
  type FacilityId,
  type Hlc,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { DeviceLog } from './device-log.js';
import { hostileDevice, makeFacility } from './testing.js';

const FACILITY = 'clock-facility' as FacilityId;
const T0 = Date.UTC(2026, 11, 6, 9, 0, 0);
const HOUR_MS = 3_600_000;

const registration = (n: number) => ({
  type: 'PatientRegistered',
  data: {
    patientId: `P${n}`,
    nationalId: `N${n}`,
    givenName: 'Ama',
    familyName: `F${n}`,
    birthDate: '2019-05-04',
    sex: 'female',
  },
});

describe('DeviceLog HLC across a restart', () => {
  async function scenario(
    remoteStamps: readonly Hlc[],
    opts: { ownFirst?: boolean; restart?: boolean } = {},
  ) {
    const facility = await makeFacility(FACILITY, 2, 11);
    const eventStore = new MemoryEventStore();
    const storage = new MemoryStorageAdapter();
    let wall = T0;
    const open = () =>
      DeviceLog.open({
        facility: FACILITY,
        key: facility.keys[0]!,
        eventStore,
        storage,
        roster: facility.roster,
        clock: () => wall,
      });
    let log = await open();
    const own = opts.ownFirst === false ? undefined : (await log.append(registration(0))).event;
    const peer = hostileDevice(log, facility.keys[1]!);
    const remote = [];
    for (const [i, hlc] of remoteStamps.entries()) {
      remote.push(
        await peer.sign({
          type: 'PatientRegistered',
          data: registration(100 + i).data,
          subject: { kind: 'patient', id: `P${100 + i}` },
          hlc,
        }),
      );
    }
    await peer.write(remote);
    await log.settled();
    for (const e of remote) expect(log.get(e.id)?.event.hlc).toBe(e.hlc);
    if (opts.restart === false)
      return { log, own, close: () => log.close(), setWall: (ms: number) => (wall = ms) };
    await log.close();
    // The restart happens an hour later by the wall clock.
    wall = T0 + HOUR_MS;
    log = await open();
    return { log, own, close: () => log.close(), setWall: (ms: number) => (wall = ms) };
  }

  it('does not resume from a peer stamp beyond the drift bound, and still orders after one within it', async () => {
    const within = formatHlc(T0 + 5 * HOUR_MS, 3);
    const years = formatHlc(T0 + 2 * 365 * 24 * HOUR_MS, 0);
    const { log, close } = await scenario([within, years]);
    const { event } = await log.append(registration(1));
    // Within the 24-hour bound the peer's stamp is observed, as it would be at run time…
    expect(event.hlc).toBe(formatHlc(T0 + 5 * HOUR_MS, 4));
    // …but the stamp two years ahead is not: before this fix the log resumed from it.
    expect(parseHlc(event.hlc).wallMs - T0).toBeLessThan(24 * HOUR_MS);
    await close();
  });

  it('observes the stamps of one received batch at run time, skipping only one beyond the drift bound', async () => {
    // One batch (one change of the peer's segment): its latest stamp is refused, so each other one
    // is looked at, and the one within the bound moves the clock on.
    const within = formatHlc(T0 + 5 * HOUR_MS, 3);
    const years = formatHlc(T0 + 2 * 365 * 24 * HOUR_MS, 0);
    const { log, close } = await scenario([within, years], { restart: false });
    const { event } = await log.append(registration(1));
    expect(event.hlc).toBe(formatHlc(T0 + 5 * HOUR_MS, 4));
    await close();
  });

  it('resumes from its own last stamp even when the wall clock went back', async () => {
    const { log, own, setWall, close } = await scenario([]);
    setWall(T0 - 10 * HOUR_MS);
    const { event } = await log.append(registration(1));
    expect(event.hlc > own!.hlc).toBe(true);
    await close();
  });

  it('appends after a restart over a peer event stamped at the HLC maximum', async () => {
    const top = formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER);
    const { log, close } = await scenario([top], { ownFirst: false });
    // Before this fix, `now()` threw PROTOCOL_CLOCK "HLC exhausted" here, on every append.
    const first = await log.append(registration(1));
    const second = await log.append(registration(2));
    expect(parseHlc(first.event.hlc).wallMs).toBe(T0 + HOUR_MS);
    expect(second.event.hlc > first.event.hlc).toBe(true);
    expect(log.get(first.event.id)?.status).toBe('pending');
    await close();
  });
});
