// Issue #13: events from a tablet whose clock is two years ahead are accepted, and every device's
// `GET /api/status` names that tablet and how far off its clock is (the Sync Centre renders it).
import { afterEach, describe, expect, it } from 'vitest';
import { hostileDevice, makeFacility, openMemoryLog } from '@accord/log/testing';
import { formatHlc, eventIdFor, SystemEventType, type FacilityId, type SignedEvent } from '@accord/protocol';
import { MemoryEventStore } from '@accord/storage-level';
import { HttpApi } from './http-api.js';

const FACILITY = 'clinic-skew' as FacilityId;
const NOW = Date.UTC(2026, 11, 6, 9, 0);
const HOUR = 3_600_000;
const TWO_YEARS = 2 * 365 * 24 * HOUR;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('GET /api/status: clockSkews', () => {
  it('lists a tablet whose events lead the relay verdicts on them by two years, and not the honest one', async () => {
    const facility = await makeFacility(FACILITY, 4, 21);
    const [self, tabletA, tabletB, relayKey] = facility.keys as [
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
      (typeof facility.keys)[0],
    ];
    // The store counts what is read back from it (an API started over a judged history reads nothing).
    const eventStore = new MemoryEventStore();
    let reads = 0;
    const readSync = eventStore.readSync.bind(eventStore);
    eventStore.readSync = (id) => (reads++, readSync(id));
    const log = await openMemoryLog(facility, 0, {
      key: self,
      relay: relayKey.deviceId,
      clock: () => NOW,
      eventStore,
    });
    cleanup.push(() => log.close());
    const http = await HttpApi.listen({
      log,
      identity: { device: self.deviceId, name: 'Self', facility: FACILITY },
      network: { online: true, setOnline: () => undefined, peers: () => [] },
      relay: { id: relayKey.deviceId, url: null },
      clock: () => NOW,
    });
    cleanup.push(() => http.close());
    const status = async () =>
      (await (await fetch(`http://127.0.0.1:${http.port}/api/status`)).json()) as Record<string, unknown>;
    expect((await status())['clockSkews']).toEqual([]);

    // Tablet A's clock runs two years ahead: its event ids and HLC stamps say 2028.
    const registration = async (tablet: typeof tabletA, n: number, at: number): Promise<SignedEvent> =>
      hostileDevice(log, tablet).sign({
        id: eventIdFor(at, tablet.deviceId, 1),
        seq: 1,
        hlc: formatHlc(at, 0),
        type: 'PatientRegistered',
        data: {
          patientId: `p${n}`,
          nationalId: `N${n}`,
          givenName: 'Ama',
          familyName: 'Mensah',
          birthDate: '2020-01-01',
          sex: 'female',
        },
        subject: { kind: 'patient', id: `p${n}` },
      });
    const fromA = await registration(tabletA, 1, NOW + TWO_YEARS);
    const fromB = await registration(tabletB, 2, NOW - 60_000);
    await hostileDevice(log, tabletA).write([fromA]);
    await hostileDevice(log, tabletB).write([fromB]);
    // The relay accepts both a few seconds later, by its own (right) clock.
    const verdict = await hostileDevice(log, relayKey).sign({
      id: eventIdFor(NOW + 5_000, relayKey.deviceId, 1),
      seq: 1,
      hlc: formatHlc(NOW + 5_000, 0),
      type: SystemEventType.AcceptedVerdicts,
      data: { ruleSet: 'accord-rules/1', firstSeq: 1, targets: [fromA.id, fromB.id] },
      subject: { kind: 'verdicts', id: FACILITY },
    });
    await hostileDevice(log, relayKey).write([verdict]);
    await log.settled();
    expect(log.get(fromA.id)?.status).toBe('accepted');

    const skews = (await status())['clockSkews'] as Record<string, unknown>[];
    expect(skews).toHaveLength(1);
    expect(skews[0]).toMatchObject({
      device: tabletA.deviceId,
      offByHours: Math.round(((TWO_YEARS - 5_000) / HOUR) * 10) / 10,
      event: fromA.id,
      verdict: verdict.id,
    });

    // An API started over the judged history (an agent's restart) finds the same skew from the
    // verdicts alone: it locates their targets by id and reads no event back from the store.
    reads = 0;
    const restarted = await HttpApi.listen({
      log,
      identity: { device: self.deviceId, name: 'Self', facility: FACILITY },
      network: { online: true, setOnline: () => undefined, peers: () => [] },
      relay: { id: relayKey.deviceId, url: null },
      clock: () => NOW,
    });
    cleanup.push(() => restarted.close());
    expect(reads).toBe(0);
    const again = (await (await fetch(`http://127.0.0.1:${restarted.port}/api/status`)).json()) as Record<
      string,
      unknown
    >;
    expect(again['clockSkews']).toEqual(skews);
  });
});
