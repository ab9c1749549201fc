import { NetworkAdapter } from '@automerge/automerge-repo';
import type { Message, PeerId, PeerMetadata } from '@automerge/automerge-repo';
import { PEER_METADATA } from '@accord/network-ws';
import type { Retransmission, SimNetwork } from './network.js';
import type { Scheduler, Timer } from './scheduler.js';

/** Connection timing of {@link SimRepoNetwork}. */
export interface SimRepoNetworkOptions {
  /** While a peer is unreachable, a connection is tried again this often (default 5 s). */
  readonly reconnectMs?: number;
  /** A connected peer is pinged this often, so a partition is noticed without traffic (default 30 s). */
  readonly keepaliveMs?: number;
  /**
   * A lost frame is sent again after this long (default 200 ms: Linux's minimum retransmission
   * timeout, where an established connection on a short round trip sits), doubled at each loss in
   * a row.
   */
  readonly rtoMs?: number;
  /** The retransmission timeout grows no further (default 120 s, Linux's `TCP_RTO_MAX`). */
  readonly rtoMaxMs?: number;
  /**
   * A frame still not through this long after it was first sent breaks the connection (default
   * 45 s: `network-ws` closes a socket after 45 s without a sign of life).
   */
  readonly giveUpMs?: number;
}

const CONTROL = 0;
const REPO = 1;
/**
 * A keepalive: two bytes, the size of a WebSocket ping frame (`network-ws` pings with `ws.ping()`).
 * It was a control frame with the peer id and metadata (≈ 150 bytes), so that on a quiet link
 * pings were a third of the bytes a run counted.
 */
const PING = 2;
const PING_FRAME = Uint8Array.of(PING, 0);
type Control = {
  readonly k: 'hello' | 'ack' | 'bye';
  readonly peerId: string;
};

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder('utf-8', { fatal: true });

/** `[kind][u32 header length][header JSON][binary data]`: a repo message's `data` travels as bytes. */
function encodeFrame(kind: number, header: unknown, data?: Uint8Array): Uint8Array {
  const h = ENCODER.encode(JSON.stringify(header));
  const out = new Uint8Array(5 + h.length + (data?.length ?? 0));
  out[0] = kind;
  new DataView(out.buffer).setUint32(1, h.length);
  out.set(h, 5);
  if (data !== undefined) out.set(data, 5 + h.length);
  return out;
}

function decodeFrame(
  bytes: Uint8Array,
): { kind: number; header: Record<string, unknown>; data: Uint8Array } | undefined {
  try {
    if (bytes.length < 5) return undefined;
    const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
    if (5 + len > bytes.length) return undefined;
    const header: unknown = JSON.parse(DECODER.decode(bytes.subarray(5, 5 + len)));
    if (typeof header !== 'object' || header === null) return undefined;
    return { kind: bytes[0]!, header: header as Record<string, unknown>, data: bytes.subarray(5 + len) };
  } catch {
    return undefined;
  }
}

interface PeerLink {
  readonly node: string;
  peerId: PeerId | undefined;
  connected: boolean;
  retry: Timer | undefined;
  keepalive: Timer | undefined;
}

/**
 * automerge-repo network adapters over a {@link SimNetwork}: one per node, connected to the nodes
 * it is told to reach (a device to the relay, to its facility's other devices when p2p is on).
 *
 * @remarks Connection-oriented like a WebSocket over TCP: a handshake (`hello`/`ack`) makes each
 * Repo see a `peer-candidate`; every frame travels as part of a stream ({@link Retransmission}):
 * a lost frame is sent again after a timeout and the frames behind it wait, so loss costs time,
 * not the connection. A cut frame, a frame into a partition or a crash, or one still lost after
 * `giveUpMs` breaks the connection (both Repos see `peer-disconnected`, so sync restarts with
 * fresh state, DESIGN §7), and each side tries again every `reconnectMs`. Keepalive pings notice a
 * partition without traffic. Every event is emitted from the scheduler, never synchronously
 * inside a Repo call.
 */
export class SimRepoNetwork {
  readonly #scheduler: Scheduler;
  readonly #network: SimNetwork;
  readonly #reconnectMs: number;
  readonly #keepaliveMs: number;
  readonly #stream: Retransmission;
  /** The current adapters of each node, by channel. */
  readonly #adapters = new Map<string, Map<string, SimRepoAdapter>>();
  /** Connections broken by a fault: a cut frame, an end down, a frame still lost after `giveUpMs`. */
  resets = 0;

  constructor(scheduler: Scheduler, network: SimNetwork, opts: SimRepoNetworkOptions = {}) {
    this.#scheduler = scheduler;
    this.#network = network;
    this.#reconnectMs = opts.reconnectMs ?? 5_000;
    this.#keepaliveMs = opts.keepaliveMs ?? 30_000;
    this.#stream = {
      rtoMs: opts.rtoMs ?? 200,
      rtoMaxMs: opts.rtoMaxMs ?? 120_000,
      giveUpMs: opts.giveUpMs ?? 45_000,
    };
    network.onDrop((from, to) => this.#broken(from, to));
  }

  /**
   * The adapter of `node`, which connects to `peers` (node names). A restarted node gets a new one
   * (same `channel`). A node may have several adapters on distinct channels with disjoint peers:
   * the relay serves each facility's devices on an endpoint of its own, as on one port.
   */
  adapter(node: string, peers: readonly string[], channel = ''): NetworkAdapter {
    const a = new SimRepoAdapter(node, peers, {
      scheduler: this.#scheduler,
      network: this.#network,
      reconnectMs: this.#reconnectMs,
      keepaliveMs: this.#keepaliveMs,
      stream: this.#stream,
      adapterOf: (n, peer) => this.#adapterOf(n, peer),
      broken: (from, to) => this.#broken(from, to),
    });
    let mine = this.#adapters.get(node);
    if (mine === undefined) {
      mine = new Map();
      this.#adapters.set(node, mine);
      this.#network.attach(node, (bytes, info) =>
        this.#adapterOf(node, info.from)?.receive(bytes, info.from, info.truncated),
      );
    }
    mine.set(channel, a);
    return a;
  }

  /** The adapter of `node` that talks to `peer`. */
  #adapterOf(node: string, peer: string): SimRepoAdapter | undefined {
    for (const a of this.#adapters.get(node)?.values() ?? []) if (a.linksTo(peer)) return a;
    return undefined;
  }

  #broken(from: string, to: string): void {
    const a = this.#adapterOf(from, to);
    const b = this.#adapterOf(to, from);
    if (a?.isConnectedTo(to) === true || b?.isConnectedTo(from) === true) this.resets++;
    this.#scheduler.after(0, () => {
      a?.reset(to);
      b?.reset(from);
    });
  }
}

interface AdapterWiring {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly reconnectMs: number;
  readonly keepaliveMs: number;
  readonly stream: Retransmission;
  readonly adapterOf: (node: string, peer: string) => SimRepoAdapter | undefined;
  /** The connection between the two nodes broke: both ends reset, and it counts in `resets`. */
  readonly broken: (from: string, to: string) => void;
}

/** One node's adapter; see {@link SimRepoNetwork}. */
class SimRepoAdapter extends NetworkAdapter {
  readonly #node: string;
  readonly #w: AdapterWiring;
  readonly #links = new Map<string, PeerLink>();
  readonly #byPeer = new Map<string, PeerLink>();
  #ready = false;
  #left = false;

  constructor(node: string, peers: readonly string[], wiring: AdapterWiring) {
    super();
    this.#node = node;
    this.#w = wiring;
    for (const p of peers) {
      if (p !== node)
        this.#links.set(p, {
          node: p,
          peerId: undefined,
          connected: false,
          retry: undefined,
          keepalive: undefined,
        });
    }
  }

  override isReady(): boolean {
    return this.#ready;
  }

  override whenReady(): Promise<void> {
    return Promise.resolve();
  }

  isConnectedTo(node: string): boolean {
    return this.#links.get(node)?.connected === true;
  }

  /** True when this adapter talks to `node` at all. */
  linksTo(node: string): boolean {
    return this.#links.has(node);
  }

  override connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId;
    if (peerMetadata !== undefined) this.peerMetadata = peerMetadata;
    this.#ready = true;
    for (const link of this.#links.values()) this.#w.scheduler.after(0, () => this.#dial(link));
  }

  override send(message: Message): void {
    const link = this.#byPeer.get(message.targetId);
    if (link === undefined || !link.connected || this.#left) return;
    const { data, ...header } = message as Message & { data?: Uint8Array };
    this.#w.network.send(this.#node, link.node, encodeFrame(REPO, header, data), this.#w.stream);
  }

  override disconnect(): void {
    if (this.#left) return;
    this.#left = true;
    for (const link of this.#links.values()) {
      if (link.connected) this.#control(link.node, 'bye');
      this.#drop(link, false);
      if (link.retry !== undefined) this.#w.scheduler.cancel(link.retry);
      link.retry = undefined;
    }
    this.emit('close');
  }

  /** The connection to `node` broke: tell the Repo, and dial again later. */
  reset(node: string): void {
    const link = this.#links.get(node);
    if (link === undefined || this.#left) return;
    this.#drop(link, true);
  }

  #drop(link: PeerLink, redial: boolean): void {
    if (link.keepalive !== undefined) this.#w.scheduler.cancel(link.keepalive);
    link.keepalive = undefined;
    if (link.connected) {
      link.connected = false;
      if (link.peerId !== undefined) this.emit('peer-disconnected', { peerId: link.peerId });
    }
    if (redial && link.retry === undefined) {
      link.retry = this.#w.scheduler.after(this.#w.reconnectMs, () => {
        link.retry = undefined;
        this.#dial(link);
      });
    }
  }

  #dial(link: PeerLink): void {
    if (this.#left || link.connected) return;
    if (this.#w.network.isUp(this.#node) && this.#w.network.isUp(link.node))
      this.#control(link.node, 'hello');
    if (link.retry === undefined) {
      link.retry = this.#w.scheduler.after(this.#w.reconnectMs, () => {
        link.retry = undefined;
        this.#dial(link);
      });
    }
  }

  #control(to: string, k: Control['k']): void {
    const c: Control = { k, peerId: this.peerId! };
    this.#w.network.send(this.#node, to, encodeFrame(CONTROL, c), this.#w.stream);
  }

  /** A frame from `from` reached this node (before `connect`, nobody listens yet). */
  receive(bytes: Uint8Array, from: string, truncated: boolean): void {
    if (this.#left || !this.#ready) return;
    const link = this.#links.get(from);
    if (link === undefined) return; // not a node this one talks to
    if (!truncated && bytes.length === PING_FRAME.length && bytes[0] === PING) return;
    const frame = truncated ? undefined : decodeFrame(bytes);
    if (frame === undefined) {
      // A cut or garbled frame ends the connection at both ends, as a broken socket would.
      this.#w.broken(from, this.#node);
      return;
    }
    if (frame.kind === REPO) {
      if (!link.connected) return;
      const message = {
        ...frame.header,
        ...(frame.data.length > 0 ? { data: frame.data } : {}),
      } as unknown as Message;
      this.emit('message', message);
      return;
    }
    const c = frame.header as unknown as Control;
    if (c.k === 'bye') {
      this.#drop(link, true);
      return;
    }
    if (c.k === 'hello') this.#control(from, 'ack');
    if (!link.connected) {
      link.connected = true;
      link.peerId = c.peerId as PeerId;
      this.#byPeer.set(c.peerId, link);
      if (link.retry !== undefined) this.#w.scheduler.cancel(link.retry);
      link.retry = undefined;
      // What network-ws tells its Repo of every peer: ephemeral, no storage id, so every session
      // syncs from a fresh sync state (DESIGN §7) and the Repo neither stores sync states nor
      // hashes each peer's heads on every message. Handing on the peer's own metadata made the
      // simulated Repos do both (≈ 4% of a bench run's CPU profile) and resume sessions production
      // never resumes.
      this.emit('peer-candidate', { peerId: link.peerId, peerMetadata: PEER_METADATA });
      this.#keepalive(link);
    }
  }

  #keepalive(link: PeerLink): void {
    link.keepalive = this.#w.scheduler.after(this.#w.keepaliveMs, () => {
      if (!link.connected || this.#left) return;
      this.#w.network.send(this.#node, link.node, PING_FRAME, this.#w.stream);
      this.#keepalive(link);
    });
  }
}
