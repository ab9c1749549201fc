// Test helpers, exported as `@accord/network-ws/testing`: a raw, hand-driven wire client for
// hostile-peer tests, and an awaitable view of adapter events. Never used in production code.
import type { IncomingMessage } from 'node:http';
import {
  encodeWireFrame,
  decodeWireFrame,
  encodeWireHandshake,
  parseWireHandshake,
  WIRE_VERSION,
  WireHttpHeader,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
  type WireFrameHeader,
  type WireHandshake,
  type WirePeerMetadata,
} from '@accord/protocol';
import { WebSocket } from 'ws';
import { newNonce, proveIdentity } from './handshake.js';
import type { NetworkEvent, NetworkEventListener } from './types.js';

/** One frame a {@link RawClient} received. */
export interface RawFrame {
  readonly binary: boolean;
  readonly bytes: Uint8Array;
  /** The decoded handshake message of a text frame, if it parses. */
  readonly handshake?: WireHandshake;
  /** The decoded header of a binary frame, if it decodes. */
  readonly header?: WireFrameHeader;
}

/** How a raw connection ended. */
export interface RawClose {
  readonly code: number;
  readonly reason: string;
}

/** Options of {@link RawClient.dial}: every upgrade header can be set (or left out) by hand. */
export interface RawDialOptions {
  readonly device?: string;
  readonly facility?: string;
  readonly version?: string;
  /** Answer pings automatically (default true); false simulates a dead peer. */
  readonly autoPong?: boolean;
  /** The local (source) address to dial from, e.g. another loopback address such as 127.0.0.2. */
  readonly localAddress?: string;
}

/** A frame header without its sequence number (the client numbers frames itself). */
export type UnnumberedHeader = WireFrameHeader extends infer H
  ? H extends { seq: number }
    ? Omit<H, 'seq'> & { seq?: number }
    : H
  : never;

/** The outcome of a raw dial: refused at the upgrade, or an open socket. */
export type RawDial =
  | { readonly kind: 'refused'; readonly status: number; readonly errorCode: string | undefined }
  | { readonly kind: 'open'; readonly client: RawClient };

/**
 * A WebSocket client driven by hand: sends exactly what a test tells it to and records every
 * frame it receives, so tests can assert on raw bytes (e.g. that a refused peer saw nothing).
 */
export class RawClient {
  readonly ws: WebSocket;
  /** Every frame received, in order. */
  readonly frames: RawFrame[] = [];
  /** Resolves when the socket closes. */
  readonly closed: Promise<RawClose>;
  /** The server's device id, once a challenge was received. */
  serverId: DeviceId | undefined;
  #seq = 0;
  readonly #waiters = new Set<() => void>();

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.#wake();
      });
    });
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : data;
      const frame: RawFrame = isBinary
        ? { binary: true, bytes, ...decodedHeader(bytes) }
        : { binary: false, bytes, ...decodedHandshake(bytes) };
      this.frames.push(frame);
      this.#wake();
    });
  }

  /** Opens a connection with the given upgrade headers; resolves once open or refused. */
  static dial(url: string, options: RawDialOptions): Promise<RawDial> {
    const headers: Record<string, string> = {};
    if (options.device !== undefined) headers[WireHttpHeader.Device] = options.device;
    if (options.facility !== undefined) headers[WireHttpHeader.Facility] = options.facility;
    headers[WireHttpHeader.Version] = options.version ?? String(WIRE_VERSION);
    const ws = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      autoPong: options.autoPong ?? true,
      maxPayload: 256 * 1024 * 1024,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    const client = new RawClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve({ kind: 'open', client }));
      ws.once('unexpected-response', (req, res: IncomingMessage) => {
        const code = res.headers[WireHttpHeader.Error];
        res.resume();
        req.destroy();
        resolve({
          kind: 'refused',
          status: res.statusCode ?? 0,
          errorCode: typeof code === 'string' ? code : undefined,
        });
      });
      ws.once('error', reject);
    });
  }

  /** Sends a text frame. */
  sendText(text: string): void {
    this.ws.send(text);
  }

  /** Sends a handshake message. */
  sendHandshake(message: WireHandshake): void {
    this.ws.send(encodeWireHandshake(message));
  }

  /** Sends raw binary bytes as one frame. */
  sendBytes(bytes: Uint8Array): void {
    this.ws.send(bytes);
  }

  /** Sends a binary frame, numbering it with the next sequence number unless `seq` is given. */
  sendFrame(header: UnnumberedHeader, data?: Uint8Array): void {
    const numbered = (
      header.type === 'ack' ? header : { ...header, seq: header.seq ?? ++this.#seq }
    ) as WireFrameHeader;
    this.ws.send(encodeWireFrame(numbered, data));
  }

  /**
   * Runs the client side of the handshake: hello, wait for the challenge, sign, auth, wait for
   * welcome. `signWith` signs the transcript with another key than `identity` (a forger).
   * Resolves 'welcome', or the close if the server closed the connection first.
   */
  async authenticate(
    identity: { deviceId: DeviceId },
    facility: FacilityId,
    options: { signWith?: DeviceKeyPair; peerMetadata?: WirePeerMetadata; helloDevice?: DeviceId } = {},
  ): Promise<'welcome' | RawClose> {
    const nonce = newNonce();
    this.sendHandshake({
      type: 'hello',
      v: WIRE_VERSION,
      deviceId: options.helloDevice ?? identity.deviceId,
      facility,
      nonce,
      peerMetadata: options.peerMetadata ?? {},
    });
    const challenge = await this.next((f) => f.handshake?.type === 'challenge');
    if (challenge === undefined || challenge.handshake?.type !== 'challenge') return this.closed;
    this.serverId = challenge.handshake.deviceId;
    const key = options.signWith ?? (identity as DeviceKeyPair);
    const facts = {
      facility,
      clientId: identity.deviceId,
      serverId: challenge.handshake.deviceId,
      clientNonce: nonce,
      serverNonce: challenge.handshake.nonce,
    };
    this.sendHandshake({ type: 'auth', signature: await proveIdentity(key, 'client', facts) });
    const welcome = await this.next((f) => f.handshake?.type === 'welcome');
    return welcome === undefined ? this.closed : 'welcome';
  }

  /**
   * The first frame (already received or future) matching `predicate`, or undefined if the
   * socket closes first. Rejects after `timeoutMs` (a failure guard, not a wait).
   */
  next(predicate: (frame: RawFrame) => boolean, timeoutMs = 10_000): Promise<RawFrame | undefined> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.frames.find(predicate);
        if (hit !== undefined || this.ws.readyState === WebSocket.CLOSED) {
          this.#waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error('RawClient.next: timed out'));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Closes the connection. */
  close(): void {
    this.ws.close();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}

function decodedHeader(bytes: Uint8Array): { header?: WireFrameHeader } {
  const r = decodeWireFrame(bytes);
  return r.ok ? { header: r.value.header } : {};
}

function decodedHandshake(bytes: Uint8Array): { handshake?: WireHandshake } {
  const r = parseWireHandshake(Buffer.from(bytes).toString('utf8'));
  return r.ok ? { handshake: r.value } : {};
}

/** Anything with the adapters' `subscribe(listener)`. */
export interface EventSource {
  subscribe(listener: NetworkEventListener): () => void;
}

/**
 * Resolves with the first event from `source` matching `predicate` (from now on). Rejects after
 * `timeoutMs` (a failure guard, not a wait).
 */
export function nextEvent<T extends NetworkEvent>(
  source: EventSource,
  predicate: (event: NetworkEvent) => event is T,
  timeoutMs?: number,
): Promise<T>;
export function nextEvent(
  source: EventSource,
  predicate: (event: NetworkEvent) => boolean,
  timeoutMs?: number,
): Promise<NetworkEvent>;
export function nextEvent(
  source: EventSource,
  predicate: (event: NetworkEvent) => boolean,
  timeoutMs = 10_000,
): Promise<NetworkEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error('nextEvent: timed out'));
    }, timeoutMs);
    const off = source.subscribe((event) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

export {
  docWhere,
  findDoc,
  makeTestFacility,
  startClientNode,
  startServerNode,
  type ClientNode,
  type ServerNode,
  type TestFacility,
} from './harness.js';
