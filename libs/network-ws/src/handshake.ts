import type { PeerMetadata } from '@automerge/automerge-repo';
import {
  encodeWireHandshake,
  fromBase64Url,
  randomBytes,
  signBytes,
  toBase64Url,
  verifyBytes,
  WIRE_NONCE_BYTES,
  wireAuthTranscript,
  wirePeerMetadataSchema,
  type DeviceId,
  type DeviceKeyPair,
  type WireHandshake,
  type WirePeerMetadata,
  type WireTranscriptFacts,
} from '@accord/protocol';
import type { WebSocket } from 'ws';
import {
  DEFAULT_LIMITS,
  DEFAULT_TIMINGS,
  type CommonAdapterOptions,
  type LinkLimits,
  type LinkTimings,
} from './types.js';

/** A fresh random handshake nonce (base64url of 32 bytes). */
export function newNonce(): string {
  return toBase64Url(randomBytes(WIRE_NONCE_BYTES));
}

/** Signs the transcript for `role` with `key`; returns base64url. */
export async function proveIdentity(
  key: DeviceKeyPair,
  role: 'client' | 'server',
  facts: WireTranscriptFacts,
): Promise<string> {
  return toBase64Url(await signBytes(key, wireAuthTranscript(role, facts)));
}

/** True when `signature` (base64url, schema-checked) proves `device` signed the transcript for `role`. */
export async function checkIdentity(
  device: DeviceId,
  role: 'client' | 'server',
  facts: WireTranscriptFacts,
  signature: string,
): Promise<boolean> {
  let sig: Uint8Array;
  try {
    sig = fromBase64Url(signature);
  } catch {
    return false;
  }
  return verifyBytes(device, wireAuthTranscript(role, facts), sig);
}

/** Sends one handshake message as a text frame (no-op once the socket is closing). */
export function sendHandshake(ws: WebSocket, message: WireHandshake): void {
  if (ws.readyState === ws.OPEN) ws.send(encodeWireHandshake(message));
}

/** Our own peer metadata as announced on the wire (fields that do not fit the schema are left out). */
export function announceMetadata(meta: PeerMetadata | undefined): WirePeerMetadata {
  const candidate = {
    ...(meta?.storageId === undefined ? {} : { storageId: meta.storageId }),
    ...(meta?.isEphemeral === undefined ? {} : { isEphemeral: meta.isEphemeral }),
  };
  const parsed = wirePeerMetadataSchema.safeParse(candidate);
  if (parsed.success) return parsed.data;
  return meta?.isEphemeral === undefined ? {} : { isEphemeral: meta.isEphemeral };
}

/**
 * The metadata we report to our Repo for every authenticated peer, whatever it announced.
 *
 * @remarks Always `isEphemeral: true`: automerge-repo 2.5.6 then neither loads nor saves a stored
 * sync state for the peer (CollectionSynchronizer skips `loadSyncState` for ephemeral peers, and
 * Repo skips `saveSyncState`), so every session starts from a fresh sync state, as DESIGN.md
 * asks. The peer's `storageId` is left out: the Repo uses it only to record the heads each peer's
 * storage holds (`DocHandle.setSyncInfo`, for remote-heads gossip, which Accord does not enable),
 * and on every sync message from a peer that has one it hashes each of the peer's heads twice in
 * JavaScript (`encodeHeads`): about 0.4% of a relay's main thread while devices push (libs/relay
 * README), for heads nothing in Accord reads.
 */
export const PEER_METADATA: PeerMetadata = Object.freeze({ isEphemeral: true });

/** Resolved limits and timings of an adapter. */
export function resolveSettings(options: CommonAdapterOptions): { limits: LinkLimits; timings: LinkTimings } {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const timings = { ...DEFAULT_TIMINGS, ...options.timings };
  for (const [name, value] of Object.entries({ ...limits, ...timings })) {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`network-ws: ${name} must be a non-negative number`);
  }
  return { limits, timings };
}
