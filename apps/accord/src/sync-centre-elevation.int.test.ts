// Admin elevation and "leave server version" (issue #10) with a real relay and a real agent in this
// process: real LevelDB folders, real WebSockets and HTTP on port 0, the relay's own password file.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFacilityId,
  generateDeviceKey,
  signElevationGrant,
  SystemEventType,
  verdictAbout,
  verifyElevationGrantSignature,
  type ElevationGrant,
  type EventId,
  type JsonValue,
} from '@accord/protocol';
import { DeviceAgent, initDevice } from '@accord/device';
import { runCli } from './cli.js';
import {
  createEnrollmentToken,
  createRelayLogger,
  loadRelayFolder,
  Relay,
  relayFolder,
  RULE_ELEVATION_REQUIRED,
  setAdminPassword,
} from '@accord/relay';

const FACILITY = asFacilityId('clinic-1');
const PASSWORD = 'correct horse battery';

let dir: string;
let relay: Relay | undefined;
let agent: DeviceAgent | undefined;
let relayLog: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-elev-'));
  relayLog = [];
  relay = await Relay.start({
    data: join(dir, 'relay'),
    port: 0,
    logger: createRelayLogger({ level: 'info', destination: { write: (s: string) => relayLog.push(s) } }),
    http: { elevationFailureLimit: { capacity: 3, refillPerSecond: 3 / 600 } },
  });
  await setAdminPassword(relayFolder(join(dir, 'relay')), PASSWORD);
  const { token } = await createEnrollmentToken(relayFolder(join(dir, 'relay')), FACILITY);
  await initDevice({
    data: join(dir, 'tablet'),
    name: 'Front desk',
    relay: `ws://127.0.0.1:${relay.port}`,
    token,
  });
  agent = await DeviceAgent.start({ data: join(dir, 'tablet'), http: 0 });
});
afterEach(async () => {
  await agent?.stop();
  await relay?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${agent!.httpPort}${path}`, {
    method,
    headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Resolves once `check` holds, re-checked whenever the agent's log shows new events. */
function until<T>(check: () => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const first = check();
    if (first !== undefined) return resolve(first);
    const stop = agent!.log.onEvents(() => {
      const v = check();
      if (v === undefined) return;
      stop();
      resolve(v);
    });
  });
}

/** The latest verdict the agent holds about `id`, once there is one. */
const verdictOf = (id: EventId) =>
  until(() => {
    const info = agent!.log.get(id);
    return info?.verdict === undefined ? undefined : verdictAbout(info.verdict, id);
  });

/** A vaccination from a lot with no stock: a 422 deadletter. */
async function vaccinationDeadletter(): Promise<EventId> {
  const reg = await api('POST', '/api/events', {
    type: 'PatientRegistered',
    data: {
      patientId: 'p1',
      nationalId: 'N-1',
      givenName: 'Amina',
      familyName: 'K',
      birthDate: '2026-01-10',
      sex: 'female',
    },
  });
  expect(reg.status).toBe(201);
  const vac = await api('POST', '/api/events', {
    type: 'VaccinationAdministered',
    data: { patientId: 'p1', antigen: 'BCG', dose: 1, lot: 'M-442', date: '2026-11-20' },
  });
  expect(vac.status).toBe(201);
  const id = vac.json['id'] as EventId;
  expect(await verdictOf(id)).toMatchObject({ outcome: 'deadletter', code: 422 });
  return id;
}

const auditActions = async (): Promise<
  { action: string; outcome: string; detail?: Record<string, unknown> }[]
> => (await api('GET', '/api/audit')).json as unknown as { action: string; outcome: string }[];

describe('POST /api/elevate', () => {
  it('answers a relay-signed grant for this device and action with the right password', async () => {
    const before = Date.now();
    const r = await api('POST', '/api/elevate', { adminPassword: PASSWORD, action: 'discard' });
    expect(r.status).toBe(200);
    const grant = r.json['grant'] as ElevationGrant;
    expect(grant).toMatchObject({
      v: 1,
      relay: relay!.id,
      facility: FACILITY,
      device: agent!.deviceId,
      action: 'discard',
    });
    expect(grant.expires - grant.issued).toBe(10 * 60_000);
    expect(grant.issued).toBeGreaterThanOrEqual(before);
    expect(await verifyElevationGrantSignature(grant)).toBe(true);
    expect(await verifyElevationGrantSignature({ ...grant, action: 'resubmit' })).toBe(false);
    expect(relayLog.some((l) => l.includes('elevation granted') && l.includes(agent!.deviceId))).toBe(true);
    // The password is in no log line of the relay.
    expect(relayLog.join('')).not.toContain(PASSWORD);
    expect((await auditActions())[0]).toMatchObject({
      action: 'elevate',
      outcome: 'done',
      detail: { action: 'discard' },
    });
  });

  it('refuses a wrong password with 403, audited on the device and on the relay, then rate-limits the device', async () => {
    const wrong = await api('POST', '/api/elevate', { adminPassword: 'not the password', action: 'discard' });
    expect(wrong.status).toBe(403);
    expect(wrong.json['code']).toBe('DEVICE_ELEVATION_REFUSED');
    expect((await auditActions())[0]).toMatchObject({
      action: 'elevate',
      outcome: 'refused',
      detail: { status: 403, code: 'DEVICE_ELEVATION_REFUSED' },
    });
    const refusedLines = relayLog.filter((l) => l.includes('elevation refused'));
    expect(refusedLines).toHaveLength(1);
    expect(JSON.parse(refusedLines[0]!)).toMatchObject({
      device: agent!.deviceId,
      facility: FACILITY,
      outcome: 'wrong-password',
    });
    // Capacity 3 in this relay: two more failures use it up, then even the right password waits.
    for (let i = 0; i < 2; i++) {
      expect(
        (await api('POST', '/api/elevate', { adminPassword: `wrong ${i}`, action: 'resubmit' })).status,
      ).toBe(403);
    }
    const limited = await api('POST', '/api/elevate', { adminPassword: PASSWORD, action: 'resubmit' });
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ code: 'DEVICE_ELEVATION_RATE_LIMITED' });
    expect((limited.json['details'] as { retryAfter: number }).retryAfter).toBeGreaterThan(0);
    expect(relayLog.some((l) => l.includes('rate-limited'))).toBe(true);
  });

  it('refuses malformed bodies, foreign origins and, with the relay gone, answers that the action needs it', async () => {
    for (const body of [
      {},
      { adminPassword: PASSWORD },
      { adminPassword: PASSWORD, action: 'delete' },
      { adminPassword: 7, action: 'discard' },
      [1],
    ]) {
      const r = await api('POST', '/api/elevate', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json['code']).toBe('DEVICE_BAD_REQUEST');
    }
    const foreign = await api(
      'POST',
      '/api/elevate',
      { adminPassword: PASSWORD, action: 'discard' },
      { origin: 'http://evil.example' },
    );
    expect(foreign.status).toBe(403);
    expect(foreign.json['code']).toBe('DEVICE_FOREIGN_ORIGIN');
    expect(relayLog.some((l) => l.includes('elevation'))).toBe(false);
    await relay!.stop();
    relay = undefined;
    const offline = await api('POST', '/api/elevate', { adminPassword: PASSWORD, action: 'discard' });
    expect(offline.status).toBe(503);
    expect(offline.json['code']).toBe('DEVICE_RELAY_UNREACHABLE');
  });

  it('the relay refuses unsigned, forged and foreign-page device requests', async () => {
    const url = `http://127.0.0.1:${relay!.port}/device/elevate`;
    const body = JSON.stringify({ adminPassword: PASSWORD, action: 'discard' });
    const unsigned = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({
      code: 'RELAY_DEVICE_UNAUTHENTICATED',
      details: { reason: 'unsigned' },
    });
    const stranger = await generateDeviceKey();
    const { signDeviceRequest, canonicalEncode } = await import('@accord/protocol');
    const bytes = canonicalEncode({ adminPassword: PASSWORD, action: 'discard' });
    const headers = await signDeviceRequest(stranger, 'POST', '/device/elevate', Date.now(), bytes);
    const unknown = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body,
    });
    expect(unknown.status).toBe(403);
    expect(await unknown.json()).toMatchObject({
      code: 'RELAY_DEVICE_UNAUTHENTICATED',
      details: { reason: 'unknown-device' },
    });
    // The device's own signature over another body does not pass.
    const forged = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'x-accord-device': agent!.deviceId, 'content-type': 'application/json' },
      body,
    });
    expect(forged.status).toBe(401);
    const page = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json', origin: 'http://evil.example' },
      body,
    });
    expect(page.status).toBe(403);
    expect(await page.json()).toMatchObject({ code: 'RELAY_FOREIGN_ORIGIN' });
  });
});

describe('leave server version (discard) under the facility policy', () => {
  it('a discard of a vaccination deadletter without a grant gets a 403 deadletter; with the password it is accepted', async () => {
    const target = await vaccinationDeadletter();
    const bare = await api('POST', `/api/events/${target}/discard`, { reason: 'entered twice' });
    expect(bare.status).toBe(201);
    const bareVerdict = await verdictOf(bare.json['id'] as EventId);
    expect(bareVerdict).toMatchObject({
      outcome: 'deadletter',
      code: 403,
      rule: RULE_ELEVATION_REQUIRED,
      details: { target, type: 'VaccinationAdministered', problem: 'missing' },
    });
    expect(agent!.log.get(target)?.status).toBe('deadletter');

    const elevated = await api('POST', `/api/events/${target}/discard`, {
      reason: 'entered twice',
      adminPassword: PASSWORD,
    });
    expect(elevated.status).toBe(201);
    const event = elevated.json['event'] as { data: { grant?: ElevationGrant } };
    expect(event.data.grant).toMatchObject({ device: agent!.deviceId, action: 'discard' });
    expect(await verdictOf(elevated.json['id'] as EventId)).toMatchObject({ outcome: 'accepted' });
    await until(() => (agent!.log.get(target)?.status === 'resolved' ? true : undefined));
    // The original stays in the log, resolved, and the audit names the discard and the elevation.
    expect(agent!.log.get(target)?.event.type).toBe('VaccinationAdministered');
    const audit = await auditActions();
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['discard', 'elevate']));
  });

  it('an expired or forged grant is refused: by the device when handed to it, by the relay when it gets through', async () => {
    const target = await vaccinationDeadletter();
    const { key } = await loadRelayFolder(join(dir, 'relay'));
    const now = Date.now();
    const expired = await signElevationGrant(key, {
      facility: FACILITY,
      device: agent!.deviceId,
      action: 'discard',
      issued: now - 20 * 60_000,
      expires: now - 10 * 60_000,
    });
    const handed = await api('POST', `/api/events/${target}/discard`, { reason: 'x', grant: expired });
    expect(handed.status).toBe(403);
    expect(handed.json).toMatchObject({ code: 'DEVICE_GRANT_INVALID', details: { problem: 'expired' } });
    const stranger = await generateDeviceKey();
    const forged = {
      ...(await signElevationGrant(stranger, {
        facility: FACILITY,
        device: agent!.deviceId,
        action: 'discard',
        issued: now,
        expires: now + 60_000,
      })),
      relay: relay!.id,
    };
    const handedForged = await api('POST', `/api/events/${target}/discard`, { reason: 'x', grant: forged });
    expect(handedForged.json).toMatchObject({
      code: 'DEVICE_GRANT_INVALID',
      details: { problem: 'bad-signature' },
    });
    // A modified device skips its own check: the relay judges.
    for (const [grant, problem] of [
      [expired, 'expired'],
      [forged, 'bad-signature'],
    ] as const) {
      const discard = await agent!.log.appendSystem({
        type: SystemEventType.DeadletterDiscarded,
        subject: { kind: 'event', id: target },
        data: { target, reason: 'x', grant: grant as unknown as JsonValue },
        deps: [target],
      });
      expect(await verdictOf(discard.id)).toMatchObject({
        outcome: 'deadletter',
        code: 403,
        rule: RULE_ELEVATION_REQUIRED,
        details: { problem },
      });
    }
    expect(agent!.log.get(target)?.status).toBe('deadletter');
  });

  it('a discard of a stock deadletter (not guarded by the default policy) needs no grant', async () => {
    const r = await api('POST', '/api/events', {
      type: 'StockAdjusted',
      data: { lot: 'L-1', delta: -5, reason: 'count' },
    });
    expect(r.status).toBe(201);
    const id = r.json['id'] as EventId;
    const v = await verdictOf(id);
    expect(v).toMatchObject({ outcome: 'deadletter' });
    const discard = await api('POST', `/api/events/${id}/discard`, { reason: 'miscounted' });
    expect(await verdictOf(discard.json['id'] as EventId)).toMatchObject({ outcome: 'accepted' });
  });
});

describe('integrity check and re-submit', () => {
  /** Records a registration and waits for its acceptance. */
  async function register(n: number): Promise<EventId> {
    const r = await api('POST', '/api/events', {
      type: 'PatientRegistered',
      data: {
        patientId: `p${n}`,
        nationalId: `N-${n}`,
        givenName: 'Ama',
        familyName: 'Mensah',
        birthDate: '2026-01-10',
        sex: 'female',
      },
    });
    expect(r.status).toBe(201);
    const id = r.json['id'] as EventId;
    expect(await verdictOf(id)).toMatchObject({ outcome: 'accepted' });
    return id;
  }

  interface Day {
    day: string;
    device: number;
    relay: number;
    match: boolean;
  }

  it('counts both sides per day, and refuses bad ranges, foreign pages, wrong passwords and grants for another action', async () => {
    await register(1);
    const facility = await relay!.facility(FACILITY);
    // The relay holds every event the device holds once its own verdicts reached the device.
    const r = await api('GET', '/api/integrity');
    expect(r.status).toBe(200);
    const days = r.json['days'] as Day[];
    expect(r.json['zone']).toBe('UTC');
    expect(days.length).toBeGreaterThan(0);
    const total = days.reduce((n, d) => n + d.device, 0);
    expect(total).toBe([...agent!.log.visibleEvents()].length);
    expect(days.reduce((n, d) => n + d.relay, 0)).toBe([...facility.log.visibleEvents()].length);
    for (const bad of [
      '?from=2026-13-01&to=2026-12-01',
      '?from=2026-12-02&to=2026-12-01',
      '?from=2020-01-01&to=2026-12-01',
      '?day=x',
    ]) {
      expect((await api('GET', `/api/integrity${bad}`)).status, bad).toBe(400);
    }
    expect((await api('GET', '/api/integrity', undefined, { origin: 'http://evil.example' })).status).toBe(
      403,
    );
    const noGrant = await api('POST', '/api/resubmit', { from: '2026-01-01', to: '2026-01-02' });
    expect(noGrant.status).toBe(400);
    const wrong = await api('POST', '/api/resubmit', {
      from: '2026-01-01',
      to: '2026-01-02',
      adminPassword: 'nope nope',
    });
    expect(wrong.status).toBe(403);
    expect(wrong.json['code']).toBe('DEVICE_ELEVATION_REFUSED');
    const discardGrant = (await api('POST', '/api/elevate', { adminPassword: PASSWORD, action: 'discard' }))
      .json['grant'];
    const otherAction = await api('POST', '/api/resubmit', {
      from: '2026-01-01',
      to: '2026-01-02',
      grant: discardGrant,
    });
    expect(otherAction.json).toMatchObject({
      code: 'DEVICE_GRANT_INVALID',
      details: { problem: 'other-action' },
    });
  });

  it('after the relay folder is replaced by an older copy, finds what the relay lacks per day and re-sends it', async () => {
    await register(1);
    const port = relay!.port;
    const relayDir = join(dir, 'relay');
    await relay!.stop();
    await cp(relayDir, join(dir, 'backup'), { recursive: true });
    relay = await Relay.start({ data: relayDir, port, logger: createRelayLogger({ level: 'silent' }) });
    const later = [await register(2), await register(3)];
    await agent!.stop();
    await relay.stop();
    await rm(relayDir, { recursive: true, force: true });
    await cp(join(dir, 'backup'), relayDir, { recursive: true });
    relay = await Relay.start({
      data: relayDir,
      port,
      logger: createRelayLogger({ level: 'silent' }),
      catchUpMaxMs: 1000,
    });
    // The tablet talks to the relay over HTTP only: no sync brings the events back meanwhile.
    agent = await DeviceAgent.start({ data: join(dir, 'tablet'), http: 0, dialRelay: false });
    const node = await relay.facility(FACILITY);
    expect(later.some((id) => node.log.get(id) !== undefined)).toBe(false);

    const before = await api('GET', '/api/integrity');
    const days = before.json['days'] as Day[];
    expect(days.some((d) => !d.match)).toBe(true);
    const lacking = days.reduce((n, d) => n + d.device - d.relay, 0);
    expect(lacking).toBeGreaterThanOrEqual(2);

    const resubmit = await api('POST', '/api/resubmit', {
      from: days[0]!.day,
      to: days.at(-1)!.day,
      adminPassword: PASSWORD,
    });
    expect(resubmit.status).toBe(200);
    const perDay = resubmit.json['days'] as { day: string; missing: number; resent: number }[];
    expect(perDay.reduce((n, d) => n + d.missing, 0)).toBe(lacking);
    expect(perDay.every((d) => d.resent === d.missing)).toBe(true);
    expect((await auditActions())[0]).toMatchObject({
      action: 'resubmit',
      outcome: 'done',
      detail: { missing: lacking, resent: lacking },
    });

    // Back on the relay link, the re-sent events reach the relay through the ordinary sync.
    const held = [...agent.log.visibleEvents()].map((e) => e.id);
    await agent.stop();
    agent = await DeviceAgent.start({ data: join(dir, 'tablet'), http: 0 });
    await new Promise<void>((resolve) => {
      const check = (): boolean => held.every((id) => node.log.get(id) !== undefined);
      if (check()) return resolve();
      const stop = node.log.onEvents(() => {
        if (!check()) return;
        stop();
        resolve();
      });
    });
    const after = (await api('GET', '/api/integrity')).json['days'] as Day[];
    expect(after.every((d) => d.relay >= d.device)).toBe(true);
  });
});

describe('accord sync-centre integrity and resubmit', () => {
  async function cli(
    password: string,
    ...argv: string[]
  ): Promise<{ code: number; out: string; err: string; asked: number }> {
    let out = '';
    let err = '';
    let asked = 0;
    const code = await runCli(['sync-centre', '--url', `http://127.0.0.1:${agent!.httpPort}`, ...argv], {
      out: (line) => (out += line + '\n'),
      err: (line) => (err += line + '\n'),
      stopSignal: () => new Promise(() => {}),
      readSecret: () => {
        asked++;
        return Promise.resolve(password);
      },
    });
    return { code, out, err, asked };
  }

  it('prints the per-day table and --json, reads the password from stdin, and exits 1 with the code on a wrong one', async () => {
    const today = new Date().toISOString().slice(0, 10);
    await api('POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'L-9', antigen: 'BCG', quantity: 5, expiry: '2030-01-01' },
    });
    const table = await cli('', 'integrity', '--from', today, '--to', today);
    expect(table.code).toBe(0);
    expect(table.out).toContain('Day (UTC)');
    expect(table.out).toContain(today);
    expect(table.asked).toBe(0);
    const json = await cli('', 'integrity', '--json');
    const integrity = JSON.parse(json.out) as { zone: string; days: unknown[] };
    expect(integrity.zone).toBe('UTC');
    expect(integrity.days.length).toBeGreaterThan(0);
    const ok = await cli(PASSWORD, 'resubmit', '--from', today, '--to', today, '--json');
    expect([ok.code, ok.asked]).toEqual([0, 1]);
    const resubmitted = JSON.parse(ok.out) as { from: string; to: string; days: unknown[] };
    expect([resubmitted.from, resubmitted.to, Array.isArray(resubmitted.days)]).toEqual([today, today, true]);
    const wrong = await cli('not it at all', 'resubmit', '--from', today, '--to', today);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('DEVICE_ELEVATION_REFUSED');
    expect(wrong.out + wrong.err).not.toContain('not it at all');
  });
});
