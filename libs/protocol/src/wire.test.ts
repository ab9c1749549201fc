import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64Url } from './base64url.js';
import { ErrorCode } from './errors.js';
import type { DeviceId, FacilityId } from './ids.js';
import { generateDeviceKey, signBytes, verifyBytes } from './keys.js';
import { arbDeviceId, arbFacilityId } from './testing.js';
import {
  decodeWireFrame,
  encodeWireFrame,
  encodeWireHandshake,
  parseWireHandshake,
  WIRE_AUTH_LABEL,
  WIRE_FRAME_MAGIC,
  WIRE_MAX_HANDSHAKE_BYTES,
  WIRE_TYPES_WITH_DATA,
  WIRE_VERSION,
  wireAuthTranscript,
  type WireFrameHeader,
  type WireHandshake,
} from './wire.js';

const DEVICE_A = ('d' + toBase64Url(new Uint8Array(32).fill(1))) as DeviceId;
const DEVICE_B = ('d' + toBase64Url(new Uint8Array(32).fill(2))) as DeviceId;
const FACILITY = 'clinic-1' as FacilityId;
const NONCE = toBase64Url(new Uint8Array(32).fill(7));
const DOC = '2sEv7Keo849zWVSRKPN8Ywdu1Ryr';

const arbNonce = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64Url);
const arbSignature = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(toBase64Url);
const arbDocumentId = fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{16,40}$/);
const arbStorageId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/);
const arbMeta = fc.record({ storageId: arbStorageId, isEphemeral: fc.boolean() }, { requiredKeys: [] });

const arbHandshake: fc.Arbitrary<WireHandshake> = fc.oneof(
  fc.record({
    type: fc.constant('hello' as const),
    v: fc.constant(WIRE_VERSION),
    deviceId: arbDeviceId(),
    facility: arbFacilityId(),
    nonce: arbNonce,
    peerMetadata: arbMeta,
  }),
  fc.record({
    type: fc.constant('challenge' as const),
    v: fc.constant(WIRE_VERSION),
    deviceId: arbDeviceId(),
    facility: arbFacilityId(),
    nonce: arbNonce,
    signature: arbSignature,
  }),
  fc.record({ type: fc.constant('auth' as const), signature: arbSignature }),
  fc.record({ type: fc.constant('welcome' as const), peerMetadata: arbMeta }),
  fc.record({
    type: fc.constant('error' as const),
    code: fc.constantFrom(...Object.values(ErrorCode)),
    message: fc.string({ maxLength: 256 }),
  }),
);

const arbRouted = fc.record({
  seq: fc.integer({ min: 1, max: 2 ** 40 }),
  senderId: arbDeviceId(),
  targetId: arbDeviceId(),
});
const arbHeader: fc.Arbitrary<WireFrameHeader> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('sync' as const, 'request' as const, 'doc-unavailable' as const),
      arbRouted,
      arbDocumentId,
    )
    .map(([type, r, documentId]) => ({ type, ...r, documentId })),
  fc
    .tuple(arbRouted, arbDocumentId, fc.nat(), fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/))
    .map(([r, documentId, count, sessionId]) => ({
      type: 'ephemeral' as const,
      ...r,
      documentId,
      count,
      sessionId,
    })),
  fc
    .tuple(arbRouted, fc.array(arbStorageId, { maxLength: 4 }), fc.array(arbStorageId, { maxLength: 4 }))
    .map(([r, add, remove]) => ({ type: 'remote-subscription-change' as const, ...r, add, remove })),
  fc
    .tuple(
      arbRouted,
      arbDocumentId,
      fc.dictionary(
        arbStorageId,
        fc.record({
          heads: fc.array(fc.stringMatching(/^[1-9A-HJ-NP-Za-km-z]{1,64}$/), { maxLength: 3 }),
          timestamp: fc.nat(),
        }),
        { maxKeys: 3 },
      ),
    )
    .map(([r, documentId, newHeads]) => ({
      type: 'remote-heads-changed' as const,
      ...r,
      documentId,
      newHeads,
    })),
  fc.integer({ min: 1, max: 2 ** 40 }).map((seq) => ({ type: 'ack' as const, seq })),
);

function rawFrame(
  header: unknown,
  payload: Uint8Array = new Uint8Array(),
  magic = WIRE_FRAME_MAGIC,
  version = WIRE_VERSION,
): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(6 + json.length + payload.length);
  out[0] = magic;
  out[1] = version;
  new DataView(out.buffer).setUint32(2, json.length);
  out.set(json, 6);
  out.set(payload, 6 + json.length);
  return out;
}

const SYNC = { type: 'sync', seq: 1, senderId: DEVICE_A, targetId: DEVICE_B, documentId: DOC };

describe('handshake messages', () => {
  it('round-trip through their text form', () => {
    fc.assert(
      fc.property(arbHandshake, (m) => {
        const parsed = parseWireHandshake(encodeWireHandshake(m));
        expect(parsed).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('refuse unknown types, unknown keys, wrong versions and malformed fields', () => {
    const hello = {
      type: 'hello',
      v: WIRE_VERSION,
      deviceId: DEVICE_A,
      facility: FACILITY,
      nonce: NONCE,
      peerMetadata: {},
    };
    expect(parseWireHandshake(JSON.stringify(hello)).ok).toBe(true);
    const bad: unknown[] = [
      { ...hello, type: 'join' },
      { ...hello, extra: 1 },
      { ...hello, v: WIRE_VERSION + 1 },
      { ...hello, v: WIRE_VERSION - 1 },
      { ...hello, deviceId: 'dshort' },
      { ...hello, facility: 'has space' },
      { ...hello, nonce: toBase64Url(new Uint8Array(16)) },
      { ...hello, peerMetadata: { storageId: '__proto__' } },
      { ...hello, peerMetadata: { other: true } },
      { type: 'auth', signature: toBase64Url(new Uint8Array(63)) },
      { type: 'error', code: 'lower_case', message: 'x' },
      { type: 'welcome' },
      [],
      null,
      'hello',
    ];
    for (const value of bad) {
      const r = parseWireHandshake(JSON.stringify(value));
      expect(r.ok, JSON.stringify(value)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(ErrorCode.PROTOCOL_SCHEMA);
    }
  });

  it('refuse non-JSON and oversized text before parsing', () => {
    const notJson = parseWireHandshake('{"type":');
    expect(notJson.ok === false && notJson.error.code).toBe(ErrorCode.PROTOCOL_BAD_ENCODING);
    const proto = parseWireHandshake('{"type":"welcome","peerMetadata":{"__proto__":{"isEphemeral":true}}}');
    expect(proto.ok === false && proto.error.code).toBe(ErrorCode.PROTOCOL_BAD_ENCODING);
    const huge = parseWireHandshake(
      JSON.stringify({ type: 'error', code: 'X', message: 'é'.repeat(WIRE_MAX_HANDSHAKE_BYTES) }),
    );
    expect(huge.ok === false && huge.error.code).toBe(ErrorCode.PROTOCOL_TOO_LARGE);
    // Under the limit in UTF-16 code units but over it in UTF-8 bytes.
    const wide = parseWireHandshake('"' + '€'.repeat(WIRE_MAX_HANDSHAKE_BYTES / 2) + '"');
    expect(wide.ok === false && wide.error.code).toBe(ErrorCode.PROTOCOL_TOO_LARGE);
  });

  it('never throw on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const r = parseWireHandshake(text);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});

describe('auth transcript', () => {
  const facts = {
    facility: FACILITY,
    clientId: DEVICE_A,
    serverId: DEVICE_B,
    clientNonce: NONCE,
    serverNonce: toBase64Url(new Uint8Array(32)),
  };

  it('starts with the label, names the role and every fact, one per line', () => {
    const text = new TextDecoder().decode(wireAuthTranscript('client', facts));
    expect(text.split('\n')).toEqual([
      WIRE_AUTH_LABEL,
      'client',
      FACILITY,
      DEVICE_A,
      DEVICE_B,
      NONCE,
      facts.serverNonce,
    ]);
  });

  it('differs when any fact or the role differs', () => {
    fc.assert(
      fc.property(
        fc.record({
          facility: arbFacilityId(),
          clientId: arbDeviceId(),
          serverId: arbDeviceId(),
          clientNonce: arbNonce,
          serverNonce: arbNonce,
        }),
        fc.constantFrom('facility', 'clientId', 'serverId', 'clientNonce', 'serverNonce'),
        (f, key) => {
          const base = wireAuthTranscript('client', f);
          expect(wireAuthTranscript('client', f)).toEqual(base);
          expect(wireAuthTranscript('server', f)).not.toEqual(base);
          const changed = {
            ...f,
            [key]:
              key === 'facility'
                ? f.facility + 'x'
                : f[key].slice(0, -1) + (f[key].endsWith('A') ? 'E' : 'A'),
          };
          expect(wireAuthTranscript('client', changed)).not.toEqual(base);
        },
      ),
    );
  });

  it('a signature over one role does not verify for the other', async () => {
    const key = await generateDeviceKey();
    const f = { ...facts, clientId: key.deviceId };
    const sig = await signBytes(key, wireAuthTranscript('client', f));
    expect(await verifyBytes(key.deviceId, wireAuthTranscript('client', f), sig)).toBe(true);
    expect(await verifyBytes(key.deviceId, wireAuthTranscript('server', f), sig)).toBe(false);
  });
});

describe('binary frames', () => {
  it('round-trip header and payload', () => {
    fc.assert(
      fc.property(arbHeader, fc.uint8Array({ minLength: 1, maxLength: 64 }), (header, payload) => {
        const data = WIRE_TYPES_WITH_DATA.has(header.type) ? payload : undefined;
        const decoded = decodeWireFrame(encodeWireFrame(header, data));
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) return;
        expect(decoded.value.header).toEqual(header);
        expect(decoded.value.data === undefined ? undefined : Array.from(decoded.value.data)).toEqual(
          data === undefined ? undefined : Array.from(data),
        );
      }),
    );
  });

  it('refuse to encode a payload that does not match the type', () => {
    expect(() => encodeWireFrame({ type: 'ack', seq: 1 }, new Uint8Array([1]))).toThrow(/takes no payload/);
    expect(() => encodeWireFrame({ ...SYNC, type: 'sync' })).toThrow(/needs payload/);
  });

  it('refuse every malformed layout with a coded error', () => {
    const one = new Uint8Array([1]);
    const cases: [string, Uint8Array, ErrorCode][] = [
      ['too short', new Uint8Array([WIRE_FRAME_MAGIC, 1, 0]), ErrorCode.PROTOCOL_BAD_FRAME],
      ['bad magic', rawFrame(SYNC, one, 0xa1), ErrorCode.PROTOCOL_BAD_FRAME],
      ['bad version', rawFrame(SYNC, one, WIRE_FRAME_MAGIC, 9), ErrorCode.PROTOCOL_BAD_FRAME],
      ['header past end', rawFrame(SYNC, one).subarray(0, 20), ErrorCode.PROTOCOL_BAD_FRAME],
      ['not JSON', rawFrame('{"type"', one), ErrorCode.PROTOCOL_BAD_FRAME],
      [
        'invalid UTF-8',
        (() => {
          const f = rawFrame('"ab"');
          f[7] = 0xff;
          return f;
        })(),
        ErrorCode.PROTOCOL_BAD_FRAME,
      ],
      ['missing payload', rawFrame(SYNC), ErrorCode.PROTOCOL_BAD_FRAME],
      [
        'unexpected payload',
        rawFrame({ ...SYNC, type: 'doc-unavailable' }, one),
        ErrorCode.PROTOCOL_BAD_FRAME,
      ],
      ['unknown type', rawFrame({ ...SYNC, type: 'join' }, one), ErrorCode.PROTOCOL_SCHEMA],
      ['extra key', rawFrame({ ...SYNC, extra: 1 }, one), ErrorCode.PROTOCOL_SCHEMA],
      ['bad document id', rawFrame({ ...SYNC, documentId: '0OIl' + DOC }, one), ErrorCode.PROTOCOL_SCHEMA],
      ['bad sender', rawFrame({ ...SYNC, senderId: 'peer-1' }, one), ErrorCode.PROTOCOL_SCHEMA],
      ['seq zero', rawFrame({ ...SYNC, seq: 0 }, one), ErrorCode.PROTOCOL_SCHEMA],
      ['fractional seq', rawFrame({ ...SYNC, seq: 1.5 }, one), ErrorCode.PROTOCOL_SCHEMA],
      [
        'proto key',
        rawFrame(
          '{"type":"remote-heads-changed","seq":1,"senderId":"' +
            DEVICE_A +
            '","targetId":"' +
            DEVICE_B +
            '","documentId":"' +
            DOC +
            '","newHeads":{"__proto__":{"heads":[],"timestamp":1}}}',
        ),
        ErrorCode.PROTOCOL_BAD_FRAME,
      ],
    ];
    for (const [name, bytes, code] of cases) {
      const r = decodeWireFrame(bytes);
      expect(r.ok, name).toBe(false);
      if (!r.ok) expect(r.error.code, name).toBe(code);
    }
  });

  it('refuse a header over the limit without parsing it', () => {
    const frame = rawFrame(SYNC, new Uint8Array([1]));
    const r = decodeWireFrame(frame, 10);
    expect(r.ok === false && r.error.code).toBe(ErrorCode.PROTOCOL_TOO_LARGE);
    // A header length field claiming 4 GiB in a tiny frame.
    const liar = rawFrame(SYNC, new Uint8Array([1]));
    new DataView(liar.buffer).setUint32(2, 0xffffffff);
    const r2 = decodeWireFrame(liar);
    expect(r2.ok === false && r2.error.code).toBe(ErrorCode.PROTOCOL_TOO_LARGE);
  });

  it('never throw on arbitrary bytes, with or without a valid prefix', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 200 }), (prefixed, tail) => {
        const bytes = prefixed ? rawFrame(new TextDecoder().decode(tail)) : tail;
        const r = decodeWireFrame(bytes);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });

  it('decodes from a view with a non-zero offset', () => {
    const frame = encodeWireFrame({ type: 'ack', seq: 5 });
    const padded = new Uint8Array(frame.length + 3);
    padded.set(frame, 3);
    const r = decodeWireFrame(padded.subarray(3));
    expect(r.ok && r.value.header).toEqual({ type: 'ack', seq: 5 });
  });
});
