import { ErrorCode } from '@accord/protocol';
import { describe, expect, it } from 'vitest';
import { CloseCode, refusalCloseCode, refusalErrorCode, type RefusalReason } from './close-codes.js';
import { StaticRoster } from './roster.js';
import type { DeviceId, FacilityId } from '@accord/protocol';

const REASONS: RefusalReason[] = [
  'bad-request',
  'unsupported-version',
  'offline',
  'busy',
  'self',
  'unknown-device',
  'revoked-device',
  'wrong-facility',
  'server-refused',
  'server-identity',
  'auth-failed',
  'auth-timeout',
  'bad-frame',
  'peer-id-mismatch',
  'too-large',
  'rate-limited',
  'forbidden-document',
];

describe('close codes', () => {
  it('are unique and in the application range (or the standard going-away codes)', () => {
    const codes = Object.values(CloseCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes)
      expect(code === 1000 || code === 1001 || (code >= 4000 && code <= 4999)).toBe(true);
  });

  it('every refusal maps to a documented close code and a known error code', () => {
    const known = new Set<string>(Object.values(ErrorCode));
    const closeCodes = new Set<number>(Object.values(CloseCode));
    for (const reason of REASONS) {
      expect(closeCodes.has(refusalCloseCode(reason)), reason).toBe(true);
      expect(known.has(refusalErrorCode(reason)), reason).toBe(true);
    }
    expect(refusalCloseCode('peer-id-mismatch')).toBe(4406);
    expect(refusalCloseCode('too-large')).toBe(4413);
    expect(refusalErrorCode('forbidden-document')).toBe(ErrorCode.NETWORK_FORBIDDEN_DOCUMENT);
  });
});

describe('StaticRoster', () => {
  it('enrolls, revokes and removes devices', () => {
    const d = 'dX' as DeviceId;
    const roster = new StaticRoster([[d, { facility: 'f1' as FacilityId, revoked: false }]]);
    expect(roster.lookup(d)).toEqual({ facility: 'f1', revoked: false });
    expect(roster.revoke(d)).toBe(true);
    expect(roster.lookup(d)?.revoked).toBe(true);
    expect(roster.revoke('dY' as DeviceId)).toBe(false);
    roster.enroll(d, 'f2' as FacilityId);
    expect(roster.lookup(d)).toEqual({ facility: 'f2', revoked: false });
    expect(roster.remove(d)).toBe(true);
    expect(roster.lookup(d)).toBeUndefined();
  });
});
