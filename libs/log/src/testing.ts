import {
  deviceKeyFromSeed,
  encodeSignedEvent,
  generateDeviceKey,
  segmentDigest,
  segmentName,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import type { Repo, StorageKey } from '@automerge/automerge-repo';
import { HostileDevice, type FakeNetwork } from '@accord/testkit';
import {
  eventStoreRawKey,
  MemoryEventStore,
  MemoryKeyValue,
  MemoryStorageAdapter,
  storageAdapterRawKey,
} from '@accord/storage-level';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceLogApi, DeviceLogOptions, LogRoster } from './api.js';
import { DeviceLog } from './device-log.js';
import type { LogDocumentStorage, LogEventStore, LogStoredEvent } from './ports.js';
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
export function repoOf(log: DeviceLogApi): Repo {
  const repo = repoBehind(log);
  if (repo === undefined) throw new Error('not a DeviceLog opened by DeviceLog.open');
  return repo;
}

/**
 * A modified client holding `key` (an enrolled device's own key) that writes raw into `log`'s
 * Repo: its own segments, other devices' segments and the root index (see `HostileDevice`).
 */
export function hostileDevice(log: DeviceLogApi, key: DeviceKeyPair): HostileDevice {
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
    ...(log instanceof DeviceLog ? { segmentSize: log.segmentSize } : {}),
  });
}

/**
 * Appends to `log` (a relay's) a `SegmentSealed` for each full segment of `size` of `device`'s
 * `events` (in seq order from seq 1); `digestOf(index, bytes)` gives the digest sealed (default:
 * the segment's honest digest).
 */
export async function appendSeals(
  log: Pick<DeviceLogApi, 'appendSystem'>,
  device: DeviceId,
  events: readonly SignedEvent[],
  size: number,
  digestOf: (index: number, bytes: Uint8Array[]) => Promise<string> = (_i, bytes) => segmentDigest(bytes),
): Promise<void> {
  for (let index = 0; (index + 1) * size <= events.length; index++) {
    const bytes = events.slice(index * size, (index + 1) * size).map((e) => encodeSignedEvent(e));
    await log.appendSystem({
      type: 'SegmentSealed',
      subject: { kind: 'segment', id: segmentName(device, index) },
      data: { device, index, size, digest: await digestOf(index, bytes) },
    });
  }
}

/** Lets the fake network and `log` run until `until` holds (or 60 rounds went by). */
export async function syncUntil(
  net: Pick<FakeNetwork, 'quiet'>,
  log: Pick<DeviceLog, 'settled'>,
  until: () => boolean,
): Promise<void> {
  for (let round = 0; round < 60 && !until(); round++) {
    await net.quiet();
    await log.settled();
  }
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

/** A fresh, empty pair of the log's storage ports, plus the hooks {@link runLogPortConformance} needs. */
export interface LogPortFixture {
  readonly store: LogEventStore;
  readonly storage: LogDocumentStorage;
  /** Damages the stored value of event (device, seq), bypassing its checksum. */
  damageEvent(device: string, seq: number): Promise<void>;
  /** Damages the stored chunk under `key`, bypassing its checksum. */
  damageChunk(key: StorageKey): Promise<void>;
  /** Closes the event store and opens it again on the same data. */
  reopen(): Promise<LogEventStore>;
  /** Closes everything and deletes temporary files. */
  teardown(): Promise<void>;
}

/**
 * The conformance suite of the log's ports (`LogEventStore`, `LogDocumentStorage`): what the log
 * relies on, checked against an implementation. Each implementation's test is a few lines.
 */
export function runLogPortConformance(name: string, setup: () => Promise<LogPortFixture>): void {
  const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
  const stored = (device: string, seq: number, fill = seq): LogStoredEvent => ({
    device,
    seq,
    id: `${device}-${seq}`,
    bytes: bytes(fill, fill + 1, fill + 2),
  });
  const all = async (store: LogEventStore, skipped: { device: string; seq: number }[] = []) => {
    const out: LogStoredEvent[] = [];
    const onSkipped = (slot: { device: string; seq: number }): void => void skipped.push({ ...slot });
    for await (const e of store.iterate({ skipCorrupt: true, onSkipped })) out.push(e);
    return out.map((e) => ({ device: e.device, seq: e.seq, id: e.id, bytes: [...e.bytes] }));
  };
  const plain = (e: LogStoredEvent) => ({ ...e, bytes: [...e.bytes] });
  const conflict = async (promise: Promise<unknown>): Promise<void> => {
    const err: unknown = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'STORAGE_CONFLICT' });
  };

  describe(`log ports: ${name}`, () => {
    let fixture: LogPortFixture;
    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(async () => {
      await fixture.teardown();
    });

    it('keeps appends durably and reads them back in (device, seq) order, bytes intact', async () => {
      await fixture.store.append([stored('dB', 1), stored('dA', 2), stored('dA', 1)]);
      await fixture.store.append([stored('dA', 3)]);
      const store = await fixture.reopen();
      expect(await all(store)).toEqual(
        [stored('dA', 1), stored('dA', 2), stored('dA', 3), stored('dB', 1)].map(plain),
      );
      expect(await store.highestSeq('dA')).toBe(3);
      expect(await store.highestSeq('dB')).toBe(1);
      expect(await store.highestSeq('dC')).toBe(0);
    });

    it("reads one device's events alone when asked, naming only that device's damaged slots", async () => {
      await fixture.store.append([stored('dA', 1), stored('dB', 1), stored('dB', 2), stored('dC', 1)]);
      await fixture.damageEvent('dA', 1);
      await fixture.damageEvent('dB', 2);
      const store = await fixture.reopen();
      const skipped: { device: string; seq: number }[] = [];
      const out: LogStoredEvent[] = [];
      const onSkipped = (slot: { device: string; seq: number }): void => void skipped.push({ ...slot });
      for await (const e of store.iterate({ device: 'dB', skipCorrupt: true, onSkipped })) out.push(e);
      expect(out.map(plain)).toEqual([plain(stored('dB', 1))]);
      expect(skipped).toEqual([{ device: 'dB', seq: 2 }]);
    });

    it('ignores an identical re-append and refuses a contradiction with STORAGE_CONFLICT, writing nothing of that call', async () => {
      const { store } = fixture;
      await store.append([stored('dA', 1)]);
      await store.append([stored('dA', 1)]);
      await conflict(store.append([stored('dA', 2), { ...stored('dA', 1), id: 'another-id' }]));
      await conflict(store.append([{ ...stored('dA', 1), bytes: bytes(9, 9) }]));
      await conflict(store.append([{ ...stored('dA', 1), device: 'dB', seq: 9 }]));
      expect(await all(store)).toEqual([plain(stored('dA', 1))]);
      expect(await store.highestSeq('dA')).toBe(1);
    });

    it('skips a damaged event, names its slot, still counts its number, and takes an intact copy back', async () => {
      await fixture.store.append([stored('dA', 1), stored('dA', 2), stored('dA', 3)]);
      await fixture.damageEvent('dA', 3);
      const store = await fixture.reopen();
      const skipped: { device: string; seq: number }[] = [];
      expect(await all(store, skipped)).toEqual([stored('dA', 1), stored('dA', 2)].map(plain));
      expect(skipped).toEqual([{ device: 'dA', seq: 3 }]);
      expect(await store.highestSeq('dA')).toBe(3);
      await store.append([stored('dA', 3)]); // a peer's copy repairs it
      expect(await all(store)).toEqual([stored('dA', 1), stored('dA', 2), stored('dA', 3)].map(plain));
    });

    it('reads one stored event by id synchronously, after a reopen too', async () => {
      await fixture.store.append([stored('dA', 1), stored('dB', 1, 7)]);
      expect(plain(fixture.store.readSync('dB-1')!)).toEqual(plain(stored('dB', 1, 7)));
      const store = await fixture.reopen();
      expect(plain(store.readSync('dA-1')!)).toEqual(plain(stored('dA', 1)));
      expect(plain(store.readSync('dB-1')!)).toEqual(plain(stored('dB', 1, 7)));
      expect(store.readSync('dA-2')).toBeUndefined();
      // Readable as soon as the append resolved (the log reads what it was just told is durable).
      await store.append([stored('dA', 2, 40)]);
      expect(plain(store.readSync('dA-2')!)).toEqual(plain(stored('dA', 2, 40)));
    });

    it('refuses to read a damaged event by id with STORAGE_CORRUPT, and reads the repaired copy', async () => {
      await fixture.store.append([stored('dA', 1), stored('dA', 2)]);
      await fixture.damageEvent('dA', 2);
      const store = await fixture.reopen();
      let err: unknown;
      try {
        store.readSync('dA-2');
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'STORAGE_CORRUPT' });
      expect(plain(store.readSync('dA-1')!)).toEqual(plain(stored('dA', 1)));
      await store.append([stored('dA', 2)]);
      expect(plain(store.readSync('dA-2')!)).toEqual(plain(stored('dA', 2)));
    });

    it('keeps meta values durably, a zero-length one included', async () => {
      expect(await fixture.store.meta.get('k')).toBeUndefined();
      await fixture.store.meta.put('k', bytes(1, 2));
      await fixture.store.meta.put('k', bytes(3));
      await fixture.store.meta.put('empty', bytes());
      const store = await fixture.reopen();
      expect([...((await store.meta.get('k')) ?? [])]).toEqual([3]);
      const empty = await store.meta.get('empty');
      expect(empty).toBeInstanceOf(Uint8Array);
      expect(empty?.length).toBe(0);
    });

    it('names a damaged document chunk in scan, and is clean once the log removed it', async () => {
      const { storage } = fixture;
      const damaged: StorageKey = ['doc', 'incremental', 'h1'];
      const intact: StorageKey = ['doc', 'incremental', 'h2'];
      await storage.save(damaged, bytes(1, 2, 3));
      await storage.save(intact, bytes(4, 5, 6));
      expect((await storage.scan()).corrupt).toEqual([]);
      await fixture.damageChunk(damaged);
      expect((await storage.scan()).corrupt).toEqual([damaged]);
      await storage.remove(damaged);
      expect((await storage.scan()).corrupt).toEqual([]);
      const left = await storage.loadRange(['doc']);
      expect(left.map((c) => [c.key, [...(c.data ?? [])]])).toEqual([[intact, [4, 5, 6]]]);
    });
  });
}

/** {@link LogPortFixture} on the in-memory twins of the LevelDB adapters (`reopen` keeps the data). */
export function memoryLogPorts(): Promise<LogPortFixture> {
  const events = new MemoryKeyValue();
  const chunks = new MemoryKeyValue();
  let store = new MemoryEventStore({ backend: events });
  const storage = new MemoryStorageAdapter({ backend: chunks });
  const damage = (kv: MemoryKeyValue, key: Uint8Array): void => {
    const raw = kv.getRaw(key);
    if (raw === undefined) throw new Error('test hook: nothing stored under that key');
    const copy = new Uint8Array(raw);
    copy[copy.length - 1] = copy[copy.length - 1]! ^ 0xff;
    kv.putRaw(key, copy);
  };
  return Promise.resolve({
    get store() {
      return store;
    },
    storage,
    damageEvent: (device, seq) =>
      Promise.resolve(damage(events, eventStoreRawKey({ kind: 'event', device, seq }))),
    damageChunk: (key) => Promise.resolve(damage(chunks, storageAdapterRawKey(key))),
    reopen: async () => {
      await store.close();
      store = new MemoryEventStore({ backend: events });
      return store;
    },
    teardown: async () => {
      await store.close();
      await storage.close();
    },
  });
}
