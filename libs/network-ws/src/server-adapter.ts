import { createServer, STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { NetworkAdapter, type Message, type PeerId, type PeerMetadata } from '@automerge/automerge-repo';
import {
  isDeviceId,
  isFacilityId,
  parseWireHandshake,
  WIRE_MAX_HANDSHAKE_BYTES,
  WIRE_FEATURE_SEGMENTS,
  WIRE_MAX_MEMBERSHIP_CHARS,
  WIRE_VERSION,
  WireHttpHeader,
  parseWireFeatures,
  type DeviceId,
  type WireTranscriptFacts,
} from '@accord/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  CloseCode,
  refusalCloseCode,
  refusalErrorCode,
  type RefusalReason,
  type SessionEndReason,
} from './close-codes.js';
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

/** Options of {@link WebSocketServerAdapter}. */
export interface WebSocketServerAdapterOptions extends CommonAdapterOptions {
  /** Port to listen on (0: any free port, see `address()`); ignored when `server` is given. */
  readonly port?: number;
  /** Interface to listen on; default all interfaces. Ignored when `server` is given. */
  readonly host?: string;
  /** An existing HTTP server whose 'upgrade' requests this adapter answers (it does not own or close it). */
  readonly server?: Server;
  /**
   * With `server`: `false` leaves the server's 'upgrade' events alone; the owner routes each upgrade
   * to {@link WebSocketServerAdapter.handleUpgrade} itself (a relay serving many facilities on one
   * port). Default true.
   */
  readonly attachUpgrade?: boolean;
  /** Only upgrades to this path are handled (others are left to other listeners); default: all. */
  readonly path?: string;
  /**
   * Most connections in the handshake at once (default 64). A new connection beyond it closes the
   * oldest one still in the handshake (idle ones first) with 4429, so idle sockets cannot keep
   * enrolled devices out.
   */
  readonly maxPendingHandshakes?: number;
  /**
   * Most connections in the handshake at once from one remote address (default 8); beyond it, the
   * oldest of that address (idle ones first) is closed with 4429.
   */
  readonly maxPendingHandshakesPerAddress?: number;
}

/** Default of {@link WebSocketServerAdapterOptions.maxPendingHandshakes}. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 64;
/** Default of {@link WebSocketServerAdapterOptions.maxPendingHandshakesPerAddress}. */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS = 8;

interface Pending {
  readonly ws: WebSocket;
  readonly claimed: DeviceId;
  /** The remote address (IPv4-mapped IPv6 folded to IPv4), for the per-address limit. */
  readonly address: string;
  /** When the socket opened (monotonic ms, as the timers run), for the total handshake budget. */
  readonly openedAt: number;
  /** The hello deadline until the hello arrives, then the rest of the handshake's. */
  timer: ReturnType<typeof setTimeout>;
  state: 'hello' | 'auth' | 'verifying' | 'done';
  facts?: WireTranscriptFacts;
  /** The optional wire features the client named in its upgrade request. */
  readonly features: ReadonlySet<string>;
}

/**
 * An automerge-repo NetworkAdapter that accepts authenticated peers over WebSocket.
 *
 * @remarks Refuses unknown, revoked and other-facility devices at the HTTP upgrade (403, nothing
 * shared), then runs the mutual challenge-response of the wire protocol before any repo message;
 * the automerge-repo peer id of a session is the verified device id. One session per device: a
 * newer connection replaces the older (closed 4409). See the package README for the handshake,
 * the frame checks and the close codes.
 */
export class WebSocketServerAdapter extends NetworkAdapter {
  readonly #options: WebSocketServerAdapterOptions;
  readonly #telemetry: Telemetry;
  readonly #limits: LinkLimits;
  readonly #timings: LinkTimings;
  readonly #wss: WebSocketServer;
  readonly #http: Server;
  readonly #owned: boolean;
  readonly #links = new Map<DeviceId, Link>();
  readonly #pending = new Set<Pending>();
  readonly #everConnected = new Set<DeviceId>();
  readonly #listening: Promise<AddressInfo>;
  readonly #ready: Promise<void>;
  #resolveReady: () => void = () => {};
  #connected = false;
  #online = true;
  #closed = false;
  #metadata: PeerMetadata | undefined;
  #httpClosed: Promise<void> = Promise.resolve();

  constructor(options: WebSocketServerAdapterOptions) {
    super();
    this.#options = options;
    this.#telemetry = new Telemetry(`ws-server ${options.identity.deviceId.slice(0, 9)}`, options);
    ({ limits: this.#limits, timings: this.#timings } = resolveSettings(options));
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.#limits.maxPayload,
      perMessageDeflate: false, // no transport-level decompression bombs
      clientTracking: false,
      WebSocket: GuardedWebSocket,
    });
    // The features this side speaks, in the 101 answer: an older client ignores the header.
    const features = options.features ?? [WIRE_FEATURE_SEGMENTS];
    if (features.length > 0)
      this.#wss.on('headers', (headers) => headers.push(`${WireHttpHeader.Features}: ${features.join(',')}`));
    this.#owned = options.server === undefined;
    this.#http =
      options.server ??
      createServer((_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
        res.end('Accord WebSocket endpoint: upgrade required\n');
      });
    if (options.server === undefined || options.attachUpgrade !== false)
      this.#http.on('upgrade', this.#onUpgrade);
    this.#listening = new Promise<AddressInfo>((resolve, reject) => {
      const settle = (): void => {
        const address = this.#http.address();
        if (address !== null && typeof address === 'object') resolve(address);
        else reject(new Error('network-ws: the HTTP server has no TCP address'));
      };
      if (this.#http.listening) settle();
      else {
        this.#http.once('listening', settle);
        this.#http.once('error', reject);
      }
    });
    // Observers who never call listening() must not see an unhandled rejection.
    this.#listening.catch(() => {});
    if (this.#owned) {
      // Errors after listening (e.g. EMFILE) must not crash the process.
      this.#http.on('error', (e) => this.#telemetry.log(`HTTP server error: ${e.message}`));
      this.#http.listen(options.port ?? 0, options.host);
    }
  }

  /**
   * Answers one HTTP upgrade request as if it had arrived on the adapter's server: checks, then
   * the handshake (see `attachUpgrade`).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#onUpgrade(req, socket, head);
  }

  /** The membership proof to show in the challenge, when there is one that fits the frame. */
  #membershipProof(): string | undefined {
    try {
      const proof = this.#options.membership?.proof();
      return proof !== undefined && proof.length <= WIRE_MAX_MEMBERSHIP_CHARS ? proof : undefined;
    } catch (e) {
      this.#telemetry.log(`membership proof failed: ${String(e)}`);
      return undefined;
    }
  }

  /** Resolves with the bound address once listening (rejects if the port cannot be bound). */
  listening(): Promise<AddressInfo> {
    return this.#listening;
  }

  /** The bound address, once listening; `port` is the actual port when 0 was asked. */
  address(): AddressInfo | undefined {
    const address = this.#http.address();
    return address !== null && typeof address === 'object' ? address : undefined;
  }

  /** True when connect() was called and the adapter is neither offline nor disconnected. */
  isReady(): boolean {
    return this.#connected;
  }

  /** Resolves once the Repo connected this adapter. */
  whenReady(): Promise<void> {
    return this.#ready;
  }

  /**
   * Called by the Repo: starts accepting peers.
   *
   * @remarks `peerId` must equal `identity.deviceId` (build the Repo with `peerId: peerIdOf(id)`);
   * otherwise the adapter logs the mismatch and stays inert, since peers could not address it.
   */
  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    if ((peerId as string) !== this.#options.identity.deviceId) {
      this.#telemetry.log(
        `Repo peer id ${peerId} is not this device's id; use peerIdOf(identity.deviceId). Not accepting peers.`,
      );
      return;
    }
    this.peerId = peerId;
    this.#metadata = peerMetadata;
    this.#connected = true;
    this.#resolveReady();
  }

  /** Called by the Repo: routes a message to the session of its target; dropped when there is none. */
  send(message: Message): void {
    const link = this.#links.get(message.targetId as string as DeviceId);
    if (link === undefined) {
      this.#telemetry.log(`no session with ${message.targetId}; ${message.type} dropped`);
      return;
    }
    link.send(message);
  }

  /** Called by the Repo on shutdown: closes every session and stops accepting (see also close()). */
  disconnect(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    this.#dropAll(CloseCode.GoingAway, 'shutdown');
    this.#http.off('upgrade', this.#onUpgrade);
    if (this.#owned && this.#http.listening) {
      this.#httpClosed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeAllConnections();
    }
  }

  /** disconnect(), then resolves once the owned HTTP server has released its port. */
  async close(): Promise<void> {
    this.disconnect();
    await this.#httpClosed;
  }

  /**
   * Takes this device off the network (`false`: closes every session with 1001, answers upgrades
   * 503) or back on (`true`). Idempotent.
   */
  setOnline(online: boolean): void {
    if (this.#online === online) return;
    this.#online = online;
    this.#telemetry.emit({ type: 'online', at: this.#telemetry.now(), online });
    if (!online) this.#dropAll(CloseCode.GoingAway, 'offline');
  }

  /** True unless setOnline(false) was called. */
  get online(): boolean {
    return this.#online;
  }

  /** Ends the session of `peer` with 4000 so it reconnects with fresh sync state; false when not connected. */
  dropPeer(peer: DeviceId | PeerId): boolean {
    const link = this.#links.get(peer as string as DeviceId);
    if (link === undefined) return false;
    link.close(CloseCode.Reset, 'reset');
    return true;
  }

  /** Re-checks every connected peer against the roster; closes (4403) those no longer allowed. Returns how many. */
  revalidatePeers(): number {
    let dropped = 0;
    for (const link of [...this.#links.values()]) {
      const reason = this.#rosterCheck(link.peer);
      if (reason !== undefined) {
        this.#telemetry.refuse('session', reason, CloseCode.Forbidden, 'roster changed', link.peer);
        link.close(CloseCode.Forbidden, reason, refusalErrorCode(reason));
        dropped++;
      }
    }
    return dropped;
  }

  /** Device ids of the peers with an authenticated session. */
  peers(): DeviceId[] {
    return [...this.#links.keys()];
  }

  /** Adds a listener of network events; returns the function that removes it. */
  subscribe(listener: NetworkEventListener): () => void {
    return this.#telemetry.subscribe(listener);
  }

  /** A snapshot of counters and connected peers. */
  stats(): AdapterStats {
    const t = this.#telemetry;
    return {
      online: this.#online,
      peers: [...this.#links.values()].map((l) => l.stats()),
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
    };
  }

  #dropAll(code: number, reason: SessionEndReason): void {
    for (const p of [...this.#pending])
      this.#failPending(p, code, reason === 'offline' ? 'offline' : 'shutdown');
    for (const link of [...this.#links.values()]) link.close(code, reason);
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

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.#options.path !== undefined && pathOf(req) !== this.#options.path) return;
    socket.on('error', () => {}); // a reset during the upgrade must not crash the process
    const refuse = (status: number, reason: RefusalReason, detail: string, peer?: DeviceId): void => {
      this.#telemetry.refuse('upgrade', reason, status, detail, peer);
      const body = `${reason}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}\r\n` +
          `Connection: close\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n` +
          `${WireHttpHeader.Error}: ${refusalErrorCode(reason)}\r\n\r\n${body}`,
      );
      socket.destroy();
    };
    try {
      if (!this.#connected || !this.#online) return refuse(503, 'offline', 'not accepting peers now');
      const version = req.headers[WireHttpHeader.Version];
      if (version !== String(WIRE_VERSION))
        return refuse(426, 'unsupported-version', `wire version ${String(version)}`);
      const device = req.headers[WireHttpHeader.Device];
      const facility = req.headers[WireHttpHeader.Facility];
      if (typeof device !== 'string' || !isDeviceId(device))
        return refuse(400, 'bad-request', 'missing or malformed device header');
      if (typeof facility !== 'string' || !isFacilityId(facility))
        return refuse(400, 'bad-request', 'missing or malformed facility header', device);
      if (facility !== this.#options.facility)
        return refuse(403, 'wrong-facility', `claims facility ${facility}`, device);
      if (device === this.#options.identity.deviceId)
        return refuse(403, 'self', 'a device cannot connect to itself', device);
      const reason = this.#rosterCheck(device);
      if (reason !== undefined) return refuse(403, reason, 'roster', device);
      const address = remoteAddress(req);
      this.#makeRoom(address);
      const features = parseWireFeatures(req.headers[WireHttpHeader.Features]);
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#startHandshake(ws, device, address, features));
    } catch (e) {
      this.#telemetry.log(`upgrade failed: ${String(e)}`);
      socket.destroy();
    }
  };

  /**
   * Before a new connection joins the handshake: when its address, or the adapter, already has
   * as many connections in the handshake as allowed, closes the oldest of them (4429), preferring
   * one that has not said hello, then one not being verified.
   *
   * @remarks Evicting rather than refusing the newcomer is what keeps idle sockets from locking
   * enrolled devices out: an honest handshake takes a few round trips, an idle socket holds on.
   */
  #makeRoom(address: string): void {
    const perAddress =
      this.#options.maxPendingHandshakesPerAddress ?? DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS;
    const overall = this.#options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    const fromAddress = [...this.#pending].filter((p) => p.address === address);
    if (fromAddress.length >= Math.max(1, perAddress)) {
      this.#evict(fromAddress, `more than ${perAddress} handshakes in progress from ${address}`);
    }
    if (this.#pending.size >= Math.max(1, overall)) {
      this.#evict([...this.#pending], `more than ${overall} handshakes in progress`);
    }
  }

  #evict(candidates: readonly Pending[], detail: string): void {
    // Sets iterate in insertion order: the first match is the oldest.
    const victim =
      candidates.find((p) => p.state === 'hello') ??
      candidates.find((p) => p.state !== 'verifying') ??
      candidates[0];
    if (victim !== undefined) this.#failPending(victim, refusalCloseCode('busy'), 'busy', detail);
  }

  #startHandshake(ws: WebSocket, claimed: DeviceId, address: string, features: ReadonlySet<string>): void {
    const timeout = (detail: string) => (): void =>
      this.#failPending(pending, CloseCode.AuthTimeout, 'auth-timeout', detail);
    const pending: Pending = {
      ws,
      claimed,
      address,
      openedAt: performance.now(),
      features,
      state: 'hello',
      timer: setTimeout(
        timeout('no hello in time'),
        Math.min(this.#timings.helloTimeoutMs, this.#timings.authTimeoutMs),
      ),
    };
    pending.timer.unref();
    this.#pending.add(pending);
    ws.on('error', (e: Error & { code?: string }) => {
      const reason = e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'too-large' : 'bad-frame';
      this.#failPending(pending, refusalCloseCode(reason), reason, e.message);
    });
    ws.on('close', () => {
      // Also stops a signature check in flight from accepting a socket that is gone.
      pending.state = 'done';
      this.#forget(pending);
    });
    ws.on('message', (data, isBinary) => {
      this.#onHandshakeFrame(pending, rawBytes(data), isBinary).catch((e: unknown) => {
        this.#telemetry.log(`handshake with ${claimed} failed internally: ${String(e)}`);
        this.#failPending(pending, CloseCode.Internal, 'internal');
      });
    });
  }

  async #onHandshakeFrame(p: Pending, bytes: Uint8Array, isBinary: boolean): Promise<void> {
    if (p.state === 'done') return;
    if (isBinary || bytes.length > WIRE_MAX_HANDSHAKE_BYTES) {
      return this.#failPending(
        p,
        CloseCode.AuthFailed,
        'auth-failed',
        'binary or oversized frame during the handshake',
      );
    }
    const parsed = parseWireHandshake(Buffer.from(bytes).toString('utf8'));
    if (!parsed.ok) return this.#failPending(p, CloseCode.AuthFailed, 'auth-failed', parsed.error.message);
    const m = parsed.value;
    const { identity, facility } = this.#options;
    if (p.state === 'hello' && m.type === 'hello') {
      if (m.deviceId !== p.claimed || m.facility !== facility) {
        return this.#failPending(
          p,
          CloseCode.AuthFailed,
          'auth-failed',
          'hello does not match the upgrade headers',
        );
      }
      const facts: WireTranscriptFacts = {
        facility,
        clientId: p.claimed,
        serverId: identity.deviceId,
        clientNonce: m.nonce,
        serverNonce: newNonce(),
      };
      p.facts = facts;
      p.state = 'auth';
      // The hello came in time: the rest of the handshake gets what is left of its budget.
      clearTimeout(p.timer);
      p.timer = setTimeout(
        () => this.#failPending(p, CloseCode.AuthTimeout, 'auth-timeout', 'handshake not completed in time'),
        Math.max(0, this.#timings.authTimeoutMs - (performance.now() - p.openedAt)),
      );
      p.timer.unref();
      const signature = await proveIdentity(identity, 'server', facts);
      if (p.state !== 'auth') return;
      const membership = this.#membershipProof();
      sendHandshake(p.ws, {
        type: 'challenge',
        v: WIRE_VERSION,
        deviceId: identity.deviceId,
        facility,
        nonce: facts.serverNonce,
        signature,
        ...(membership === undefined ? {} : { membership }),
      });
      return;
    }
    if (p.state === 'auth' && m.type === 'auth' && p.facts !== undefined) {
      p.state = 'verifying';
      const valid = await checkIdentity(p.claimed, 'client', p.facts, m.signature);
      if (p.state !== 'verifying') return; // failed or closed while verifying
      if (!valid)
        return this.#failPending(
          p,
          CloseCode.AuthFailed,
          'auth-failed',
          'signature does not match the device id',
        );
      const reason = this.#rosterCheck(p.claimed);
      if (reason !== undefined)
        return this.#failPending(p, CloseCode.Forbidden, reason, 'roster changed during the handshake');
      if (!this.#connected || !this.#online)
        return this.#failPending(p, CloseCode.GoingAway, 'offline', 'went offline during the handshake');
      this.#accept(p);
      return;
    }
    if (m.type === 'error')
      return this.#failPending(p, CloseCode.Normal, 'auth-failed', `client reported ${m.code}: ${m.message}`);
    return this.#failPending(
      p,
      CloseCode.AuthFailed,
      'auth-failed',
      `unexpected ${m.type} in state ${p.state}`,
    );
  }

  #accept(p: Pending): void {
    p.state = 'done';
    this.#forget(p);
    if (p.ws.readyState !== p.ws.OPEN) return;
    p.ws.removeAllListeners('message');
    p.ws.removeAllListeners('error');
    p.ws.removeAllListeners('close');
    const device = p.claimed;
    // Replacement: the old session ends (peer-disconnected) before the new one starts.
    this.#links.get(device)?.close(CloseCode.Replaced, 'replaced');
    const link = new Link(p.ws, device, this.#host, p.features, this.#options.features);
    this.#links.set(device, link);
    sendHandshake(p.ws, { type: 'welcome', peerMetadata: announceMetadata(this.#metadata) });
    if (this.#everConnected.has(device)) this.#telemetry.reconnects++;
    this.#everConnected.add(device);
    this.#telemetry.log(`session with ${device} established`);
    this.emit('peer-candidate', {
      peerId: device as string as PeerId,
      peerMetadata: PEER_METADATA,
    });
    this.#telemetry.emit({ type: 'peer-connected', at: this.#telemetry.now(), peer: device });
  }

  // Ends a connection still in the handshake. Shutdown, going offline and internal failures are
  // not refusals of the peer and are not counted as such.
  #failPending(
    p: Pending,
    code: number,
    reason: RefusalReason | 'shutdown' | 'internal',
    detail: string = reason,
  ): void {
    if (p.state === 'done') return;
    p.state = 'done';
    this.#forget(p);
    if (reason === 'shutdown' || reason === 'internal' || reason === 'offline') {
      this.#telemetry.log(`handshake with ${p.claimed} ended: ${reason}`);
    } else {
      this.#telemetry.refuse('handshake', reason, code, detail, p.claimed);
      sendHandshake(p.ws, { type: 'error', code: refusalErrorCode(reason), message: detail.slice(0, 256) });
    }
    try {
      p.ws.close(code, reason);
    } catch {
      p.ws.terminate();
    }
  }

  #forget(p: Pending): void {
    clearTimeout(p.timer);
    this.#pending.delete(p);
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
      ended: (link, reason, closeCode) => {
        if (this.#links.get(link.peer) === link) this.#links.delete(link.peer);
        this.emit('peer-disconnected', { peerId: link.peer as string as PeerId });
        this.#telemetry.sessionEnded(link.peer, reason, closeCode);
      },
    };
  }
}

/** The remote address of a request, IPv4-mapped IPv6 folded to IPv4. */
function remoteAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function pathOf(req: IncomingMessage): string | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}
