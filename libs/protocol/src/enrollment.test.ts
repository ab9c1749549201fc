import { describe, expect, it } from 'vitest';
import {
  makeEnrollRequest,
  parseEnrollRequest,
  parseEnrollResponse,
  verifyEnrollProof,
  ENROLL_TOKEN_PATTERN,
} from './enrollment.js';
import { generateDeviceKey } from './keys.js';
import { parseRosterUpdatedData } from './schemas.js';

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
});
