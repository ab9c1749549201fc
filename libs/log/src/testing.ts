import {
  deviceKeyFromSeed,
  generateDeviceKey,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import type { Repo } from '@automerge/automerge-repo';
import { HostileDevice } from '@accord/testkit';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import type { DeviceLogOptions, LogRoster } from './api.js';
import { DeviceLog } from './device-log.js';
import { repoBehind } from './repo-host.js';
import { rootDocumentId, rootInitialBytes, segmentDocumentId, segmentInitialBytes } from './documents.js';

/** A facility for tests: device keys and a mutable in-memory roster. */
export interface TestFacility {
  readonly facility: FacilityId;
  readonly keys: DeviceKeyPair[];
  readonly roster: LogRoster & {
    add(device: DeviceId, facility?: FacilityId): void;
    revoke(device: DeviceId): void;
  };
}

/**
 * Makes `size` enrolled device keys of `facility` and a roster holding them.
 *
 * @remarks With a `seed`, the keys (and so the device ids and their sort order) are the
 * same on every run, which a seeded test needs to replay exactly.
 */
export async function makeFacility(facility: FacilityId, size: number, seed?: number): Promise<TestFacility> {
  const keys: DeviceKeyPair[] = [];
  for (let i = 0; i < size; i++) {
    if (seed === undefined) keys.push(await generateDeviceKey());
    else
      keys.push(
        await deviceKeyFromSeed(new Uint8Array(32).map((_, j) => (seed * 31 + i * 17 + j * 13) & 0xff)),
      );
  }
  const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  for (const key of keys) members.set(key.deviceId, { facility, revoked: false });
  return {
    facility,
    keys,
    roster: {
      lookup: (device) => members.get(device),
      add: (device, other = facility) => void members.set(device, { facility: other, revoked: false }),
      revoke: (device) => {
        const member = members.get(device);
        if (member !== undefined) members.set(device, { ...member, revoked: true });
      },
    },
  };
}

/**
 * Test hook: the automerge-repo `Repo` behind `log`, to write into its documents as a peer's sync
 * would, or to probe what it serves. Not part of the log's API: nothing but tests reaches it.
 */
export function repoOf(log: DeviceLog): Repo {
  const repo = repoBehind(log);
  if (repo === undefined) throw new Error('not a DeviceLog opened by DeviceLog.open');
  return repo;
}

/**
 * A modified client holding `key` (an enrolled device's own key) that writes raw into `log`'s
 * Repo: its own segments, other devices' segments and the root index (see `HostileDevice`).
 */
export function hostileDevice(log: DeviceLog, key: DeviceKeyPair): HostileDevice {
  return new HostileDevice({
    repo: repoOf(log),
    key,
    facility: log.facility,
    documents: {
      root: rootDocumentId(log.facility),
      rootInitial: () => rootInitialBytes(log.facility),
      segment: (device, index) => segmentDocumentId(log.facility, device, index),
      segmentInitial: (device, index) => segmentInitialBytes(log.facility, device, index),
    },
    segmentSize: log.segmentSize,
  });
}

/**
 * Opens the log of device `index` of `facility` on fresh in-memory stores; `extra` overrides or
 * adds options (a clock, a relay, another key, a network).
 */
export function openMemoryLog(
  facility: TestFacility,
  index: number,
  extra: Partial<DeviceLogOptions> = {},
): Promise<DeviceLog> {
  return DeviceLog.open({
    facility: facility.facility,
    key: facility.keys[index]!,
    eventStore: new MemoryEventStore(),
    storage: new MemoryStorageAdapter(),
    roster: facility.roster,
    ...extra,
  });
}

/** A `PatientRegistered` draft with its subject (what `HostileDevice.sign` takes, or an append). */
export function patientRegistration(id: string, givenName = 'Ama') {
  return {
    type: 'PatientRegistered',
    subject: { kind: 'patient', id },
    data: {
      patientId: id,
      nationalId: `N-${id}`,
      givenName,
      familyName: 'Mensah',
      birthDate: '2019-05-04',
      sex: 'female',
    },
  };
}
