import { fromBase64Url, toBase64Url } from './base64url.js';
import { canonicalDecode, canonicalEncode, canonicalStringify, MAX_EVENT_BYTES } from './canonical.js';
import type { EventEnvelope, JsonValue, SignedEvent } from './envelope.js';
import { AccordError, ErrorCode } from './errors.js';
import { signBytes, verifyBytes, type DeviceKeyPair } from './keys.js';
import { err, ok, type Result } from './result.js';
import { isSignedEvent, parseWith, signedEventSchema } from './schemas.js';

/** Default number of signature verifications {@link verifyEvents} keeps in flight. */
export const DEFAULT_VERIFY_CONCURRENCY = 256;

type JsonObject = { [key: string]: JsonValue };

// Only the envelope's own fields, so a SignedEvent (or an object with stray keys) signs the same bytes.
function envelopeObject(e: EventEnvelope): JsonObject {
  const o: JsonObject = {
    v: e.v,
    id: e.id,
    facility: e.facility,
    device: e.device,
    seq: e.seq,
    hlc: e.hlc,
    type: e.type,
    schema: e.schema,
    // In canonical key order, as in a decoded event: the encoder then takes it in one piece.
    subject: { id: e.subject.id, kind: e.subject.kind },
    deps: e.deps,
    data: e.data,
  };
  if (e.basis !== undefined) o['basis'] = e.basis;
  if (e.supersedes !== undefined) o['supersedes'] = e.supersedes;
  return o;
}

/**
 * The bytes a device signs: the canonical encoding of the envelope without `sig`.
 *
 * @remarks Absent optional fields (`basis`, `supersedes`) are omitted; keys other than the
 * envelope's fields are ignored.
 * @throws AccordError `PROTOCOL_BAD_ENCODING` when a field is not canonical JSON.
 */
export function envelopeBytes(e: EventEnvelope): Uint8Array {
  return canonicalEncode(envelopeObject(e));
}

/**
 * The canonical bytes of a whole signed event, signature included: what the log stores and ships.
 *
 * @throws AccordError `PROTOCOL_BAD_ENCODING` when a field is not canonical JSON.
 */
export function encodeSignedEvent(event: SignedEvent): Uint8Array {
  const o = envelopeObject(event);
  o['sig'] = event.sig;
  return canonicalEncode(o);
}

/**
 * Signs an envelope with its device's key.
 *
 * @remarks Does not validate the envelope against the schema (use `parseEnvelope` for envelopes
 * from outside); it does refuse events that no decoder would accept for size.
 * @throws AccordError `PROTOCOL_BAD_KEY` when `envelope.device` is not `key.deviceId` or the key
 * cannot sign; `PROTOCOL_BAD_ENCODING` when a field is not canonical JSON; `PROTOCOL_TOO_LARGE`
 * when the encoded signed event would exceed {@link MAX_EVENT_BYTES}.
 */
export async function signEvent(envelope: EventEnvelope, key: DeviceKeyPair): Promise<SignedEvent> {
  return (await signEventEncoded(envelope, key)).event;
}

const ENCODER = new TextEncoder();

/** The keys {@link envelopeObject} may set, in canonical (UTF-16 code unit) order. */
const ENVELOPE_KEYS = [
  'basis',
  'data',
  'deps',
  'device',
  'facility',
  'hlc',
  'id',
  'schema',
  'seq',
  'subject',
  'supersedes',
  'type',
  'v',
] as const;

/**
 * Signs an envelope and returns the signed event together with its canonical bytes (what
 * {@link encodeSignedEvent} would return), encoding the envelope once instead of twice.
 *
 * @remarks `sig` sorts between `seq` and `subject` among the envelope's keys, so the canonical
 * text of the signed event is the envelope's members before `sig`, the `sig` member, then the
 * members after it. Same checks and errors as {@link signEvent}.
 */
export async function signEventEncoded(
  envelope: EventEnvelope,
  key: DeviceKeyPair,
): Promise<{ event: SignedEvent; bytes: Uint8Array }> {
  if (envelope.device !== key.deviceId) {
    throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'envelope.device is not the signing key', {
      details: { device: envelope.device, key: key.deviceId },
    });
  }
  const o = envelopeObject(envelope);
  const before: JsonObject = {};
  const after: JsonObject = {};
  // Filled in canonical key order, so the encoder finds both halves sorted.
  let copied = 0;
  for (const k of ENVELOPE_KEYS) {
    if (!(k in o)) continue;
    (k < 'sig' ? before : after)[k] = o[k]!;
    copied++;
  }
  // A field envelopeObject sets but ENVELOPE_KEYS lacks would go unsigned: a programmer error.
  if (copied !== Object.keys(o).length) throw new Error('ENVELOPE_KEYS lacks a field of envelopeObject');
  // Both halves are never empty: `data` sorts before `sig`, `v` after it.
  // Each half is encoded to UTF-8 once; the signed and the unsigned bytes are copied from them
  // (no joined strings to flatten and encode twice: the append path's garbage is its main cost).
  const head = ENCODER.encode(canonicalStringify(before)); // `{…}`: all but its `}` is kept
  const tail = ENCODER.encode(canonicalStringify(after)); // `{…}`: all but its `{` is kept
  const bytes = new Uint8Array(head.length + tail.length - 1);
  bytes.set(head);
  bytes[head.length - 1] = COMMA;
  bytes.set(tail.subarray(1), head.length);
  // The signed form adds `,"sig":"<86 chars>"` (95 bytes) to the envelope bytes.
  const size = bytes.length + 95;
  if (size > MAX_EVENT_BYTES) {
    throw new AccordError(
      ErrorCode.PROTOCOL_TOO_LARGE,
      `signed event would be ${size} bytes (limit ${MAX_EVENT_BYTES})`,
      {
        details: { size, maxBytes: MAX_EVENT_BYTES },
      },
    );
  }
  const sig = toBase64Url(await signBytes(key, bytes));
  // The event is envelopeObject's literal plus `sig`, never a spread: `{ ...envelope, sig }` gave
  // every event signed concurrently a V8 hidden class of its own (≈ 300 bytes each).
  o['sig'] = sig;
  return {
    event: o as unknown as SignedEvent,
    bytes: signedBytes(head, sig, tail),
  };
}

const COMMA = 0x2c;

/** `head` without its `}`, then `,"sig":"<sig>",`, then `tail` without its `{`. */
function signedBytes(head: Uint8Array, sig: string, tail: Uint8Array): Uint8Array {
  const member = ENCODER.encode(`,"sig":"${sig}",`);
  const out = new Uint8Array(head.length - 1 + member.length + tail.length - 1);
  out.set(head.subarray(0, head.length - 1));
  out.set(member, head.length - 1);
  out.set(tail.subarray(1), head.length - 1 + member.length);
  return out;
}

/**
 * True when `event.sig` is a valid signature of its envelope by the key embedded in `event.device`.
 *
 * @remarks Never rejects: malformed fields or signatures give false. Checks the signature only,
 * not the schema, the facility or whether the device is enrolled.
 */
export async function verifyEvent(event: SignedEvent): Promise<boolean> {
  let bytes: Uint8Array;
  let sig: Uint8Array;
  try {
    bytes = envelopeBytes(event);
    sig = fromBase64Url(event.sig);
  } catch {
    return false;
  }
  return verifyBytes(event.device, bytes, sig);
}

/**
 * Verifies many events, keeping up to `concurrency` verifications in flight (DESIGN §8: WebCrypto
 * verifies on worker threads, so concurrent calls use every core).
 *
 * @returns one boolean per event, in input order. Never rejects.
 */
export async function verifyEvents(
  events: readonly SignedEvent[],
  opts: { concurrency?: number } = {},
): Promise<boolean[]> {
  const results = new Array<boolean>(events.length).fill(false);
  const requested = opts.concurrency ?? DEFAULT_VERIFY_CONCURRENCY;
  const limit =
    Number.isFinite(requested) && requested >= 1 ? Math.floor(requested) : DEFAULT_VERIFY_CONCURRENCY;
  const width = Math.max(1, Math.min(limit, events.length));
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < events.length) {
      const i = next++;
      results[i] = await verifyEvent(events[i]!);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < width; i++) lanes.push(lane());
  await Promise.all(lanes);
  return results;
}

/**
 * Decodes a signed event from its canonical bytes and validates its shape.
 *
 * @remarks Never throws. Does NOT verify the signature (see {@link verifyEvent}). Errors:
 * those of `canonicalDecode` (`PROTOCOL_TOO_LARGE`, `PROTOCOL_BAD_ENCODING`,
 * `PROTOCOL_NOT_CANONICAL`), then `PROTOCOL_SCHEMA`.
 */
export function decodeSignedEvent(bytes: Uint8Array, opts: { maxBytes?: number } = {}): Result<SignedEvent> {
  const decoded = canonicalDecode(bytes, opts);
  if (!decoded.ok) return err(decoded.error);
  // The hand-written check first (the hot path of sync); zod only to explain a failure.
  if (isSignedEvent(decoded.value)) return ok(decoded.value);
  return parseWith(signedEventSchema, decoded.value, 'signed event');
}
