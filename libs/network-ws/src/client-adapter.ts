import type { IncomingMessage } from 'node:http';
import { NetworkAdapter, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo';
import {
  parseWireFeatures,
  parseWireHandshake,
  WIRE_FEATURE_SEGMENTS,
  WIRE_MAX_HANDSHAKE_BYTES,
  WIRE_VERSION,
  WireHttpHeader,
  type DeviceId,
  type WireChallenge,
  type WireTranscriptFacts,
} from '@accord/protocol';
import type { WebSocket } from 'ws';
import { backoffDelay, type BackoffOptions, type RandomSource } from './backoff.js';
import { CloseCode, refusalErrorCode, type RefusalReason, type SessionEndReason } from './close-codes.js';
import { GuardedWebSocket } from './guarded-websocket.js';
import {
  announceMetadata,
  checkIdentity,
  newNonce,
  PEER_METADATA,
  proveIdentity,
  resolveSettings,
  sendHandshake,
} from './handshake.js';
import { emitSegments } from './frames.js';
import { Link, rawBytes, type LinkHost } from './link.js';
import { Telemetry } from './telemetry.js';
import type {
  AdapterStats,
  CommonAdapterOptions,
  LinkLimits,
  LinkTimings,
  NetworkEventListener,
} from './types.js';

/** Options of {@link WebSocketClientAdapter}. */
export interface WebSocketClientAdapterOptions extends CommonAdapterOptions {
  /** The `ws://` or `wss://` URL of the peer that accepts us. */
  readonly url: string;
  /** When set, the server must prove this exact device id (e.g. the relay's), on top of the roster check. */
  readonly expectedPeer?: DeviceId;
  /** Reconnect backoff; default base 500 ms, max 30 s. */
  readonly backoff?: Partial<BackoffOptions>;
  /** Source of jitter; default `Math.random`. Inject `seededRandom(seed)` for reproducible runs. */
  readonly random?: RandomSource;
  /** whenReady() resolves after the first session or after this long, whichever comes first. Default 1000 ms. */
  readonly readyTimeoutMs?: number;
}

/** The client's connection state, as reported by `stats().state`. */
export type ClientState = 'idle' | 'connecting' | 'connected' | 'waiting' | 'offline' | 'closed';

/** Client stats: the adapter stats plus the reconnect state. */
export interface ClientAdapterStats extends AdapterStats {
  readonly state: ClientState;
  /** Consecutive failed attempts since the last session (drives the backoff). */
  readonly attempt: number;
  /** When the next dial is scheduled (adapter clock), if one is. */
  readonly nextDialAt: number | undefined;
}

interface Attempt {
  readonly ws: WebSocket;
  readonly nonce: string;
  readonly timer: ReturnType<typeof setTimeout>;
  state: 'opening' | 'challenge' | 'verifying' | 'welcome' | 'linked' | 'over';
  serverId?: DeviceId;
  /** The optional wire features the server named in its 101 answer (none: an older server). */
  features: ReadonlySet<string>;
}

/**
 * An automerge-repo NetworkAdapter that keeps one authenticated WebSocket session to one URL.
 *
 * @remarks Reconnects after any fault with exponential backoff and jitter; each session is
 * announced to the Repo as a new peer (peer-disconnected, then peer-candidate with
 * `isEphemeral: true`), so sync restarts from fresh sync state. See the package README.
 */
export class WebSocketClientAdapter extends NetworkAdapter {
  readonly #options: WebSocketClientAdapterOptions;
  readonly #telemetry: Telemetry;
  readonly #limits: LinkLimits;
  readonly #timings: LinkTimings;
  readonly #backoff: BackoffOptions;
  readonly #random: RandomSource;
  readonly #ready: Promise<void>;
  #resolveReady: () => void = () => {};
  #isReady = false;
  #attempt: Attempt | undefined;
  #link: Link | undefined;
  #failures = 0;
  #hadSession = false;
  #dialTimer: ReturnType<typeof setTimeout> | undefined;
  #nextDialAt: number | undefined;
  #connected = false;
  #online = true;
  #closed = false;
  #metadata: PeerMetadata | undefined;

  constructor(options: WebSocketClientAdapterOptions) {
    super();
    this.#options = options;
    this.#telemetry = new Telemetry(
      `ws-client ${options.identity.deviceId.slice(0, 9)}→${options.url}`,
      options,
    );
    ({ limits: this.#limits, timings: this.#timings } = resolveSettings(options));
    this.#backoff = { baseMs: options.backoff?.baseMs ?? 500, maxMs: options.backoff?.maxMs ?? 30_000 };
    if (!(this.#backoff.baseMs > 0) || !(this.#backoff.maxMs >= this.#backoff.baseMs)) {
      throw new RangeError('network-ws: backoff needs 0 < baseMs <= maxMs');
    }
    this.#random = options.random ?? Math.random;
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
  }

  /** True after the first session, the ready timeout, or going offline. */
  isReady(): boolean {
    return this.#isReady;
  }

  /** Resolves when isReady() becomes true. */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /**
   * Called by the Repo: starts dialing.
   *
   * @remarks `peerId` must equal `identity.deviceId` (build the Repo with `peerId: peerIdOf(id)`);
   * otherwise the adapter logs the mismatch and stays inert.
   */
  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    if ((peerId as string) !== this.#options.identity.deviceId) {
      this.#telemetry.log(
        `Repo peer id ${peerId} is not this device's id; use peerIdOf(identity.deviceId). Not dialing.`,
      );
      this.#markReady();
      return;
    }
    if (this.#connected || this.#closed) return;
    this.peerId = peerId;
    this.#metadata = peerMetadata;
    this.#connected = true;
    const readyTimer = setTimeout(() => this.#markReady(), this.#options.readyTimeoutMs ?? 1000);
    readyTimer.unref();
    this.#dial();
  }

  /** Called by the Repo: sends over the current session; dropped when there is none. */
  send(message: Message): void {
    const link = this.#link;
    if (link === undefined || (message.targetId as string) !== link.peer) {
      this.#telemetry.log(`no session with ${message.targetId}; ${message.type} dropped`);
      return;
    }
    link.send(message);
  }

  /** Called by the Repo on shutdown: closes the session and stops reconnecting, for good. */
  disconnect(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop(CloseCode.Normal, 'shutdown');
    this.#markReady();
  }

  /**
   * Takes this device off the network (`false`: closes the session with 1001 and stops
   * reconnecting) or back on (`true`: dials at once, backoff reset). Idempotent.
   */
  setOnline(online: boolean): void {
    if (this.#online === online) return;
    this.#online = online;
    this.#telemetry.emit({ type: 'online', at: this.#telemetry.now(), online });
    if (!online) {
      this.#stop(CloseCode.GoingAway, 'offline');
      this.#markReady();
      return;
    }
    this.#failures = 0;
    this.#dial();
  }

  /** True unless setOnline(false) was called. */
  get online(): boolean {
    return this.#online;
  }

  /**
   * Watchdog: ends the current session (close 4000) or attempt and dials again at once, so sync
   * restarts from fresh sync state. No-op when offline or disconnected.
   */
  forceReconnect(): void {
    if (!this.#online || this.#closed || !this.#connected) return;
    if (this.#link !== undefined) {
      this.#link.close(CloseCode.Reset, 'reset'); // the end handler dials again
      return;
    }
    this.#abandonAttempt();
    this.#cancelDial();
    this.#dial();
  }

  /** The device id of the connected peer, if any. */
  peers(): DeviceId[] {
    return this.#link === undefined ? [] : [this.#link.peer];
  }

  /** Adds a listener of network events; returns the function that removes it. */
  subscribe(listener: NetworkEventListener): () => void {
    return this.#telemetry.subscribe(listener);
  }

  /** A snapshot of counters, the session and the reconnect state. */
  stats(): ClientAdapterStats {
    const t = this.#telemetry;
    return {
      online: this.#online,
      peers: this.#link === undefined ? [] : [this.#link.stats()],
      framesIn: t.framesIn,
      framesOut: t.framesOut,
      bytesIn: t.bytesIn,
      bytesOut: t.bytesOut,
      refused: { ...t.refused },
      sessionsEnded: { ...t.sessionsEnded },
      forbiddenDocuments: t.forbiddenDocuments,
      withheld: t.withheld,
      reconnects: t.reconnects,
      stalls: t.stalls,
      state: this.#state(),
      attempt: this.#failures,
      nextDialAt: this.#nextDialAt,
    };
  }

  #state(): ClientState {
    if (this.#closed) return 'closed';
    if (!this.#online) return 'offline';
    if (this.#link !== undefined) return 'connected';
    if (this.#attempt !== undefined) return 'connecting';
    if (this.#dialTimer !== undefined) return 'waiting';
    return 'idle';
  }

  #markReady(): void {
    if (this.#isReady) return;
    this.#isReady = true;
    this.#resolveReady();
  }

  #stop(code: number, reason: SessionEndReason): void {
    this.#cancelDial();
    this.#abandonAttempt();
    this.#link?.close(code, reason);
  }

  #cancelDial(): void {
    if (this.#dialTimer !== undefined) clearTimeout(this.#dialTimer);
    this.#dialTimer = undefined;
    this.#nextDialAt = undefined;
  }

  #abandonAttempt(): void {
    const a = this.#attempt;
    if (a === undefined) return;
    this.#attempt = undefined;
    a.state = 'over';
    clearTimeout(a.timer);
    a.ws.terminate();
  }

  #scheduleDial(delayMs: number, attempt: number): void {
    if (!this.#online || this.#closed || !this.#connected || this.#dialTimer !== undefined) return;
    const at = this.#telemetry.now();
    this.#nextDialAt = at + delayMs;
    this.#telemetry.emit({ type: 'reconnect-scheduled', at, attempt, delayMs });
    this.#dialTimer = setTimeout(() => {
      this.#dialTimer = undefined;
      this.#nextDialAt = undefined;
      this.#dial();
    }, delayMs);
  }

  #retryLater(): void {
    const attempt = this.#failures++;
    this.#scheduleDial(backoffDelay(attempt, this.#backoff, this.#random), attempt);
  }

  #dial(): void {
    if (
      !this.#online ||
      this.#closed ||
      !this.#connected ||
      this.#link !== undefined ||
      this.#attempt !== undefined
    )
      return;
    const { identity, facility, url } = this.#options;
    let ws: WebSocket;
    try {
      ws = new GuardedWebSocket(url, {
        headers: {
          [WireHttpHeader.Device]: identity.deviceId,
          [WireHttpHeader.Facility]: facility,
          [WireHttpHeader.Version]: String(WIRE_VERSION),
          [WireHttpHeader.Features]: (this.#options.features ?? [WIRE_FEATURE_SEGMENTS]).join(','),
        },
        maxPayload: this.#limits.maxPayload,
        perMessageDeflate: false,
        handshakeTimeout: this.#timings.authTimeoutMs,
      });
    } catch (e) {
      this.#telemetry.log(`cannot dial ${url}: ${String(e)}`);
      this.#retryLater();
      return;
    }
    const attempt: Attempt = {
      ws,
      nonce: newNonce(),
      state: 'opening',
      features: new Set(),
      timer: setTimeout(
        () => this.#fail(attempt, CloseCode.AuthTimeout, 'auth-timeout', 'handshake not completed in time'),
        this.#timings.authTimeoutMs,
      ),
    };
    attempt.timer.unref();
    this.#attempt = attempt;
    ws.on('upgrade', (res: IncomingMessage) => {
      attempt.features = parseWireFeatures(res.headers[WireHttpHeader.Features]);
    });
    ws.on('unexpected-response', (req, res: IncomingMessage) => {
      const header = res.headers[WireHttpHeader.Error];
      const code = typeof header === 'string' ? header : 'none';
      this.#telemetry.refuse(
        'upgrade',
        'server-refused',
        res.statusCode ?? 0,
        `HTTP ${res.statusCode} (${code})`,
      );
      res.resume();
      req.destroy();
      this.#attemptOver(attempt);
    });
    ws.on('open', () => {
      if (attempt.state !== 'opening') return;
      attempt.state = 'challenge';
      sendHandshake(ws, {
        type: 'hello',
        v: WIRE_VERSION,
        deviceId: identity.deviceId,
        facility,
        nonce: attempt.nonce,
        peerMetadata: announceMetadata(this.#metadata),
      });
    });
    ws.on('message', (data, isBinary) => {
      this.#onHandshakeFrame(attempt, rawBytes(data), isBinary).catch((e: unknown) => {
        this.#telemetry.log(`handshake failed internally: ${String(e)}`);
        this.#attemptOver(attempt);
      });
    });
    ws.on('error', (e) => {
      this.#telemetry.log(`connection to ${url} failed: ${e.message}`);
      this.#attemptOver(attempt);
    });
    ws.on('close', (code, reason) => {
      if (attempt.state !== 'over' && code >= 4000)
        this.#telemetry.log(`server closed the handshake: ${code} ${reason.toString()}`);
      this.#attemptOver(attempt);
    });
  }

  async #onHandshakeFrame(a: Attempt, bytes: Uint8Array, isBinary: boolean): Promise<void> {
    if (a.state === 'over' || a.state === 'linked') return;
    if (isBinary || bytes.length > WIRE_MAX_HANDSHAKE_BYTES) {
      return this.#fail(
        a,
        CloseCode.AuthFailed,
        'auth-failed',
        'binary or oversized frame during the handshake',
      );
    }
    const parsed = parseWireHandshake(Buffer.from(bytes).toString('utf8'));
    if (!parsed.ok) return this.#fail(a, CloseCode.AuthFailed, 'auth-failed', parsed.error.message);
    const m = parsed.value;
    if (a.state === 'challenge' && m.type === 'challenge') return this.#onChallenge(a, m);
    if (a.state === 'welcome' && m.type === 'welcome') return this.#onWelcome(a);
    if (m.type === 'error') {
      this.#telemetry.refuse(
        'handshake',
        'server-refused',
        CloseCode.AuthFailed,
        `server reported ${m.code}: ${m.message}`,
        a.serverId,
      );
      return this.#attemptOver(a);
    }
    return this.#fail(a, CloseCode.AuthFailed, 'auth-failed', `unexpected ${m.type} in state ${a.state}`);
  }

  async #onChallenge(a: Attempt, m: WireChallenge): Promise<void> {
    const { identity, facility, expectedPeer } = this.#options;
    const server = m.deviceId;
    a.serverId = server;
    if (m.facility !== facility)
      return this.#fail(a, CloseCode.Forbidden, 'wrong-facility', `server is in facility ${m.facility}`);
    if (server === identity.deviceId)
      return this.#fail(a, CloseCode.Forbidden, 'self', 'connected to itself');
    if (expectedPeer !== undefined && server !== expectedPeer) {
      return this.#fail(a, CloseCode.Forbidden, 'server-identity', `expected ${expectedPeer}, got ${server}`);
    }
    let reason = this.#rosterCheck(server);
    const membership = this.#options.membership;
    if (reason === 'unknown-device' && m.membership !== undefined && membership !== undefined) {
      // The server may have been enrolled after our roster was written: learn its proof.
      a.state = 'verifying'; // no second challenge while we wait
      const learned = await membership.learn(m.membership, server).catch(() => false);
      if (a.state !== 'verifying') return;
      if (learned) reason = this.#rosterCheck(server);
    }
    if (reason !== undefined)
      return this.#fail(a, CloseCode.Forbidden, reason, 'server not allowed by the roster');
    const facts: WireTranscriptFacts = {
      facility,
      clientId: identity.deviceId,
      serverId: server,
      clientNonce: a.nonce,
      serverNonce: m.nonce,
    };
    a.state = 'verifying';
    const valid = await checkIdentity(server, 'server', facts, m.signature);
    if (a.state !== 'verifying') return;
    if (!valid)
      return this.#fail(
        a,
        CloseCode.AuthFailed,
        'server-identity',
        'server signature does not match its device id',
      );
    const signature = await proveIdentity(identity, 'client', facts);
    if (a.state !== 'verifying') return;
    a.state = 'welcome';
    sendHandshake(a.ws, { type: 'auth', signature });
  }

  #onWelcome(a: Attempt): void {
    const server = a.serverId;
    if (server === undefined) return;
    a.state = 'linked';
    clearTimeout(a.timer);
    this.#attempt = undefined;
    for (const event of ['unexpected-response', 'upgrade', 'open', 'message', 'error', 'close'] as const)
      a.ws.removeAllListeners(event);
    const link = new Link(a.ws, server, this.#host, a.features, this.#options.features);
    this.#link = link;
    this.#failures = 0;
    if (this.#hadSession) this.#telemetry.reconnects++;
    this.#hadSession = true;
    this.#telemetry.log(`session with ${server} established`);
    this.#markReady();
    this.emit('peer-candidate', {
      peerId: server as string as PeerId,
      peerMetadata: PEER_METADATA,
    });
    this.#telemetry.emit({ type: 'peer-connected', at: this.#telemetry.now(), peer: server });
  }

  #rosterCheck(device: DeviceId): RefusalReason | undefined {
    let entry;
    try {
      entry = this.#options.roster.lookup(device);
    } catch (e) {
      this.#telemetry.log(`roster lookup threw: ${String(e)}`);
      return 'unknown-device';
    }
    if (entry === undefined) return 'unknown-device';
    if (entry.revoked) return 'revoked-device';
    if (entry.facility !== this.#options.facility) return 'wrong-facility';
    return undefined;
  }

  // Refuses the server during the handshake: report, tell it why, close, retry later.
  #fail(a: Attempt, code: number, reason: RefusalReason, detail: string): void {
    if (a.state === 'over' || a.state === 'linked') return;
    this.#telemetry.refuse('handshake', reason, code, detail, a.serverId);
    sendHandshake(a.ws, { type: 'error', code: refusalErrorCode(reason), message: detail.slice(0, 256) });
    try {
      if (a.ws.readyState === a.ws.OPEN) a.ws.close(code, reason);
      else a.ws.terminate();
    } catch {
      a.ws.terminate();
    }
    this.#attemptOver(a);
  }

  // An attempt ended without a session (refused, failed, timed out): retry with backoff.
  #attemptOver(a: Attempt): void {
    if (a.state === 'over' || a.state === 'linked') return;
    a.state = 'over';
    clearTimeout(a.timer);
    if (this.#attempt === a) this.#attempt = undefined;
    // A socket already closing keeps its close frame; anything else is cut now.
    if (a.ws.readyState === a.ws.CONNECTING || a.ws.readyState === a.ws.OPEN) a.ws.terminate();
    this.#retryLater();
  }

  #onLinkEnded(link: Link, reason: SessionEndReason, closeCode: number): void {
    if (this.#link === link) this.#link = undefined;
    this.emit('peer-disconnected', { peerId: link.peer as string as PeerId });
    this.#telemetry.sessionEnded(link.peer, reason, closeCode);
    // An operator reset dials at once; every other fault goes through the backoff.
    if (reason === 'reset') this.#scheduleDial(0, 0);
    else this.#retryLater();
  }

  get #host(): LinkHost {
    return {
      local: this.#options.identity.deviceId,
      limits: this.#limits,
      timings: this.#timings,
      policy: this.#options.documentPolicy,
      faults: this.#options.faults,
      telemetry: this.#telemetry,
      deliver: (message) => this.emit('message', message),
      deliverSegments: (message) => emitSegments(this, message),
      ended: (link, reason, closeCode) => this.#onLinkEnded(link, reason, closeCode),
    };
  }
}
