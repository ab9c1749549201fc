// Enrollment with a relay, against a real HTTP server on port 0 that plays the relay.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asFacilityId, generateDeviceKey, isAccordError, type AccordError } from '@accord/protocol';
import { dataFolder, initDevice, loadDevice } from './data-folder.js';
import { enrollUrl } from './enrollment.js';
import { readRosterFile, RosterFile } from './roster-file.js';
import { FakeRelay } from './testing.js';

const FACILITY = asFacilityId('clinic-1');

let dir: string;
let relay: FakeRelay;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-enroll-'));
  relay = await FakeRelay.start({ facility: FACILITY });
});
afterEach(async () => {
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

async function enrollError(promise: Promise<unknown>): Promise<AccordError> {
  try {
    await promise;
  } catch (e) {
    if (isAccordError(e)) return e;
    throw e;
  }
  return expect.fail('expected the init to fail');
}

/** The folder holds nothing that would stop a new init (a failed one leaves no key or roster). */
async function expectClean(data: string): Promise<void> {
  expect((await readdir(data)).filter((f) => !f.startsWith('.'))).toEqual([]);
}

describe('initDevice with a relay', () => {
  it('enrolls, writes the relay-signed roster and device.json, and the device loads with its relay', async () => {
    const data = join(dir, 'tablet');
    const { deviceId, config } = await initDevice({
      data,
      name: 'Front desk',
      relay: relay.url,
      token: relay.issueToken(),
      clock: () => Date.UTC(2026, 0, 2),
    });
    const layout = dataFolder(data);
    expect(config).toEqual({
      v: 1,
      facility: FACILITY,
      name: 'Front desk',
      device: deviceId,
      created: '2026-01-02T00:00:00.000Z',
      roster: layout.defaultRoster,
      relay: { url: relay.url, id: relay.id },
    });
    expect(relay.requests).toEqual([expect.objectContaining({ device: deviceId, name: 'Front desk' })]);
    const roster = await readRosterFile(layout.defaultRoster);
    expect(roster).toMatchObject({
      facility: FACILITY,
      relay: relay.id,
      version: 1,
      devices: [{ id: deviceId, name: 'Front desk', revoked: false }],
      event: { type: 'RosterUpdated', device: relay.id, data: { version: 1 } },
    });
    const loaded = await loadDevice(data);
    expect(loaded.config.relay).toEqual({ url: relay.url, id: relay.id });
    // The file is accepted as the relay's roster (signature re-verified), and the relay is a member.
    const file = await RosterFile.open(layout.defaultRoster, FACILITY, { pollMs: 0, relay: relay.id });
    expect(file.lookup(relay.id)).toEqual({ facility: FACILITY, revoked: false });
    expect(file.lookup(deviceId)).toEqual({ facility: FACILITY, revoked: false });
    file.close();
  });

  it('passes the relay’s refusal through (code and status) and leaves the folder re-initializable', async () => {
    const data = join(dir, 'tablet');
    const unknown = `acc1.${'A'.repeat(43)}`;
    const e = await enrollError(initDevice({ data, name: 'a', relay: relay.url, token: unknown }));
    expect(e.code).toBe('DEVICE_ENROLL_FAILED');
    expect(e.details).toMatchObject({ status: 401, code: 'RELAY_TOKEN_INVALID' });
    expect(e.message).toContain('unknown enrollment token');
    await expectClean(data);

    const token = relay.issueToken();
    await initDevice({ data: join(dir, 'first'), name: 'first', relay: relay.url, token });
    const reused = await enrollError(initDevice({ data, name: 'a', relay: relay.url, token }));
    expect(reused.details).toMatchObject({ status: 409, code: 'RELAY_TOKEN_USED' });
    await expectClean(data);

    const ok = await initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() });
    expect(ok.config.relay?.id).toBe(relay.id);
  });

  it('pins the relay: with relayId, a relay that answers as another (even honestly) is refused and nothing is written', async () => {
    const data = join(dir, 'tablet');
    // Another relay, self-consistent and honest, but not the one the administrator named.
    const impostor = await FakeRelay.start({ facility: FACILITY });
    try {
      const refused = await enrollError(
        initDevice({ data, name: 'a', relay: impostor.url, token: impostor.issueToken(), relayId: relay.id }),
      );
      expect(refused.code).toBe('DEVICE_ENROLL_FAILED');
      expect(refused.details).toMatchObject({
        status: 201,
        reason: 'wrong-relay',
        relay: impostor.id,
        expected: relay.id,
      });
      await expectClean(data);
    } finally {
      await impostor.close();
    }
    const malformed = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken(), relayId: 'not-an-id' }),
    );
    expect(malformed.code).toBe('DEVICE_BAD_REQUEST');
    expect(relay.requests).toEqual([]);

    const { config } = await initDevice({
      data,
      name: 'a',
      relay: relay.url,
      token: relay.issueToken(),
      relayId: relay.id,
    });
    expect(config.relay).toEqual({ url: relay.url, id: relay.id });
  });

  it('refuses a roster whose signature does not verify, or signed by another key', async () => {
    const data = join(dir, 'tablet');
    // Renaming the listed device keeps the original signature, which then no longer verifies.
    relay.respond = (answer) => {
      const data = answer.roster.data as { version: number; devices: { name: string }[] };
      return {
        status: 201,
        body: {
          ...answer,
          roster: {
            ...answer.roster,
            data: { ...data, devices: data.devices.map((d) => ({ ...d, name: 'forged' })) },
          },
        },
      };
    };
    const forged = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(forged.code).toBe('DEVICE_ENROLL_FAILED');
    expect(forged.details).toMatchObject({ status: 201, reason: 'untrusted-roster' });
    expect(forged.message).toContain('signature');
    await expectClean(data);

    const impostor = await generateDeviceKey();
    relay.respond = async (answer, request) => ({
      status: 201,
      body: {
        ...answer,
        roster: await FakeRelay.signRosterWith(impostor, FACILITY, 1, [
          { id: request.device, name: request.name, revoked: false },
        ]),
      },
    });
    const foreign = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(foreign.details).toMatchObject({ reason: 'untrusted-roster' });
    expect(foreign.message).toContain('not by the relay');
    await expectClean(data);
  });

  it('refuses a roster that does not list the device (or lists it revoked), or of another facility', async () => {
    const data = join(dir, 'tablet');
    relay.respond = async (answer) => ({
      status: 201,
      body: { ...answer, roster: await FakeRelay.signRosterWith(relay.key, FACILITY, 1, []) },
    });
    const absent = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(absent.code).toBe('DEVICE_ENROLL_FAILED');
    expect(absent.message).toContain('does not list this device');
    await expectClean(data);

    relay.respond = async (answer, request) => ({
      status: 201,
      body: {
        ...answer,
        roster: await FakeRelay.signRosterWith(relay.key, FACILITY, 1, [
          { id: request.device, name: request.name, revoked: true },
        ]),
      },
    });
    const revoked = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(revoked.message).toContain('does not list this device');

    relay.respond = undefined;
    const other = await enrollError(
      initDevice({ data, name: 'a', facility: 'clinic-2', relay: relay.url, token: relay.issueToken() }),
    );
    expect(other.code).toBe('DEVICE_ENROLL_FAILED');
    expect(other.message).toContain('not clinic-2');
    await expectClean(data);
  });

  it('reports a malformed answer, an unreachable relay and a relay that does not answer in time', async () => {
    const data = join(dir, 'tablet');
    relay.respond = () => ({ status: 201, body: { hello: 'world' } });
    const malformed = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(malformed.details).toMatchObject({ status: 201, reason: 'bad-response' });

    relay.respond = () => ({ status: 500, body: 'oops' });
    const opaque = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() }),
    );
    expect(opaque.details).toMatchObject({ status: 500, code: null });

    // A port nobody listens on: bind one, then release it.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', () => resolve()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const down = await enrollError(
      initDevice({ data, name: 'a', relay: `ws://127.0.0.1:${port}`, token: relay.issueToken() }),
    );
    expect(down.code).toBe('DEVICE_ENROLL_FAILED');
    expect(down.details).toMatchObject({ status: null, reason: 'unreachable' });

    relay.respond = undefined;
    relay.hang = true;
    const slow = await enrollError(
      initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken(), enrollTimeoutMs: 150 }),
    );
    expect(slow.details).toMatchObject({ status: null, reason: 'timeout' });
    await expectClean(data);
  });

  it.each([
    ['a relay without a token', { relay: 'ws://127.0.0.1:1' }],
    ['a token without a relay', { facility: 'clinic-1', token: `acc1.${'A'.repeat(43)}` }],
    ['neither facility nor relay', {}],
    ['an http:// relay', { relay: 'http://127.0.0.1:1', token: `acc1.${'A'.repeat(43)}` }],
    ['a malformed token', { relay: 'ws://127.0.0.1:1', token: 'secret' }],
    [
      'a roster file with a relay',
      { relay: 'ws://127.0.0.1:1', token: `acc1.${'A'.repeat(43)}`, roster: 'r.json' },
    ],
    [
      'a bad facility with a relay',
      { facility: 'a b', relay: 'ws://127.0.0.1:1', token: `acc1.${'A'.repeat(43)}` },
    ],
  ])('refuses %s with DEVICE_BAD_REQUEST before creating anything', async (_what, input) => {
    const data = join(dir, 'tablet');
    await expect(initDevice({ data, name: 'a', ...input })).rejects.toMatchObject({
      code: 'DEVICE_BAD_REQUEST',
    });
    await expect(readdir(data)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('enrollUrl', () => {
  it('maps ws:// to http:// and wss:// to https:// on the same host and port', () => {
    expect(enrollUrl('ws://10.0.0.5:7400')).toBe('http://10.0.0.5:7400/enroll');
    expect(enrollUrl('wss://relay.example.org/sync')).toBe('https://relay.example.org/enroll');
    expect(() => enrollUrl('not a url')).toThrow(/ws:\/\/host:port/);
  });
});
