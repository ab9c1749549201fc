import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, generateDeviceKey, isAccordError, type FacilityId } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { listFacilities, loadRelayFolder, openRelayFolder, relayFolder } from './relay-folder.js';

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-folder-');
});
afterEach(async () => {
  await tmp.cleanup();
});

const codeOf = (e: unknown): string | undefined => (isAccordError(e) ? e.code : undefined);

describe('relayFolder', () => {
  it('lays out the folder under an absolute path', () => {
    const l = relayFolder(join(tmp.path, 'r'));
    const f = 'clinic-1' as FacilityId;
    expect(l.configFile).toBe(join(tmp.path, 'r', 'relay.json'));
    expect(l.keyFile).toBe(join(tmp.path, 'r', 'key.json'));
    expect(l.adminFile).toBe(join(tmp.path, 'r', 'admin.json'));
    expect(l.tokensDir).toBe(join(tmp.path, 'r', 'tokens'));
    expect(l.facilityDir(f)).toBe(join(tmp.path, 'r', 'facilities', 'clinic-1'));
    expect(l.facilityDb(f)).toBe(join(tmp.path, 'r', 'facilities', 'clinic-1', 'db'));
    expect(l.membersFile(f)).toBe(join(tmp.path, 'r', 'facilities', 'clinic-1', 'members.json'));
  });

  it('refuses a facility id that would escape the folder', () => {
    const l = relayFolder(tmp.path);
    expect(() => l.facilityDir('../etc' as FacilityId)).toThrow(
      expect.objectContaining({ code: ErrorCode.RELAY_BAD_REQUEST }),
    );
  });
});

describe('openRelayFolder', () => {
  it('creates the folder, a private key and relay.json on first use, then reopens the same key', async () => {
    const dir = join(tmp.path, 'relay');
    const first = await openRelayFolder(dir, { clock: () => Date.UTC(2026, 0, 2) });
    expect(first.config).toEqual({ v: 1, relay: first.key.deviceId, created: '2026-01-02T00:00:00.000Z' });
    expect((await stat(first.layout.keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(first.layout.tokensDir)).isDirectory()).toBe(true);
    expect((await stat(first.layout.facilitiesDir)).isDirectory()).toBe(true);
    const again = await openRelayFolder(dir);
    expect(again.key.deviceId).toBe(first.key.deviceId);
    expect(again.config).toEqual(first.config);
    expect((await loadRelayFolder(dir)).key.deviceId).toBe(first.key.deviceId);
  });

  it('gives every concurrent opener of a new folder the same key', async () => {
    const dir = join(tmp.path, 'race');
    const opened = await Promise.all(Array.from({ length: 6 }, () => openRelayFolder(dir)));
    const ids = new Set(opened.map((o) => o.key.deviceId));
    expect(ids.size).toBe(1);
    const stored = JSON.parse(await readFile(join(dir, 'key.json'), 'utf8')) as { deviceId: string };
    expect(stored.deviceId).toBe(opened[0]!.key.deviceId);
  });

  it('refuses a key file readable by others', async () => {
    const { layout } = await openRelayFolder(tmp.path);
    await chmod(layout.keyFile, 0o644);
    await expect(openRelayFolder(tmp.path)).rejects.toMatchObject({ code: ErrorCode.RELAY_CONFIG_INVALID });
  });

  it('refuses a relay.json naming another key', async () => {
    const { layout } = await openRelayFolder(tmp.path);
    const other = await generateDeviceKey();
    await writeFile(layout.configFile, JSON.stringify({ v: 1, relay: other.deviceId, created: 'x' }));
    await expect(openRelayFolder(tmp.path)).rejects.toMatchObject({ code: ErrorCode.RELAY_CONFIG_INVALID });
  });

  it('refuses a malformed relay.json', async () => {
    const { layout } = await openRelayFolder(tmp.path);
    await writeFile(layout.configFile, '{ nope');
    await expect(openRelayFolder(tmp.path)).rejects.toMatchObject({ code: ErrorCode.RELAY_CONFIG_INVALID });
  });

  it('loadRelayFolder refuses a folder that was never opened', async () => {
    const e: unknown = await loadRelayFolder(join(tmp.path, 'none')).catch((x: unknown) => x);
    expect(codeOf(e)).toBe(ErrorCode.RELAY_NOT_INITIALIZED);
  });
});

describe('listFacilities', () => {
  it('lists sorted facility folders that hold a members.json, nothing else', async () => {
    const { layout } = await openRelayFolder(tmp.path);
    expect(await listFacilities(layout)).toEqual([]);
    for (const f of ['b-clinic', 'a-clinic', 'no-roster']) {
      await mkdir(join(layout.facilitiesDir, f), { recursive: true });
    }
    await mkdir(join(layout.facilitiesDir, 'bad name!'), { recursive: true });
    for (const f of ['b-clinic', 'a-clinic', 'bad name!']) {
      await writeFile(join(layout.facilitiesDir, f, 'members.json'), '{}');
    }
    await writeFile(join(layout.facilitiesDir, 'stray.json'), '{}');
    expect(await listFacilities(layout)).toEqual(['a-clinic', 'b-clinic']);
  });

  it('is empty when the folder does not exist', async () => {
    expect(await listFacilities(relayFolder(join(tmp.path, 'missing')))).toEqual([]);
  });
});
