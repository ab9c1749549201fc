import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFacilityId,
  deviceIdFromPublicKey,
  deviceKeyFromSeed,
  isAccordError,
  type DeviceId,
  type DeviceKeyPair,
  type RosterMember,
  type SignedEvent,
} from '@accord/protocol';
import {
  addToRoster,
  parseRoster,
  readRosterFile,
  rosterFromEvent,
  RosterFile,
  type RosterData,
} from './roster-file.js';
import { FakeRelay } from './testing.js';
import { writeJsonAtomic } from '@accord/storage-level';

const FACILITY = asFacilityId('clinic-1');
const id = (n: number): DeviceId => deviceIdFromPublicKey(new Uint8Array(32).fill(n));

let dir: string;
let path: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-roster-'));
  path = join(dir, 'roster.json');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function rosterInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    expect(isAccordError(e)).toBe(true);
    expect((e as { code: string }).code).toBe('DEVICE_ROSTER_INVALID');
    return;
  }
  expect.fail('expected DEVICE_ROSTER_INVALID');
}

describe('parseRoster', () => {
  it('accepts a roster and defaults revoked to false', () => {
    const r = parseRoster({
      facility: 'clinic-1',
      devices: [
        { id: id(1), name: 'a' },
        { id: id(2), name: 'b', revoked: true },
      ],
    });
    expect(r.devices).toEqual([
      { id: id(1), name: 'a', revoked: false },
      { id: id(2), name: 'b', revoked: true },
    ]);
  });

  it.each([
    ['not an object', []],
    ['a bad facility', { facility: 'a b', devices: [] }],
    ['no devices', { facility: 'f' }],
    ['a bad device id', { facility: 'f', devices: [{ id: 'x', name: 'a' }] }],
    ['a nameless device', { facility: 'f', devices: [{ id: id(1) }] }],
    ['a non-boolean revoked', { facility: 'f', devices: [{ id: id(1), name: 'a', revoked: 'yes' }] }],
    [
      'a duplicate device',
      {
        facility: 'f',
        devices: [
          { id: id(1), name: 'a' },
          { id: id(1), name: 'b' },
        ],
      },
    ],
    ['a bad relay', { facility: 'f', relay: 'r', devices: [] }],
  ])('refuses %s', (_what, value) => rosterInvalid(() => parseRoster(value)));

  it('refuses any JSON value with DEVICE_ROSTER_INVALID or accepts it, never anything else', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseRoster(v);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('DEVICE_ROSTER_INVALID');
        }
      }),
    );
  });
});

describe('addToRoster', () => {
  it('creates the file, adds devices, is idempotent and keeps revocations', async () => {
    await addToRoster(path, FACILITY, { id: id(1), name: 'one' });
    await addToRoster(path, FACILITY, { id: id(2), name: 'two' });
    await addToRoster(path, FACILITY, { id: id(1), name: 'one' });
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0 });
    expect(roster.data.devices.map((d) => d.id).sort()).toEqual([id(1), id(2)].sort());
    expect(roster.lookup(id(2))).toEqual({ facility: FACILITY, revoked: false });
    expect(roster.lookup(id(3))).toBeUndefined();
  });

  it('loses no device when many are added concurrently', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => id(i + 1));
    await Promise.all(ids.map((d, i) => addToRoster(path, FACILITY, { id: d, name: `tablet ${i}` })));
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0 });
    expect(roster.data.devices.map((d) => d.id).sort()).toEqual([...ids].sort());
  });

  it('refuses a roster of another facility', async () => {
    await addToRoster(path, FACILITY, { id: id(1), name: 'one' });
    await expect(addToRoster(path, asFacilityId('other'), { id: id(2), name: 'two' })).rejects.toMatchObject({
      code: 'DEVICE_ROSTER_INVALID',
    });
  });
});

describe('RosterFile', () => {
  const write = (data: RosterData): Promise<void> => writeJsonAtomic(path, data);

  it('refuses a missing file or one of another facility', async () => {
    await expect(RosterFile.open(path, FACILITY)).rejects.toMatchObject({ code: 'DEVICE_ROSTER_INVALID' });
    await write({ facility: asFacilityId('other'), devices: [] });
    await expect(RosterFile.open(path, FACILITY)).rejects.toMatchObject({ code: 'DEVICE_ROSTER_INVALID' });
  });

  it('takes a revocation and a new device into account on reload', async () => {
    await write({ facility: FACILITY, devices: [{ id: id(1), name: 'a', revoked: false }] });
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0 });
    expect(await roster.reload()).toBe(false);
    await write({
      facility: FACILITY,
      devices: [
        { id: id(1), name: 'a', revoked: true },
        { id: id(2), name: 'b', revoked: false },
      ],
    });
    expect(await roster.reload()).toBe(true);
    expect(roster.lookup(id(1))).toEqual({ facility: FACILITY, revoked: true });
    expect(roster.lookup(id(2))).toEqual({ facility: FACILITY, revoked: false });
  });

  it('notices a change by itself (polling) and reports it', async () => {
    await write({ facility: FACILITY, devices: [] });
    let changed!: (r: RosterData) => void;
    const seen = new Promise<RosterData>((resolve) => (changed = resolve));
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 10, onChange: (r) => changed(r) });
    try {
      await write({ facility: FACILITY, devices: [{ id: id(7), name: 'new', revoked: false }] });
      expect((await seen).devices).toHaveLength(1);
      expect(roster.lookup(id(7))?.revoked).toBe(false);
    } finally {
      roster.close();
    }
  });

  it('keeps the last good roster when the file is broken or switches facility', async () => {
    await write({ facility: FACILITY, devices: [{ id: id(1), name: 'a', revoked: false }] });
    const errors: Error[] = [];
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0, onError: (e) => errors.push(e) });
    await writeFile(path, '{"facility": "clinic-1", "devices": [');
    expect(await roster.reload()).toBe(false);
    await write({ facility: asFacilityId('other'), devices: [] });
    expect(await roster.reload()).toBe(false);
    await rm(path);
    expect(await roster.reload()).toBe(false);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual([
      'DEVICE_ROSTER_INVALID',
      'DEVICE_ROSTER_INVALID',
      'DEVICE_ROSTER_INVALID',
    ]);
    expect(roster.lookup(id(1))).toEqual({ facility: FACILITY, revoked: false });
  });
});

describe('relay-distributed roster', () => {
  let relayKey: DeviceKeyPair;
  let strangerKey: DeviceKeyPair;
  beforeEach(async () => {
    relayKey = await deviceKeyFromSeed(new Uint8Array(32).fill(201));
    strangerKey = await deviceKeyFromSeed(new Uint8Array(32).fill(202));
  });
  const members = (...revoked: boolean[]): RosterMember[] =>
    revoked.map((r, i) => ({ id: id(i + 1), name: `tablet ${i + 1}`, revoked: r }));
  const signed = (version: number, list: RosterMember[], key = relayKey): Promise<SignedEvent> =>
    FakeRelay.signRosterWith(key, FACILITY, version, list);
  const fileOf = async (version: number, list: RosterMember[]): Promise<RosterData> =>
    rosterFromEvent(await signed(version, list), { relay: relayKey.deviceId });

  it('parses a roster carrying its signed event, and refuses one that disagrees with it', async () => {
    const good = await fileOf(2, members(false, true));
    expect(parseRoster(JSON.parse(JSON.stringify(good)))).toEqual(good);
    expect(good).toMatchObject({ relay: relayKey.deviceId, version: 2, devices: members(false, true) });
    const { event, version: _v, ...plain } = good;
    rosterInvalid(() => parseRoster({ ...plain, version: 2 }));
    rosterInvalid(() => parseRoster({ ...plain, event }));
    rosterInvalid(() => parseRoster({ ...good, version: 3 }));
    rosterInvalid(() => parseRoster({ ...good, devices: members(false, false) }));
    rosterInvalid(() => parseRoster({ ...good, relay: strangerKey.deviceId }));
    rosterInvalid(() => parseRoster({ ...good, event: { ...event, sig: 'x' } }));
    rosterInvalid(() => parseRoster({ ...good, event: { ...event, type: 'Verdict' } }));
  });

  it('answers lookups for the relay itself, and refuses an unsigned or forged file when the relay is required', async () => {
    await writeJsonAtomic(path, await fileOf(1, members(false)));
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0, relay: relayKey.deviceId });
    expect(roster.lookup(relayKey.deviceId)).toEqual({ facility: FACILITY, revoked: false });
    expect(roster.lookup(strangerKey.deviceId)).toBeUndefined();
    roster.close();

    await writeJsonAtomic(path, { facility: FACILITY, relay: relayKey.deviceId, devices: members(false) });
    await expect(RosterFile.open(path, FACILITY, { relay: relayKey.deviceId })).rejects.toMatchObject({
      code: 'DEVICE_ROSTER_INVALID',
    });
    // Consistent content, but the event's data was changed after signing.
    const good = await fileOf(1, members(false));
    const changed = members(true);
    await writeJsonAtomic(path, {
      ...good,
      devices: changed,
      event: { ...good.event, data: { version: 1, devices: changed } },
    });
    await expect(RosterFile.open(path, FACILITY, { relay: relayKey.deviceId })).rejects.toMatchObject({
      code: 'DEVICE_ROSTER_INVALID',
      message: expect.stringContaining('signature') as unknown,
    });
  });

  it('adopts only newer rosters of its relay, rewriting the file and telling listeners', async () => {
    await writeJsonAtomic(path, await fileOf(1, members(false, false)));
    const roster = await RosterFile.open(path, FACILITY, { pollMs: 0, relay: relayKey.deviceId });
    const changes: RosterData[] = [];
    roster.onChange((r) => changes.push(r));
    expect(await roster.adopt(await signed(5, members(true, true), strangerKey))).toBe(false);
    const v2 = await signed(2, members(false, true));
    expect(await roster.adopt(v2)).toBe(true);
    expect(changes.map((c) => c.version)).toEqual([2]);
    expect(await readRosterFile(path)).toMatchObject({
      version: 2,
      devices: members(false, true),
      event: v2,
    });
    expect(roster.lookup(id(2))).toEqual({ facility: FACILITY, revoked: true });
    expect(await roster.adopt(v2)).toBe(false);
    expect(await roster.adopt(await signed(1, members(true, true)))).toBe(false);
    const forged: SignedEvent = {
      ...(await signed(3, members(false, false))),
      data: { version: 3, devices: members(true, true).map((m) => ({ ...m })) },
    };
    await expect(roster.adopt(forged)).rejects.toMatchObject({ code: 'DEVICE_ROSTER_INVALID' });
    expect(roster.data.version).toBe(2);
    // Concurrent adoptions are serialized: the highest version ends up in force.
    const [v4, v3] = await Promise.all([signed(4, members(true, true)), signed(3, members(false, false))]);
    const results = await Promise.all([roster.adopt(v4), roster.adopt(v3)]);
    expect(results).toEqual([true, false]);
    expect((await readRosterFile(path))?.version).toBe(4);
    roster.close();
  });

  it('never goes back to an older version on reload, and addToRoster leaves a relay roster alone', async () => {
    const errors: Error[] = [];
    await writeJsonAtomic(path, await fileOf(2, members(false, true)));
    const roster = await RosterFile.open(path, FACILITY, {
      pollMs: 0,
      relay: relayKey.deviceId,
      onError: (e) => errors.push(e),
    });
    await writeJsonAtomic(path, await fileOf(1, members(false, false)));
    expect(await roster.reload()).toBe(false);
    expect(errors).toHaveLength(1);
    expect(roster.lookup(id(2))?.revoked).toBe(true);
    await expect(addToRoster(path, FACILITY, { id: id(9), name: 'x' })).rejects.toMatchObject({
      code: 'DEVICE_ROSTER_INVALID',
    });
    roster.close();
  });
});
