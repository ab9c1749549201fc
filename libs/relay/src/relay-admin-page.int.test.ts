import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLog, type LogRoster } from '@accord/log';
import {
  ErrorCode,
  generateDeviceKey,
  verdictAbout,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { tempDir, type TempDir } from '@accord/testkit';
import { setAdminPassword } from './admin-password.js';
import { createRelayLogger } from './logger.js';
import { Relay } from './relay.js';
import { relayFolder } from './relay-folder.js';
import { bcg, enrollOverHttp, eventually, registration, relayClient } from './testing.js';

const F = 'clinic-admin-page' as FacilityId;
const IDLE = 'clinic-idle' as FacilityId;
const PASSWORD = 'admin-page-password';
const HOSTILE_NAME = '<script>alert(1)</script> Front desk';

const basic = (user: string, password: string): Record<string, string> => ({
  authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'),
});

/** The table row of `device` in the devices table (the first row naming it). */
const deviceRow = (page: string, device: DeviceId): string =>
  /^<tr [^\n]*?<\/tr>/.exec(page.slice(page.indexOf(`<tr data-device="${device}">`)))?.[0] ?? '';

describe('GET /admin/ on a real relay', () => {
  let dir: TempDir;
  let relay: Relay;
  let data: string;
  let url: string;
  let front: DeviceKeyPair;
  let old: DeviceKeyPair;
  let log: DeviceLog;
  const members = new Map<DeviceId, { facility: FacilityId; revoked: boolean }>();
  const roster: LogRoster = { lookup: (device) => members.get(device) };

  beforeAll(async () => {
    dir = await tempDir('accord-relay-admin-page-');
    data = join(dir.path, 'relay');
    relay = await Relay.start({
      data,
      port: 0,
      logger: createRelayLogger({ level: 'silent' }),
      membershipPollMs: 50,
    });
    url = `http://127.0.0.1:${relay.port}/admin/`;
    await setAdminPassword(relayFolder(data), PASSWORD);
    members.set(relay.id, { facility: F, revoked: false });
    front = await generateDeviceKey();
    old = await generateDeviceKey();
    await enrollOverHttp({ data, port: relay.port, facility: F, key: front, name: HOSTILE_NAME });
    await enrollOverHttp({ data, port: relay.port, facility: F, key: old, name: 'Old tablet' });
    members.set(front.deviceId, { facility: F, revoked: false });
    // A facility whose node the relay unloaded: the page shows it without loading it.
    await enrollOverHttp({
      data,
      port: relay.port,
      facility: IDLE,
      key: await generateDeviceKey(),
      name: 'Idle',
    });
    await relay.unload(IDLE);
    log = await DeviceLog.open({
      facility: F,
      key: front,
      eventStore: new MemoryEventStore(),
      storage: new MemoryStorageAdapter(),
      roster,
      relay: relay.id,
      network: [],
    });
    log.addNetworkAdapter(
      relayClient({ port: relay.port, relay: relay.id, key: front, facility: F, roster }),
    );
  });

  afterAll(async () => {
    await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('refuses without credentials (401), with wrong ones (401) and from a foreign page (403)', async () => {
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="accord-relay"/);
    expect(await none.json()).toMatchObject({ code: ErrorCode.RELAY_UNAUTHORIZED });
    for (const auth of [basic('admin', 'wrong-password'), basic('root', PASSWORD)]) {
      const wrong = await fetch(url, { headers: auth });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).not.toContain(F);
    }
    for (const headers of [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const foreign = await fetch(url, { headers: { ...basic('admin', PASSWORD), ...headers } });
      expect(foreign.status, JSON.stringify(headers)).toBe(403);
      expect(await foreign.json()).toMatchObject({ code: ErrorCode.RELAY_FOREIGN_ORIGIN });
    }
  });

  it('lists devices with last contact and revocation, and an open 422 under its code and device', async () => {
    const revoked = await fetch(`http://127.0.0.1:${relay.port}/admin/devices/${old.deviceId}/revoke`, {
      method: 'POST',
      headers: { ...basic('admin', PASSWORD), 'content-type': 'application/json' },
    });
    expect(revoked.status).toBe(200);
    // A vaccination from a lot that never received stock: the relay rejects it (422).
    await log.append(registration('P1'));
    const { event: shot } = await log.append(bcg('P1', 'LOT-NONE'));
    const verdict = await eventually(() => {
      const v = log.get(shot.id)?.verdict;
      return v === undefined ? undefined : verdictAbout(v, shot.id);
    }, 'the verdict of the vaccination');
    expect(verdict).toMatchObject({ outcome: 'deadletter', code: 422 });
    const rule = (verdict as { rule: string }).rule;

    const res = await fetch(url, { headers: basic('admin', PASSWORD) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; frame-ancestors 'none'/);
    const page = await res.text();
    expect(page).not.toContain('<script');

    const frontRow = deviceRow(page, front.deviceId);
    expect(frontRow).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Front desk');
    expect(frontRow).toContain('connected now');
    expect(frontRow).not.toContain('revoked');
    const oldRow = deviceRow(page, old.deviceId);
    expect(oldRow).toContain('Old tablet');
    expect(oldRow).toContain('<span class="revoked">revoked</span>');
    expect(oldRow).toContain('none since the relay started');

    expect(page).toContain('1 open deadletter<');
    expect(page).toMatch(
      new RegExp(
        `<tr data-code="422"><td data-label="Code">422 [^<]*</td><td data-label="Rules">${rule}</td><td data-label="Open">1</td></tr>`,
      ),
    );
    expect(page).toContain(
      `<tr data-device="${front.deviceId}"><td data-label="Device">&lt;script&gt;alert(1)&lt;/script&gt; Front desk <code>${front.deviceId}</code></td><td data-label="Open">1</td></tr>`,
    );
    // The unloaded facility is listed, not loaded by the page.
    const idle = page.slice(page.indexOf(`<h2 id="f-${IDLE}">`));
    expect(idle).toContain('Not loaded');
    expect(relay.health()['facilitiesLoaded']).toBe(1);
  });

  it('shows the last contact of a device that went away', async () => {
    const node = await relay.facility(F);
    await log.close();
    await eventually(() => node.connected === 0, 'the session to end');
    const page = await (await fetch(url, { headers: basic('admin', PASSWORD) })).text();
    const frontRow = deviceRow(page, front.deviceId);
    expect(frontRow).not.toContain('connected now');
    expect(frontRow).toMatch(
      /<td data-label="Last contact"><time datetime="[^"]+">[^<]+ UTC<\/time> \(just now\)<\/td>/,
    );
    // Closed once: afterAll closes it again, which must be harmless.
  });
});
