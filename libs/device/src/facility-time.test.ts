// Issue #13: business dates follow the facility's time zone. The zone is recorded in the data
// folder (`accord device init --time-zone`), and the HTTP API's "today" of the queue and the
// appointments is the calendar date there, not the UTC one.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeFacility, openMemoryLog } from '@accord/log/testing';
import type { FacilityId } from '@accord/protocol';
import { dataFolder, initDevice, loadDevice } from './data-folder.js';
import { HttpApi } from './http-api.js';

const FACILITY = 'clinic-tz' as FacilityId;
/** 23:30 UTC on 6 December: 02:30 on 7 December in Nairobi (UTC+3). */
const LATE_UTC = Date.UTC(2026, 11, 6, 23, 30);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-tz-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('the facility time zone in the data folder', () => {
  it('is recorded by init, read back by loadDevice, and absent by default', async () => {
    const data = join(dir, 'nairobi');
    const { config } = await initDevice({
      data,
      facility: 'clinic-1',
      name: 'Front desk',
      timeZone: 'Africa/Nairobi',
    });
    expect(config.timeZone).toBe('Africa/Nairobi');
    expect(JSON.parse(await readFile(dataFolder(data).deviceFile, 'utf8'))).toMatchObject({
      timeZone: 'Africa/Nairobi',
    });
    expect((await loadDevice(data)).config.timeZone).toBe('Africa/Nairobi');
    const plain = join(dir, 'plain');
    await initDevice({ data: plain, facility: 'clinic-1', name: 'B' });
    expect((await loadDevice(plain)).config).not.toHaveProperty('timeZone');
  });

  it('refuses an unknown zone at init (DEVICE_BAD_REQUEST) and in device.json (DEVICE_CONFIG_INVALID)', async () => {
    await expect(
      initDevice({ data: join(dir, 'x'), facility: 'clinic-1', name: 'X', timeZone: 'Mars/Olympus_Mons' }),
    ).rejects.toMatchObject({ code: 'DEVICE_BAD_REQUEST' });
    const data = join(dir, 'y');
    await initDevice({ data, facility: 'clinic-1', name: 'Y' });
    const file = dataFolder(data).deviceFile;
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...config, timeZone: 'Nowhere/Land' }));
    await expect(loadDevice(data)).rejects.toMatchObject({ code: 'DEVICE_CONFIG_INVALID' });
  });
});

describe("GET /api/queue and /api/appointments: today in the facility's zone", () => {
  async function api(timeZone: string | undefined) {
    const facility = await makeFacility(FACILITY, 1, 5);
    const log = await openMemoryLog(facility, 0, { clock: () => LATE_UTC });
    await log.append({
      type: 'PatientRegistered',
      data: {
        patientId: 'p1',
        nationalId: 'N-p1',
        givenName: 'Amina',
        familyName: 'Banda',
        birthDate: '2024-01-10',
        sex: 'female',
      },
    });
    await log.append({ type: 'PatientCheckedIn', data: { patientId: 'p1', encounterId: 'e1' } });
    await log.append({ type: 'EncounterStarted', data: { encounterId: 'e1' } });
    await log.append({ type: 'EncounterCompleted', data: { encounterId: 'e1' } });
    const http = await HttpApi.listen({
      log,
      identity: { device: log.deviceId, name: 'T', facility: FACILITY },
      network: { online: true, setOnline: () => undefined, peers: () => [] },
      clock: () => LATE_UTC,
      ...(timeZone === undefined ? {} : { timeZone }),
    });
    const get = async (path: string) =>
      (await (await fetch(`http://127.0.0.1:${http.port}${path}`)).json()) as Record<string, unknown>;
    return {
      get,
      close: async () => {
        await http.close();
        await log.close();
      },
    };
  }

  it('is the next calendar day at 23:30 UTC in Africa/Nairobi, with the encounter done on it', async () => {
    const a = await api('Africa/Nairobi');
    try {
      const queue = await a.get('/api/queue');
      expect(queue['today']).toBe('2026-12-07');
      expect(queue['done']).toMatchObject([{ encounterId: 'e1', day: '2026-12-07' }]);
      expect((await a.get('/api/appointments'))['today']).toBe('2026-12-07');
      // An explicit date is taken as a date of the facility's calendar.
      expect((await a.get('/api/queue?date=2026-12-06'))['done']).toEqual([]);
    } finally {
      await a.close();
    }
  });

  it('stays on the UTC day without a zone', async () => {
    const a = await api(undefined);
    try {
      const queue = await a.get('/api/queue');
      expect(queue['today']).toBe('2026-12-06');
      expect(queue['done']).toMatchObject([{ encounterId: 'e1', day: '2026-12-06' }]);
    } finally {
      await a.close();
    }
  });
});
