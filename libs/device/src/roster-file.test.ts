import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asFacilityId, deviceIdFromPublicKey, isAccordError, type DeviceId } from '@accord/protocol';
import { addToRoster, parseRoster, RosterFile, type RosterData } from './roster-file.js';
import { writeJsonAtomic } from './json-file.js';

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
