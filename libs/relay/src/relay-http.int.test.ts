import { request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AccordError,
  ErrorCode,
  generateDeviceKey,
  makeEnrollRequest,
  signEvent,
  type DeviceId,
  type DeviceKeyPair,
  type EnrollRequest,
  type EnrollResponse,
  type FacilityId,
} from '@accord/protocol';
import { sampleEnvelope } from '@accord/protocol/testing';
import { tempDir, type TempDir } from '@accord/testkit';
import { setAdminPassword, verifyAdminPassword } from './admin-password.js';
import { createRelayLogger } from './logger.js';
import { enrollWithToken, readMembers, revokeMember, rosterData } from './membership.js';
import { RelayMetrics } from './metrics.js';
import { createRelayHttp, type RelayHttpDeps, type RelayHttpFront } from './relay-http.js';
import { listFacilities, openRelayFolder, type RelayFolderLayout } from './relay-folder.js';
import { createEnrollmentToken } from './tokens.js';

const T0 = Date.UTC(2026, 0, 1);
const PASSWORD = 'admin-password-1';
const A = 'clinic-a' as FacilityId;

interface Fixture {
  readonly url: string;
  readonly layout: RelayFolderLayout;
  readonly metrics: RelayMetrics;
  readonly logLines: () => string[];
  setNow(ms: number): void;
}

let tmp: TempDir;
let servers: Server[] = [];
beforeEach(async () => {
  tmp = await tempDir('accord-relay-http-');
});
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  servers = [];
  await tmp.cleanup();
});

async function listen(front: RelayHttpFront): Promise<string> {
  await front.ready();
  const server = front.server;
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A handler over a real data folder, a real admin password and real token/roster files. */
async function fixture(overrides: Partial<RelayHttpDeps> = {}): Promise<Fixture> {
  const { layout, key } = await openRelayFolder(tmp.path);
  let now = T0;
  const chunks: string[] = [];
  const logger = createRelayLogger({ level: 'debug', destination: { write: (s: string) => chunks.push(s) } });
  const metrics = new RelayMetrics({ defaultMetrics: false });
  const enroll = async (r: EnrollRequest): Promise<EnrollResponse> => {
    const members = await enrollWithToken(layout, r, now);
    const roster = await signEvent(
      sampleEnvelope({
        facility: members.facility,
        device: key.deviceId,
        type: 'RosterUpdated',
        subject: { kind: 'roster', id: members.facility },
        data: { ...rosterData(members), devices: rosterData(members).devices.map((d) => ({ ...d })) },
      }),
      key,
    );
    return { facility: members.facility, relay: key.deviceId, roster };
  };
  const url = await listen(
    createRelayHttp({
      metrics,
      logger,
      health: () => ({ relay: key.deviceId }),
      enroll,
      verifyAdmin: (password) => verifyAdminPassword(layout, password),
      admin: {
        facilities: async () =>
          Promise.all(
            (await listFacilities(layout)).map(async (facility) => ({
              facility,
              version: (await readMembers(layout, facility))?.version,
            })),
          ),
        createToken: (facility, ttlMs) =>
          createEnrollmentToken(layout, facility, { now, ...(ttlMs === undefined ? {} : { ttlMs }) }),
        revoke: async (device) => {
          const r = await revokeMember(layout, device, now);
          return { device, facility: r.facility, version: r.members.version };
        },
      },
      ...overrides,
    }),
  );
  return {
    url,
    layout,
    metrics,
    logLines: () => chunks.join('').split('\n'),
    setNow: (ms) => {
      now = ms;
    },
  };
}

const basic = (user: string, password: string): Record<string, string> => ({
  authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'),
});

async function call(
  url: string,
  init: { method?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined && init.raw === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...init.headers },
    ...(init.raw !== undefined
      ? { body: init.raw }
      : init.body !== undefined
        ? { body: JSON.stringify(init.body) }
        : {}),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

async function enrollBody(token: string, key?: DeviceKeyPair, name = 'Tablet'): Promise<EnrollRequest> {
  return makeEnrollRequest(key ?? (await generateDeviceKey()), token, name);
}

describe('public routes', () => {
  it('answers /healthz, /metrics, 404 and 405 as JSON', async () => {
    const f = await fixture();
    const health = await call(`${f.url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'ok', relay: expect.stringMatching(/^d/) as unknown });
    expect(health.headers.get('cache-control')).toBe('no-store');

    const metrics = await fetch(`${f.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe(f.metrics.contentType);
    expect(await metrics.text()).toContain('# HELP accord_relay_enrollments_total');

    expect(await call(`${f.url}/nope`)).toMatchObject({
      status: 404,
      body: { code: ErrorCode.RELAY_NOT_FOUND },
    });
    const wrong = await call(`${f.url}/enroll`);
    expect(wrong).toMatchObject({ status: 405, body: { code: ErrorCode.RELAY_METHOD_NOT_ALLOWED } });
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await call(`${f.url}/%E0%A4%A`)).toMatchObject({
      status: 400,
      body: { code: ErrorCode.RELAY_BAD_REQUEST },
    });
  });
});

describe("Fastify's own failures", () => {
  it("answer in the relay's {code, message} with its codes, never with Fastify's error JSON", async () => {
    const f = await fixture();
    const cases: [what: string, path: string, init: RequestInit, status: number, code: string][] = [
      [
        'a body over the cap',
        '/enroll',
        { method: 'POST', body: 'x'.repeat(20_000) },
        413,
        ErrorCode.RELAY_BODY_TOO_LARGE,
      ],
      [
        'a body that is not JSON',
        '/enroll',
        { method: 'POST', body: '{"token":' },
        400,
        ErrorCode.RELAY_BAD_REQUEST,
      ],
      ['a path that does not decode', '/admin/%E0%A4%A', {}, 400, ErrorCode.RELAY_BAD_REQUEST],
    ];
    for (const [what, path, init, status, code] of cases) {
      const res = await fetch(f.url + path, init);
      const text = await res.text();
      expect([what, res.status], text).toEqual([what, status]);
      const json = JSON.parse(text) as Record<string, unknown>;
      expect(json['code'], what).toBe(code);
      expect(
        Object.keys(json).filter((k) => !['code', 'message', 'details'].includes(k)),
        what,
      ).toEqual([]);
      expect(text, what).not.toContain('FST_');
    }
    // Bytes that are not HTTP never reach a route: node's parser refuses them, and so do we.
    const reply = await new Promise<string>((resolve, reject) => {
      const port = Number(new URL(f.url).port);
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain(`"code":"${ErrorCode.RELAY_BAD_REQUEST}"`);
    expect((await call(`${f.url}/healthz`)).status).toBe(200);
  });
});

describe('POST /enroll', () => {
  it('enrolls once per token and explains every refusal', async () => {
    const f = await fixture();
    const { token } = await createEnrollmentToken(f.layout, A, { now: T0 });
    const key = await generateDeviceKey();
    const ok = await call(`${f.url}/enroll`, { body: await enrollBody(token, key, 'Front desk') });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ facility: A, roster: { type: 'RosterUpdated', facility: A } });
    expect((await readMembers(f.layout, A))?.devices).toEqual([
      expect.objectContaining({ id: key.deviceId }),
    ]);

    // The same token again, from another device.
    expect(await call(`${f.url}/enroll`, { body: await enrollBody(token) })).toMatchObject({
      status: 403,
      body: { code: ErrorCode.RELAY_TOKEN_USED },
    });
    // The same device with a fresh token.
    const second = await createEnrollmentToken(f.layout, A, { now: T0 });
    expect(await call(`${f.url}/enroll`, { body: await enrollBody(second.token, key) })).toMatchObject({
      status: 409,
      body: { code: ErrorCode.RELAY_ALREADY_ENROLLED },
    });
    // A proof made by another key than the one enrolled.
    const forged = { ...(await enrollBody(second.token)), device: (await generateDeviceKey()).deviceId };
    expect(await call(`${f.url}/enroll`, { body: forged })).toMatchObject({
      status: 403,
      body: { code: ErrorCode.RELAY_UNAUTHORIZED },
    });
    // An unknown token.
    expect(await call(`${f.url}/enroll`, { body: await enrollBody('acc1.' + 'Q'.repeat(43)) })).toMatchObject(
      {
        status: 403,
        body: { code: ErrorCode.RELAY_TOKEN_INVALID },
      },
    );
    // An expired one.
    const short = await createEnrollmentToken(f.layout, A, { now: T0, ttlMs: 1000 });
    f.setNow(T0 + 1000);
    expect(await call(`${f.url}/enroll`, { body: await enrollBody(short.token) })).toMatchObject({
      status: 403,
      body: { code: ErrorCode.RELAY_TOKEN_EXPIRED },
    });

    const text = await f.metrics.text();
    expect(text).toContain('accord_relay_enrollments_total{result="enrolled"} 1');
    expect(text).toContain('accord_relay_enrollments_total{result="RELAY_TOKEN_USED"} 1');
    expect(text).toContain('accord_relay_enrollments_total{result="RELAY_UNAUTHORIZED"} 1');
    // Secrets never reach the log.
    const log = f.logLines().join('\n');
    expect(log).toContain('device enrolled');
    for (const t of [token, second.token, short.token]) expect(log).not.toContain(t.slice(5));
  });

  it('answers 400 to malformed bodies and 413 to oversized ones', async () => {
    const f = await fixture();
    for (const raw of ['', 'not json', '[]', '{"token":"acc1.x"}']) {
      expect(await call(`${f.url}/enroll`, { raw, method: 'POST' }), raw).toMatchObject({
        status: 400,
        body: { code: ErrorCode.RELAY_BAD_REQUEST },
      });
    }
    const huge = JSON.stringify({ token: 'x'.repeat(20_000) });
    expect(await call(`${f.url}/enroll`, { raw: huge })).toMatchObject({
      status: 413,
      body: { code: ErrorCode.RELAY_BODY_TOO_LARGE },
    });
    // Without a Content-Length (chunked), the cap still holds.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${f.url}/enroll`, { method: 'POST' }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write('x'.repeat(5_000));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body)).toMatchObject({ code: ErrorCode.RELAY_BODY_TOO_LARGE });
    // And the server still answers.
    expect((await call(`${f.url}/healthz`)).status).toBe(200);
  });
});

describe('admin routes', () => {
  it('require HTTP Basic auth as admin, then list, create tokens and revoke', async () => {
    await setAdminPassword((await openRelayFolder(tmp.path)).layout, PASSWORD);
    const f = await fixture();
    const none = await call(`${f.url}/admin/facilities`);
    expect(none).toMatchObject({ status: 401, body: { code: ErrorCode.RELAY_UNAUTHORIZED } });
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="accord-relay"/);
    expect(
      await call(`${f.url}/admin/facilities`, { headers: basic('admin', 'wrong-password') }),
    ).toMatchObject({
      status: 401,
      body: { code: ErrorCode.RELAY_UNAUTHORIZED },
    });
    expect(await call(`${f.url}/admin/facilities`, { headers: basic('root', PASSWORD) })).toMatchObject({
      status: 401,
    });
    const auth = basic('admin', PASSWORD);
    expect(await call(`${f.url}/admin/facilities`, { headers: auth })).toMatchObject({
      status: 200,
      body: { facilities: [] },
    });

    const created = await call(`${f.url}/admin/facilities/${A}/tokens`, {
      method: 'POST',
      headers: auth,
      body: { ttlMs: 60_000 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ facility: A, expires: new Date(T0 + 60_000).toISOString() });
    const key = await generateDeviceKey();
    const enrolled = await call(`${f.url}/enroll`, {
      body: await enrollBody(created.body['token'] as string, key),
    });
    expect(enrolled.status).toBe(201);
    expect(await call(`${f.url}/admin/facilities`, { headers: auth })).toMatchObject({
      body: { facilities: [{ facility: A, version: 1 }] },
    });

    const revoked = await call(`${f.url}/admin/devices/${key.deviceId}/revoke`, {
      method: 'POST',
      headers: auth,
    });
    expect(revoked).toMatchObject({ status: 200, body: { device: key.deviceId, facility: A, version: 2 } });
    expect((await readMembers(f.layout, A))?.devices[0]?.revoked).toBe(true);

    const other: DeviceId = (await generateDeviceKey()).deviceId;
    expect(
      await call(`${f.url}/admin/devices/${other}/revoke`, { method: 'POST', headers: auth }),
    ).toMatchObject({
      status: 404,
      body: { code: ErrorCode.RELAY_UNKNOWN_DEVICE },
    });
    expect(await call(`${f.url}/admin/devices/nope/revoke`, { method: 'POST', headers: auth })).toMatchObject(
      {
        status: 400,
        body: { code: ErrorCode.RELAY_BAD_REQUEST },
      },
    );
    expect(
      await call(`${f.url}/admin/facilities/bad%20id/tokens`, { method: 'POST', headers: auth }),
    ).toMatchObject({ status: 400, body: { code: ErrorCode.RELAY_BAD_REQUEST } });
    expect(
      await call(`${f.url}/admin/facilities/${A}/tokens`, { headers: auth, body: { ttl: 5 } }),
    ).toMatchObject({ status: 400, body: { code: ErrorCode.RELAY_BAD_REQUEST } });
    expect(await call(`${f.url}/admin/elsewhere`, { headers: auth })).toMatchObject({
      status: 404,
      body: { code: ErrorCode.RELAY_NOT_FOUND },
    });
    expect(
      await call(`${f.url}/admin/facilities`, { method: 'POST', headers: auth, body: {} }),
    ).toMatchObject({
      status: 405,
    });
    expect(f.logLines().join('\n')).not.toContain(created.body['token'] as string);
    expect(f.logLines().join('\n')).not.toContain(PASSWORD);
  });
});

describe('admin routes and web pages', () => {
  it('refuse a foreign Origin or a cross-site fetch (403) and writes not declared JSON (415), changing nothing', async () => {
    const f = await fixture();
    await setAdminPassword(f.layout, PASSWORD);
    const auth = basic('admin', PASSWORD);
    const created = await call(`${f.url}/admin/facilities/${A}/tokens`, { headers: auth, body: {} });
    expect(created.status).toBe(201);
    const key = await generateDeviceKey();
    expect(
      (await call(`${f.url}/enroll`, { body: await enrollBody(created.body['token'] as string, key) }))
        .status,
    ).toBe(201);
    const revoke = `${f.url}/admin/devices/${key.deviceId}/revoke`;
    const port = new URL(f.url).port;

    // A page elsewhere, with the admin's credentials cached by the browser.
    for (const headers of [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:${Number(port) + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]) {
      const label = JSON.stringify(headers);
      expect(await call(revoke, { method: 'POST', headers: { ...auth, ...headers } }), label).toMatchObject({
        status: 403,
        body: { code: ErrorCode.RELAY_FOREIGN_ORIGIN },
      });
      expect(
        await call(`${f.url}/admin/facilities`, { headers: { ...auth, ...headers } }),
        label,
      ).toMatchObject({
        status: 403,
        body: { code: ErrorCode.RELAY_FOREIGN_ORIGIN },
      });
    }
    // A form's content types need no preflight: writes must say JSON.
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      expect(
        await call(revoke, { method: 'POST', headers: { ...auth, 'content-type': type } }),
        type,
      ).toMatchObject({ status: 415, body: { code: ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE } });
      expect(
        await call(`${f.url}/admin/facilities/${A}/tokens`, {
          headers: { ...auth, 'content-type': type },
          raw: '{}',
        }),
        type,
      ).toMatchObject({ status: 415, body: { code: ErrorCode.RELAY_UNSUPPORTED_MEDIA_TYPE } });
    }
    expect((await readMembers(f.layout, A))?.devices[0]?.revoked).toBe(false);

    // The relay's own origin (a console served by the relay itself) is not a foreign page.
    expect(
      await call(revoke, {
        method: 'POST',
        headers: { ...auth, origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' },
      }),
    ).toMatchObject({ status: 200, body: { device: key.deviceId, version: 2 } });
    expect((await readMembers(f.layout, A))?.devices[0]?.revoked).toBe(true);
  });
});

describe('rate limits and faults', () => {
  it('limits failed admin logins per address, even for the right password, until refilled', async () => {
    let now = T0;
    let checks = 0;
    const f = await fixture({
      verifyAdmin: (password) => {
        checks++;
        return Promise.resolve(password === PASSWORD);
      },
      options: {
        clock: () => now,
        adminFailureLimit: { capacity: 2, refillPerSecond: 0.1 },
        enrollLimit: { capacity: 2, refillPerSecond: 0.1 },
      },
    });
    const url = `${f.url}/admin/facilities`;
    // Successful logins do not use up the allowance.
    for (let i = 0; i < 3; i++)
      expect((await call(url, { headers: basic('admin', PASSWORD) })).status).toBe(200);
    expect((await call(url, { headers: basic('admin', 'guess-1') })).status).toBe(401);
    expect((await call(url, { headers: basic('admin', 'guess-2') })).status).toBe(401);
    const limited = await call(url, { headers: basic('admin', PASSWORD) });
    expect(limited).toMatchObject({ status: 429, body: { code: ErrorCode.RELAY_RATE_LIMITED } });
    expect(limited.headers.get('retry-after')).toBe('10');
    expect(checks).toBe(5); // the limited attempt never reached the password check
    now += 10_000;
    expect((await call(url, { headers: basic('admin', PASSWORD) })).status).toBe(200);

    // Enrollment requests are limited per address whatever their outcome.
    expect((await call(`${f.url}/enroll`, { raw: '{}' })).status).toBe(400);
    expect((await call(`${f.url}/enroll`, { raw: '{}' })).status).toBe(400);
    expect(await call(`${f.url}/enroll`, { raw: '{}' })).toMatchObject({
      status: 429,
      body: { code: ErrorCode.RELAY_RATE_LIMITED },
    });
    expect(await f.metrics.text()).toContain('accord_relay_enrollments_total{result="RELAY_RATE_LIMITED"} 1');
  });

  it('answers 500 RELAY_INTERNAL to an unexpected failure, logs it, and keeps serving', async () => {
    const f = await fixture({
      verifyAdmin: () => Promise.resolve(true),
      enroll: () => Promise.reject(new TypeError('boom in enroll')),
      admin: {
        facilities: () => Promise.reject(new TypeError('boom in facilities')),
        createToken: () => Promise.reject(new Error('unused')),
        revoke: () =>
          Promise.reject(
            new AccordError(ErrorCode.RELAY_CONFIG_INVALID, '/secret/path/members.json: broken'),
          ),
      },
    });
    const { token } = await createEnrollmentToken(f.layout, A);
    const failed = await call(`${f.url}/enroll`, { body: await enrollBody(token) });
    expect(failed).toEqual({
      status: 500,
      body: { code: ErrorCode.RELAY_INTERNAL, message: 'internal error' },
      headers: failed.headers,
    });
    expect(await call(`${f.url}/admin/facilities`, { headers: basic('admin', 'x') })).toMatchObject({
      status: 500,
      body: { code: ErrorCode.RELAY_INTERNAL },
    });
    const device = (await generateDeviceKey()).deviceId;
    const damaged = await call(`${f.url}/admin/devices/${device}/revoke`, {
      method: 'POST',
      headers: basic('admin', 'x'),
    });
    expect(damaged).toMatchObject({ status: 500, body: { code: ErrorCode.RELAY_CONFIG_INVALID } });
    expect(JSON.stringify(damaged.body)).not.toContain('/secret/path');
    expect((await call(`${f.url}/healthz`)).status).toBe(200);
    const errors = f
      .logLines()
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { level: string; err?: { message: string } })
      .filter((l) => l.level === 'error');
    expect(errors.map((e) => e.err?.message)).toEqual([
      'boom in enroll',
      'boom in facilities',
      '/secret/path/members.json: broken',
    ]);
  });

  it('answers 503 RELAY_STOPPING to enroll and admin while stopping', async () => {
    const f = await fixture({ stopping: () => true, verifyAdmin: () => Promise.resolve(true) });
    expect(await call(`${f.url}/enroll`, { raw: '{}' })).toMatchObject({
      status: 503,
      body: { code: ErrorCode.RELAY_STOPPING },
    });
    expect(await call(`${f.url}/admin/facilities`, { headers: basic('admin', 'x') })).toMatchObject({
      status: 503,
    });
    expect((await call(`${f.url}/healthz`)).status).toBe(200);
  });
});
