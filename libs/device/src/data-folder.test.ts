import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportDeviceKey, generateDeviceKey, signBytes, verifyBytes } from '@accord/protocol';
import { dataFolder, fileOwnSeqMark, initDevice, loadDevice } from './data-folder.js';
import { readRosterFile } from './roster-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-data-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('initDevice', () => {
  it('creates key.json (0600), device.json and a roster entry, and loadDevice restores a working key', async () => {
    const data = join(dir, 'tablet');
    const { deviceId, config } = await initDevice({
      data,
      facility: 'clinic-1',
      name: 'Front desk',
      clock: () => Date.UTC(2026, 0, 2),
    });
    const layout = dataFolder(data);
    expect((await stat(layout.keyFile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(layout.deviceFile, 'utf8'))).toEqual({
      v: 1,
      facility: 'clinic-1',
      name: 'Front desk',
      device: deviceId,
      created: '2026-01-02T00:00:00.000Z',
      roster: layout.defaultRoster,
    });
    expect(config.device).toBe(deviceId);
    expect((await readRosterFile(layout.defaultRoster))?.devices).toEqual([
      { id: deviceId, name: 'Front desk', revoked: false },
    ]);
    const loaded = await loadDevice(data);
    expect(loaded.key.deviceId).toBe(deviceId);
    const msg = new TextEncoder().encode('hello');
    expect(await verifyBytes(deviceId, msg, await signBytes(loaded.key, msg))).toBe(true);
  });

  it('refuses an already-initialized folder, and a folder with a leftover key', async () => {
    await initDevice({ data: dir, facility: 'clinic-1', name: 'a' });
    await expect(initDevice({ data: dir, facility: 'clinic-1', name: 'b' })).rejects.toMatchObject({
      code: 'DEVICE_ALREADY_INITIALIZED',
    });
    await rm(join(dir, 'device.json'));
    await expect(initDevice({ data: dir, facility: 'clinic-1', name: 'b' })).rejects.toMatchObject({
      code: 'DEVICE_ALREADY_INITIALIZED',
    });
  });

  it('lets exactly one of two concurrent inits of one folder win', async () => {
    const results = await Promise.allSettled([
      initDevice({ data: dir, facility: 'clinic-1', name: 'a' }),
      initDevice({ data: dir, facility: 'clinic-1', name: 'b' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({
      reason: { code: 'DEVICE_ALREADY_INITIALIZED' },
    });
  });

  it('enrolls concurrent devices in one shared roster', async () => {
    const roster = join(dir, 'shared-roster.json');
    const ids = await Promise.all(
      [1, 2, 3, 4, 5].map(
        async (n) =>
          (await initDevice({ data: join(dir, `d${n}`), facility: 'clinic-1', name: `tablet ${n}`, roster }))
            .deviceId,
      ),
    );
    expect((await readRosterFile(roster))?.devices.map((d) => d.id).sort()).toEqual([...ids].sort());
    expect((await loadDevice(join(dir, 'd3'))).config.roster).toBe(roster);
  });

  it.each([
    [{ facility: 'bad facility!', name: 'a' }, 'DEVICE_BAD_REQUEST'],
    [{ facility: 'f', name: '   ' }, 'DEVICE_BAD_REQUEST'],
    [{ facility: 'f', name: 'tab\u0007' }, 'DEVICE_BAD_REQUEST'],
  ])('refuses bad input %j', async (input, code) => {
    await expect(initDevice({ data: dir, ...input })).rejects.toMatchObject({ code });
  });

  it('refuses to join a roster of another facility', async () => {
    const roster = join(dir, 'roster.json');
    await initDevice({ data: join(dir, 'a'), facility: 'clinic-1', name: 'a', roster });
    await expect(
      initDevice({ data: join(dir, 'b'), facility: 'clinic-2', name: 'b', roster }),
    ).rejects.toMatchObject({ code: 'DEVICE_ROSTER_INVALID' });
    // The failed init took its key back: the folder can be initialized again.
    const again = await initDevice({ data: join(dir, 'b'), facility: 'clinic-1', name: 'b', roster });
    expect((await loadDevice(join(dir, 'b'))).key.deviceId).toBe(again.deviceId);
  });
});

describe('loadDevice', () => {
  it('reports an uninitialized folder', async () => {
    await expect(loadDevice(dir)).rejects.toMatchObject({ code: 'DEVICE_NOT_INITIALIZED' });
  });

  it('refuses a key file readable by others, a foreign key and a malformed device.json', async () => {
    await initDevice({ data: dir, facility: 'clinic-1', name: 'a' });
    const { keyFile, deviceFile } = dataFolder(dir);
    await chmod(keyFile, 0o644);
    await expect(loadDevice(dir)).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
    await writeFile(keyFile, JSON.stringify(await exportDeviceKey(await generateDeviceKey())), {
      mode: 0o600,
    });
    await chmod(keyFile, 0o600);
    await expect(loadDevice(dir)).rejects.toMatchObject({
      code: 'DEVICE_CONFIG_INVALID',
      message: expect.stringContaining('belongs to') as unknown,
    });
    await writeFile(deviceFile, '{"v": 1');
    await expect(loadDevice(dir)).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
    await writeFile(deviceFile, '{"v": 2}');
    await expect(loadDevice(dir)).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
  });

  it('reads a relay from device.json and refuses a malformed one', async () => {
    const { deviceId, config } = await initDevice({ data: dir, facility: 'clinic-1', name: 'a' });
    const { deviceFile } = dataFolder(dir);
    const relay = { url: 'ws://10.0.0.5:7400', id: deviceId };
    await writeFile(deviceFile, JSON.stringify({ ...config, relay }));
    expect((await loadDevice(dir)).config.relay).toEqual(relay);
    for (const bad of [{ url: 'http://x', id: deviceId }, { url: 'ws://x', id: 'nope' }, 'ws://x']) {
      await writeFile(deviceFile, JSON.stringify({ ...config, relay: bad }));
      await expect(loadDevice(dir)).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
    }
  });
});

describe('fileOwnSeqMark', () => {
  it('keeps the own-sequence mark in own-seq.json (0600), apart from the database, and refuses a malformed one', async () => {
    const layout = dataFolder(dir);
    const mark = fileOwnSeqMark(layout.ownSeqMark);
    expect(await mark.read()).toBeUndefined();
    await mark.write({ reserved: 2000, acked: 1234, clean: false });
    expect(layout.ownSeqMark).toBe(join(dir, 'own-seq.json'));
    expect((await stat(layout.ownSeqMark)).mode & 0o777).toBe(0o600);
    expect(await fileOwnSeqMark(layout.ownSeqMark).read()).toEqual({
      reserved: 2000,
      acked: 1234,
      clean: false,
    });
    for (const bad of [
      '{"v":1,"reserved":-1,"acked":0,"clean":true}',
      '{"reserved":1,"acked":1,"clean":true}',
      '[]',
    ]) {
      await writeFile(layout.ownSeqMark, bad);
      await expect(mark.read()).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
    }
  });
});
