// The `serves` option: a log that withholds a followed document from a peer, then lifts the
// refusal (the relay's segment release, issue #12). A hub sits between two devices on separate
// fake networks, so the second device can only get the first one's events through the hub.
import { describe, expect, it } from 'vitest';
import type { DeviceId, FacilityId } from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { segmentDocumentId } from './documents.js';
import { makeFacility, patientRegistration } from './testing.js';

const FACILITY = 'serving-facility' as FacilityId;
type Options = Parameters<typeof DeviceLog.open>[0];

describe('DeviceLogOptions.serves', () => {
  it('withholds a document from a peer that brings nothing of it, until servingChanged', async () => {
    const facility = await makeFacility(FACILITY, 3);
    const [hubKey, aKey, bKey] = [facility.keys[0]!, facility.keys[1]!, facility.keys[2]!];
    const toA = new FakeNetwork({ seed: 21 });
    const toB = new FakeNetwork({ seed: 22 });
    const aSegment = segmentDocumentId(FACILITY, aKey.deviceId, 0);
    let released = false;
    const asked: { peer: DeviceId; brings: boolean }[] = [];
    const open = (key: typeof hubKey, network: NonNullable<Options['network']>, serves?: Options['serves']) =>
      DeviceLog.open({
        facility: FACILITY,
        key,
        eventStore: new MemoryEventStore(),
        storage: new MemoryStorageAdapter(),
        roster: facility.roster,
        network,
        ...(serves === undefined ? {} : { serves }),
      });
    const hub = await open(
      hubKey,
      [toA.adapter('hub-a'), toB.adapter('hub-b')],
      (peer, id, bringsChanges) => {
        if (id !== aSegment || peer === aKey.deviceId || released) return true;
        const brings = bringsChanges();
        asked.push({ peer, brings });
        return brings;
      },
    );
    const a = await open(aKey, [toA.adapter('a')]);
    const b = await open(bKey, [toB.adapter('b')]);
    const quiet = async (): Promise<void> => {
      for (let round = 0; round < 10; round++) {
        await Promise.all([toA.quiet(), toB.quiet()]);
        for (const log of [hub, a, b]) await log.settled();
      }
    };
    const written = [];
    for (let i = 0; i < 3; i++) written.push((await a.append({ ...patientRegistration(`P${i}`) })).event);
    await quiet();
    // The hub holds them; the other device was refused them (it brought nothing).
    expect(written.every((e) => hub.get(e.id) !== undefined)).toBe(true);
    expect(written.some((e) => b.get(e.id) !== undefined)).toBe(false);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every(({ peer, brings }) => peer === bKey.deviceId && !brings)).toBe(true);

    released = true;
    await hub.servingChanged([aSegment]);
    await quiet();
    expect(written.every((e) => b.get(e.id) !== undefined)).toBe(true);
    for (const log of [hub, a, b]) await log.close();
  });
});
