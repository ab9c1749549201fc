import { describe, expect, it } from 'vitest';
import {
  makeEnrollRequest,
  parseEnrollRequest,
  parseEnrollResponse,
  verifyEnrollProof,
  ENROLL_TOKEN_PATTERN,
} from './enrollment.js';
import { generateDeviceKey } from './keys.js';
import { parseRosterUpdatedData, relayRosterVersion } from './schemas.js';
import type { SignedEvent } from './envelope.js';

const TOKEN = `acc1.${'A'.repeat(43)}`;

describe('enrollment', () => {
  it('proves the key for exactly this token and device', async () => {
    const key = await generateDeviceKey();
    const other = await generateDeviceKey();
    const request = await makeEnrollRequest(key, TOKEN, 'Front desk');
    expect(parseEnrollRequest(request).ok).toBe(true);
    expect(await verifyEnrollProof(request)).toBe(true);
    expect(await verifyEnrollProof({ ...request, token: `acc1.${'B'.repeat(43)}` })).toBe(false);
    expect(await verifyEnrollProof({ ...request, device: other.deviceId })).toBe(false);
    expect(await verifyEnrollProof({ ...request, proof: 'x' })).toBe(false);
  });

  it('refuses malformed requests and responses with PROTOCOL_SCHEMA', async () => {
    const key = await generateDeviceKey();
    const request = await makeEnrollRequest(key, TOKEN, 'Tablet');
    expect(ENROLL_TOKEN_PATTERN.test(TOKEN)).toBe(true);
    for (const bad of [
      { ...request, token: 'acc1.short' },
      { ...request, name: '' },
      { ...request, name: 'a\u0007b' },
      { ...request, extra: 1 },
      null,
    ]) {
      const r = parseEnrollRequest(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('PROTOCOL_SCHEMA');
    }
    expect(parseEnrollResponse({ facility: 'f', relay: key.deviceId }).ok).toBe(false);
  });

  it('validates roster data: positive version, unique devices', async () => {
    const key = await generateDeviceKey();
    const member = { id: key.deviceId, name: 'A', revoked: false };
    expect(parseRosterUpdatedData({ version: 1, devices: [member] }).ok).toBe(true);
    expect(parseRosterUpdatedData({ version: 0, devices: [] }).ok).toBe(false);
    expect(parseRosterUpdatedData({ version: 2, devices: [member, member] }).ok).toBe(false);
  });

  it('reads the version of a roster only when its relay signed it and its data is well-formed', async () => {
    const relay = await generateDeviceKey();
    const other = await generateDeviceKey();
    const roster = {
      type: 'RosterUpdated',
      device: relay.deviceId,
      data: { version: 3, devices: [] },
    } as unknown as SignedEvent;
    expect(relayRosterVersion(roster, relay.deviceId)).toBe(3);
    expect(relayRosterVersion(roster, other.deviceId)).toBeUndefined();
    expect(relayRosterVersion({ ...roster, type: 'Verdict' }, relay.deviceId)).toBeUndefined();
    expect(
      relayRosterVersion({ ...roster, data: { version: 0, devices: [] } }, relay.deviceId),
    ).toBeUndefined();
  });
});
