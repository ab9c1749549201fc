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

// A field envelopeObject sets but ENVELOPE_KEYS lacks would go unsigned: checked once, on an
// envelope with every optional field set.
for (const k of Object.keys(
  envelopeObject({
    subject: {},
    basis: {},
    supersedes: '',
  } as unknown as EventEnvelope),
)) {
  if (!(ENVELOPE_KEYS as readonly string[]).includes(k)) throw new Error(`ENVELOPE_KEYS lacks ${k}`);
}

/** The envelope's members in canonical key order, so the encoder takes the object in one piece. */
function inCanonicalOrder(o: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const k of ENVELOPE_KEYS) if (k in o) out[k] = o[k]!;
  return out;
}

/**
 * Signs bytes with a device's private key: the 64-byte Ed25519 signature ({@link signBytes} is the
 * WebCrypto one; a runtime may offer a cheaper one for the same key).
 */
export type EventSigner = (bytes: Uint8Array) => Promise<Uint8Array>;

/**
 * Signs an envelope and returns the signed event together with its canonical bytes (what
 * {@link encodeSignedEvent} would return), encoding the envelope once instead of twice.
 *
 * @remarks `sig` sorts between `seq` and `subject` among the envelope's keys, so the canonical
 * text of the signed event is the envelope's text with the `sig` member put in before the
 * `subject` member. Same checks and errors as {@link signEvent}. `sign` must sign with `key`'s
 * private key (Ed25519 is deterministic: any signer of that key gives the same signature).
 */
export async function signEventEncoded(
  envelope: EventEnvelope,
  key: DeviceKeyPair,
  sign: EventSigner = (bytes) => signBytes(key, bytes),
): Promise<{ event: SignedEvent; bytes: Uint8Array }> {
  if (envelope.device !== key.deviceId) {
    throw new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'envelope.device is not the signing key', {
      details: { device: envelope.device, key: key.deviceId },
    });
  }
  const o = envelopeObject(envelope);
  // One text and one UTF-8 encoding: the signed bytes are these bytes with the sig member put in
  // (the append path's garbage and copies are its main cost).
  const text = canonicalStringify(inCanonicalOrder(o));
  const bytes = ENCODER.encode(text);
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
  // Found before the signature is awaited: the text is not kept alive while it is made.
  const offset = subjectOffset(text, bytes);
  const sig = toBase64Url(await sign(bytes));
  // The event is envelopeObject's literal plus `sig`, never a spread: `{ ...envelope, sig }` gave
  // every event signed concurrently a V8 hidden class of its own (≈ 300 bytes each).
  o['sig'] = sig;
  return { event: o as unknown as SignedEvent, bytes: withSig(bytes, offset, sig) };
}

/**
 * The byte offset in `bytes` (the UTF-8 of `text`) of the top-level `,"subject":`: its last
 * occurrence, since only the subject's strings, `supersedes`, `type` and `v` follow it, and none of
 * them can hold an unescaped `"`.
 */
function subjectOffset(text: string, bytes: Uint8Array): number {
  const at = text.lastIndexOf(',"subject":');
  if (at < 0) throw new Error('an encoded envelope has a subject');
  return bytes.length === text.length ? at : utf8Length(text, at); // equal lengths: all ASCII
}

/** The UTF-8 length of `text.slice(0, end)` (well formed: the encoder refuses lone surrogates). */
function utf8Length(text: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4; // a surrogate pair: one 4-byte sequence
      i++;
    } else n += 3;
  }
  return n;
}

/** `bytes` with `,"sig":"<sig>"` put in at `offset` (sig is base64url: ASCII). */
function withSig(bytes: Uint8Array, offset: number, sig: string): Uint8Array {
  const out = new Uint8Array(bytes.length + 9 + sig.length);
  out.set(bytes.subarray(0, offset));
  let o = offset;
  for (let i = 0; i < SIG_OPEN.length; i++) out[o++] = SIG_OPEN[i]!;
  for (let i = 0; i < sig.length; i++) out[o++] = sig.charCodeAt(i);
  out[o++] = QUOTE;
  out.set(bytes.subarray(offset), o);
  return out;
}

const QUOTE = 0x22;
/** `,"sig":"` */
const SIG_OPEN = ENCODER.encode(',"sig":"');

/**
 * The offset in a signed event's canonical bytes of its `,"sig":"<sig>"` member, or -1 when the
 * bytes hold no such member for `sig`.
 *
 * @remarks The bytes without that member (`SIG_MEMBER_EXTRA + sig.length` bytes from the offset)
 * are the envelope's canonical bytes, what the device signed: a verifier that has the bytes an
 * event arrived as need not encode its envelope again (see {@link withSig}, the inverse). The
 * member is the last `,"sig":"` of the bytes: only the subject's strings, `supersedes`, `type` and
 * `v` follow it, and none of them can hold an unescaped `"`. Scanned from the end (it sits near it).
 */
export function sigMemberOffset(bytes: Uint8Array, sig: string): number {
  const open = SIG_OPEN.length;
  for (let at = bytes.length - open - sig.length - 1; at >= 0; at--) {
    if (bytes[at] !== SIG_OPEN[0] || bytes[at + 1] !== SIG_OPEN[1]) continue;
    let k = 2;
    while (k < open && bytes[at + k] === SIG_OPEN[k]) k++;
    if (k < open) continue;
    for (let i = 0; i < sig.length; i++) if (bytes[at + open + i] !== sig.charCodeAt(i)) return -1;
    return bytes[at + open + sig.length] === QUOTE ? at : -1;
  }
  return -1;
}

/** Bytes of the `sig` member besides the signature's own characters: `,"sig":"` and the closing `"`. */
export const SIG_MEMBER_EXTRA = SIG_OPEN.length + 1;

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
