// The wire protocol of Accord's authenticated WebSocket links (libs/network-ws): the HTTP
// upgrade headers, the JSON handshake messages (text frames), the signed auth transcript
// and the binary frames that carry automerge-repo messages after authentication.
// Pure: TextEncoder/TextDecoder and DataView only.
import { z } from 'zod';
import { AccordError, ErrorCode } from './errors.js';
import type { DeviceId, FacilityId } from './ids.js';
import { err, ok, type Result } from './result.js';
import { deviceIdSchema, facilityIdSchema, signatureSchema } from './schemas.js';

/**
 * Version of the wire protocol, sent in the upgrade header and in every handshake message; a peer
 * of another version is refused at the upgrade (`unsupported-version`).
 *
 * @remarks 2 (session 15): an entry of a segment document may be a run of several events (see
 * `@accord/log`'s `SegmentDoc`). A device of version 1 would take a run for one entry that does
 * not decode, report it as an incident and never hold those events; as documents pass between
 * peers, every device and the relay of a facility move to 2 together.
 */
export const WIRE_VERSION = 2;

/** HTTP header names of the WebSocket upgrade (lower case, as Node reports them). */
export const WireHttpHeader = {
  /** The connecting device's id (checked against the roster before the upgrade). */
  Device: 'x-accord-device',
  /** The facility the connecting device claims to belong to. */
  Facility: 'x-accord-facility',
  /** The wire protocol version the client speaks ({@link WIRE_VERSION}). */
  Version: 'x-accord-wire',
  /** On a refused upgrade: the stable error code of the refusal. */
  Error: 'x-accord-error',
  /**
   * The optional features a side speaks beyond {@link WIRE_VERSION}, comma-separated (the client's
   * upgrade request, the server's 101 answer): a peer that names none, an older one, is never sent
   * their frames. See {@link WIRE_FEATURE_SEGMENTS}.
   */
  Features: 'x-accord-features',
} as const;

/** Random bytes in each side's handshake nonce. */
export const WIRE_NONCE_BYTES = 32;
/** Domain-separation label at the start of every auth transcript. */
export const WIRE_AUTH_LABEL = 'accord/ws-auth/v1';
/** Largest accepted handshake text frame, in UTF-8 bytes (room for a membership proof). */
export const WIRE_MAX_HANDSHAKE_BYTES = 64 * 1024;
/** Longest membership proof a `challenge` may carry (base64url characters). */
export const WIRE_MAX_MEMBERSHIP_CHARS = 60_000;
/** Largest accepted JSON header inside a binary frame, in bytes. */
export const WIRE_MAX_HEADER_BYTES = 65_536;
/** First byte of every binary frame. */
export const WIRE_FRAME_MAGIC = 0x41;
/** Bytes before a binary frame's JSON header: magic, version, u32 big-endian header length. */
export const WIRE_FRAME_PREFIX_BYTES = 6;

// 32 bytes → 43 base64url chars; the last char carries 4 data bits and 2 zero bits.
const NONCE_PATTERN = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
// automerge-repo document ids: base58check of a 16-byte UUID (22 chars at most, 20 at least in practice).
const DOCUMENT_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{16,40}$/;
// Storage ids (UUIDs in automerge-repo); starting with an alphanumeric refuses `__proto__`.
const STORAGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const HEAD_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{1,64}$/;
const ERROR_CODE_PATTERN = /^[A-Z][A-Z0-9_]{0,63}$/;
/** Most storage ids in one subscription change or heads announcement. */
export const WIRE_MAX_STORAGE_IDS = 64;
/** Most heads per storage id in a heads announcement. */
export const WIRE_MAX_HEADS = 256;

/** Schema of a handshake nonce: canonical base64url of {@link WIRE_NONCE_BYTES} bytes. */
export const wireNonceSchema = z.string().regex(NONCE_PATTERN, 'expected a base64url 32-byte nonce');
/** Schema of an automerge-repo document id as it appears on the wire (base58 text). */
export const wireDocumentIdSchema = z.string().regex(DOCUMENT_ID_PATTERN, 'expected a document id');
/** Schema of an automerge-repo storage id. */
export const wireStorageIdSchema = z.string().regex(STORAGE_ID_PATTERN, 'expected a storage id');

/** Schema of the peer metadata each side announces (automerge-repo `PeerMetadata`). */
export const wirePeerMetadataSchema = z.strictObject({
  storageId: wireStorageIdSchema.optional(),
  isEphemeral: z.boolean().optional(),
});
/** Peer metadata as announced on the wire. */
export type WirePeerMetadata = z.infer<typeof wirePeerMetadataSchema>;

/** Schema of `hello`: client → server, first frame after the upgrade. */
export const wireHelloSchema = z.strictObject({
  type: z.literal('hello'),
  v: z.literal(WIRE_VERSION),
  deviceId: deviceIdSchema,
  facility: facilityIdSchema,
  nonce: wireNonceSchema,
  peerMetadata: wirePeerMetadataSchema,
});
/** Schema of `challenge`: server → client, the server's identity, nonce and proof (signature). */
export const wireChallengeSchema = z.strictObject({
  type: z.literal('challenge'),
  v: z.literal(WIRE_VERSION),
  deviceId: deviceIdSchema,
  facility: facilityIdSchema,
  nonce: wireNonceSchema,
  signature: signatureSchema,
  /**
   * Optional: the server's newest relay-signed membership statement (base64url of a signed
   * `RosterUpdated` event's canonical bytes), so a client whose roster is older can learn that
   * the server was enrolled after it.
   */
  membership: z
    .string()
    .max(WIRE_MAX_MEMBERSHIP_CHARS)
    .regex(/^[A-Za-z0-9_-]+$/)
    .exactOptional(),
});
/** Schema of `auth`: client → server, the client's proof (signature). */
export const wireAuthSchema = z.strictObject({
  type: z.literal('auth'),
  signature: signatureSchema,
});
/** Schema of `welcome`: server → client, authentication complete; repo frames may follow. */
export const wireWelcomeSchema = z.strictObject({
  type: z.literal('welcome'),
  peerMetadata: wirePeerMetadataSchema,
});
/** Schema of `error`: either side, sent just before closing a handshake with a close code. */
export const wireErrorSchema = z.strictObject({
  type: z.literal('error'),
  code: z.string().regex(ERROR_CODE_PATTERN),
  message: z.string().max(256),
});
/** Schema of any handshake message (a JSON text frame). */
export const wireHandshakeSchema = z.discriminatedUnion('type', [
  wireHelloSchema,
  wireChallengeSchema,
  wireAuthSchema,
  wireWelcomeSchema,
  wireErrorSchema,
]);

/** `hello` handshake message. */
export type WireHello = z.infer<typeof wireHelloSchema>;
/** `challenge` handshake message. */
export type WireChallenge = z.infer<typeof wireChallengeSchema>;
/** `auth` handshake message. */
export type WireAuth = z.infer<typeof wireAuthSchema>;
/** `welcome` handshake message. */
export type WireWelcome = z.infer<typeof wireWelcomeSchema>;
/** `error` handshake message. */
export type WireError = z.infer<typeof wireErrorSchema>;
/** Any handshake message. */
export type WireHandshake = z.infer<typeof wireHandshakeSchema>;

function schemaError(code: ErrorCode, what: string, error: z.ZodError): AccordError {
  const issue = error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
  return new AccordError(code, `invalid ${what}${where}: ${issue?.message ?? 'schema mismatch'}`, {
    details: {
      issues: error.issues.slice(0, 3).map((i) => ({ path: i.path.map(String), message: i.message })),
    },
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// JSON.parse that refuses `__proto__` keys anywhere: schemas would silently drop them, and a
// peer that sends one is not a peer we want to talk to.
function parseJson(text: string): unknown {
  return JSON.parse(text, (key: string, value: unknown) => {
    if (key === '__proto__') throw new SyntaxError('__proto__ key');
    return value;
  });
}

/**
 * Parses one handshake text frame.
 *
 * @remarks Checks the size before parsing JSON; refuses `__proto__` keys; never throws.
 * Errors: `PROTOCOL_TOO_LARGE` (over {@link WIRE_MAX_HANDSHAKE_BYTES}), `PROTOCOL_BAD_ENCODING` (not JSON),
 * `PROTOCOL_SCHEMA` (not a handshake message).
 */
export function parseWireHandshake(text: string): Result<WireHandshake> {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: a cheap bound before encoding.
  if (text.length > WIRE_MAX_HANDSHAKE_BYTES || encoder.encode(text).length > WIRE_MAX_HANDSHAKE_BYTES) {
    return err(
      new AccordError(ErrorCode.PROTOCOL_TOO_LARGE, `handshake frame over ${WIRE_MAX_HANDSHAKE_BYTES} bytes`),
    );
  }
  let value: unknown;
  try {
    value = parseJson(text);
  } catch (cause) {
    return err(
      new AccordError(
        ErrorCode.PROTOCOL_BAD_ENCODING,
        'handshake frame is not JSON (or has a __proto__ key)',
        { cause },
      ),
    );
  }
  const parsed = wireHandshakeSchema.safeParse(value);
  return parsed.success
    ? ok(parsed.data)
    : err(schemaError(ErrorCode.PROTOCOL_SCHEMA, 'handshake message', parsed.error));
}

/** Serializes a handshake message to its text frame. */
export function encodeWireHandshake(message: WireHandshake): string {
  return JSON.stringify(message);
}

/** The facts both sides sign during the handshake. */
export interface WireTranscriptFacts {
  readonly facility: FacilityId;
  readonly clientId: DeviceId;
  readonly serverId: DeviceId;
  readonly clientNonce: string;
  readonly serverNonce: string;
}

/**
 * The bytes a side signs to prove its identity: label, role, facility, both ids and both nonces.
 *
 * @remarks One field per line. No field can contain a newline (every field is validated by its
 * schema first), so the encoding is unambiguous. The role line makes a client's proof useless as a
 * server's proof and vice versa; both nonces make every proof fresh.
 */
export function wireAuthTranscript(role: 'client' | 'server', facts: WireTranscriptFacts): Uint8Array {
  return encoder.encode(
    [
      WIRE_AUTH_LABEL,
      role,
      facts.facility,
      facts.clientId,
      facts.serverId,
      facts.clientNonce,
      facts.serverNonce,
    ].join('\n'),
  );
}

/**
 * The bulk transfer of sealed segments, version 1: a `segments-request` names stored documents a
 * side lacks, and the peer answers each with a `segment` frame (the stored document bytes) or a
 * `segment-unavailable` one. Only sent to a peer that named it in {@link WireHttpHeader.Features}.
 */
export const WIRE_FEATURE_SEGMENTS = 'segments/1';
/** Most document ids one `segments-request` names. */
export const WIRE_MAX_SEGMENT_REQUEST = 64;

/** The features a {@link WireHttpHeader.Features} value names (unknown ones are kept, and ignored by the caller). */
export function parseWireFeatures(value: string | string[] | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(
    text
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f.length > 0 && f.length <= 64),
  );
}

const seqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const routed = { seq: seqSchema, senderId: deviceIdSchema, targetId: deviceIdSchema };
const headsEntrySchema = z.strictObject({
  heads: z.array(z.string().regex(HEAD_PATTERN)).max(WIRE_MAX_HEADS),
  timestamp: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});

/** Schema of the JSON header of a binary frame (one automerge-repo message, or an ack). */
export const wireFrameHeaderSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sync'), ...routed, documentId: wireDocumentIdSchema }),
  z.strictObject({ type: z.literal('request'), ...routed, documentId: wireDocumentIdSchema }),
  z.strictObject({ type: z.literal('doc-unavailable'), ...routed, documentId: wireDocumentIdSchema }),
  z.strictObject({
    type: z.literal('ephemeral'),
    ...routed,
    documentId: wireDocumentIdSchema,
    count: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  }),
  z.strictObject({
    type: z.literal('remote-subscription-change'),
    ...routed,
    add: z.array(wireStorageIdSchema).max(WIRE_MAX_STORAGE_IDS).optional(),
    remove: z.array(wireStorageIdSchema).max(WIRE_MAX_STORAGE_IDS).optional(),
  }),
  z.strictObject({
    type: z.literal('remote-heads-changed'),
    ...routed,
    documentId: wireDocumentIdSchema,
    newHeads: z
      .record(wireStorageIdSchema, headsEntrySchema)
      .refine((r) => Object.keys(r).length <= WIRE_MAX_STORAGE_IDS, 'too many storage ids'),
  }),
  z.strictObject({
    type: z.literal('segments-request'),
    ...routed,
    documentIds: z.array(wireDocumentIdSchema).min(1).max(WIRE_MAX_SEGMENT_REQUEST),
  }),
  z.strictObject({ type: z.literal('segment'), ...routed, documentId: wireDocumentIdSchema }),
  z.strictObject({ type: z.literal('segment-unavailable'), ...routed, documentId: wireDocumentIdSchema }),
  z.strictObject({ type: z.literal('ack'), seq: seqSchema }),
]);

/** The JSON header of a binary frame. */
export type WireFrameHeader = z.infer<typeof wireFrameHeaderSchema>;
/** The kinds of binary frame. */
export type WireFrameType = WireFrameHeader['type'];

/** Frame types that carry a non-empty payload after the header; every other type carries none. */
export const WIRE_TYPES_WITH_DATA: ReadonlySet<WireFrameType> = new Set<WireFrameType>([
  'sync',
  'request',
  'ephemeral',
  'segment',
]);

/** A decoded binary frame: its header and, for {@link WIRE_TYPES_WITH_DATA}, its payload. */
export interface WireFrame {
  readonly header: WireFrameHeader;
  readonly data?: Uint8Array;
}

/**
 * Encodes a binary frame: magic byte, {@link WIRE_VERSION}, u32 big-endian header length, JSON
 * header, payload.
 *
 * @throws AccordError `PROTOCOL_BAD_FRAME` when the payload's presence does not match the type
 * (a programmer error on the sending side).
 */
export function encodeWireFrame(header: WireFrameHeader, data?: Uint8Array): Uint8Array {
  const wantsData = WIRE_TYPES_WITH_DATA.has(header.type);
  if (wantsData !== (data !== undefined && data.length > 0)) {
    throw new AccordError(
      ErrorCode.PROTOCOL_BAD_FRAME,
      `frame type ${header.type} ${wantsData ? 'needs' : 'takes no'} payload`,
    );
  }
  const json = encoder.encode(JSON.stringify(header));
  const out = new Uint8Array(WIRE_FRAME_PREFIX_BYTES + json.length + (data?.length ?? 0));
  const view = new DataView(out.buffer);
  out[0] = WIRE_FRAME_MAGIC;
  out[1] = WIRE_VERSION;
  view.setUint32(2, json.length);
  out.set(json, WIRE_FRAME_PREFIX_BYTES);
  if (data !== undefined) out.set(data, WIRE_FRAME_PREFIX_BYTES + json.length);
  return out;
}

function badFrame(message: string, cause?: unknown): AccordError {
  return new AccordError(ErrorCode.PROTOCOL_BAD_FRAME, message, cause === undefined ? {} : { cause });
}

/**
 * Decodes and validates one binary frame; never throws.
 *
 * @remarks Checks, in order: the prefix (magic, version), the header length against
 * `maxHeaderBytes` and the frame, strict UTF-8 JSON without `__proto__` keys, the header schema, and that a payload is
 * present (non-empty) exactly for {@link WIRE_TYPES_WITH_DATA}. The payload is a view into `bytes`
 * (no copy). It does not check who sent the frame: that is the link's job.
 * Errors: `PROTOCOL_BAD_FRAME` (layout, JSON or payload), `PROTOCOL_TOO_LARGE` (header),
 * `PROTOCOL_SCHEMA` (header schema).
 */
export function decodeWireFrame(
  bytes: Uint8Array,
  maxHeaderBytes: number = WIRE_MAX_HEADER_BYTES,
): Result<WireFrame> {
  if (bytes.length < WIRE_FRAME_PREFIX_BYTES) return err(badFrame('frame shorter than its prefix'));
  if (bytes[0] !== WIRE_FRAME_MAGIC) return err(badFrame('bad frame magic byte'));
  if (bytes[1] !== WIRE_VERSION) return err(badFrame(`unsupported frame version ${bytes[1]}`));
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2);
  if (headerLength > maxHeaderBytes) {
    return err(new AccordError(ErrorCode.PROTOCOL_TOO_LARGE, `frame header over ${maxHeaderBytes} bytes`));
  }
  const end = WIRE_FRAME_PREFIX_BYTES + headerLength;
  if (end > bytes.length) return err(badFrame('frame header runs past the frame'));
  let value: unknown;
  try {
    value = parseJson(decoder.decode(bytes.subarray(WIRE_FRAME_PREFIX_BYTES, end)));
  } catch (cause) {
    return err(badFrame('frame header is not UTF-8 JSON (or has a __proto__ key)', cause));
  }
  const parsed = wireFrameHeaderSchema.safeParse(value);
  if (!parsed.success) return err(schemaError(ErrorCode.PROTOCOL_SCHEMA, 'frame header', parsed.error));
  const header = parsed.data;
  const payloadLength = bytes.length - end;
  if (WIRE_TYPES_WITH_DATA.has(header.type)) {
    if (payloadLength === 0) return err(badFrame(`frame type ${header.type} needs a payload`));
    return ok({ header, data: bytes.subarray(end) });
  }
  if (payloadLength !== 0) return err(badFrame(`frame type ${header.type} takes no payload`));
  return ok({ header });
}

/**
 * A message of the bulk segment transfer ({@link WIRE_FEATURE_SEGMENTS}) as a network adapter
 * hands it to its listeners, beside the automerge-repo messages (the Repo ignores these types).
 */
export type WireSegmentsMessage =
  | {
      readonly type: 'segments-request';
      readonly senderId: string;
      readonly targetId: string;
      readonly documentIds: readonly string[];
    }
  | {
      readonly type: 'segment';
      readonly senderId: string;
      readonly targetId: string;
      readonly documentId: string;
      readonly data: Uint8Array;
    }
  | {
      readonly type: 'segment-unavailable';
      readonly senderId: string;
      readonly targetId: string;
      readonly documentId: string;
    };

/**
 * The event a network adapter emits with each {@link WireSegmentsMessage} it receives. Not
 * `message`: automerge-repo 2.5.6's network subsystem logs any message of a type it does not know
 * as JSON, payload included, before it drops it (a 1 MB document spelled out byte by byte). An
 * adapter that does not speak the transfer never emits it.
 */
export const WIRE_SEGMENTS_EVENT = 'accord-segments';

/** True when `message` (anything an adapter emitted) is a {@link WireSegmentsMessage} type. */
export function isWireSegmentsMessage(message: { readonly type: string }): message is WireSegmentsMessage {
  return (
    message.type === 'segments-request' ||
    message.type === 'segment' ||
    message.type === 'segment-unavailable'
  );
}
