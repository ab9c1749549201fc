import { NetworkAdapter } from '@automerge/automerge-repo';
import type { Message, PeerId, PeerMetadata } from '@automerge/automerge-repo';
import type { EventEmitter } from 'node:events';
import {
  AccordError,
  ErrorCode,
  isWireSegmentsMessage,
  WIRE_SEGMENTS_EVENT,
  type WireSegmentsMessage,
} from '@accord/protocol';
import { seededRandom, type SeededRandom } from './random.js';

/** Probabilities (each in [0, 1]) of the faults the {@link FakeNetwork} injects. */
export interface FaultRates {
  /** Per sent message: the message is lost and its link breaks and comes back (a connection fault). */
  dropRate: number;
  /** Per sent message: the message is delivered twice, back to back, on its link. */
  duplicateRate: number;
  /** Per delivery step: a message from another link is delivered before the oldest one. */
  reorderRate: number;
  /** Per sent message: the frame arrives truncated; the receiver rejects it and closes the link. */
  truncateRate: number;
}

/** Options of a {@link FakeNetwork}. */
export interface FakeNetworkOptions extends Partial<FaultRates> {
  /** Seed of every random decision the network makes (see {@link seededRandom}). */
  seed: number;
  /**
   * Lets the nodes' own timers run between drains in {@link FakeNetwork.quiet}.
   *
   * @remarks automerge-repo sends change-driven sync messages from a throttle timer
   * ({@link REPO_SYNC_THROTTLE_MS}). Under fake timers pass
   * `() => vi.advanceTimersByTimeAsync(REPO_SYNC_THROTTLE_MS)`; the default waits that long
   * in real time, and refuses to run when `setTimeout` is faked (it would never fire).
   */
  settle?: () => Promise<unknown>;
  /** Drain-and-settle rounds {@link FakeNetwork.quiet} allows before it gives up (default 100). */
  maxRounds?: number;
  /** Delivery steps one {@link FakeNetwork.deliverAll} allows before it gives up (default 200 000). */
  maxSteps?: number;
}

/** Counters of what the {@link FakeNetwork} did; see the README for the invariant they satisfy. */
export interface FakeNetworkStats {
  /** `send()` calls made by adapters. */
  sent: number;
  /** Messages handed to a receiving adapter (a duplicate counts twice). */
  delivered: number;
  /** Messages lost to an injected drop (each one also reset its link). */
  dropped: number;
  /** Extra copies enqueued by injected duplication. */
  duplicated: number;
  /** Delivery steps that took a message other than the globally oldest one. */
  reordered: number;
  /** Frames that arrived truncated and were rejected by the receiver (each one reset its link). */
  truncated: number;
  /** Messages lost because their link was down, or went down while they were in flight. */
  discarded: number;
}

/** How long automerge-repo 2.x throttles change-driven sync (`DocSynchronizer.syncDebounceRate`), in ms. */
export const REPO_SYNC_THROTTLE_MS = 100;

// Captured at load time so that fake timers installed later (vi.useFakeTimers) do not
// freeze the network's own turns: delivery never waits on a timer.
const realSetImmediate = globalThis.setImmediate;
const realSetTimeout = globalThis.setTimeout;

/** One macrotask turn: every pending microtask (the Repos' reactions) runs first. */
function turn(): Promise<void> {
  return new Promise((resolve) => {
    realSetImmediate(resolve);
  });
}

function defaultSettle(): Promise<void> {
  if ('clock' in globalThis.setTimeout) {
    throw new Error(
      'FakeNetwork: setTimeout is faked, so waiting in real time would never fire the Repos\u2019 timers; ' +
        'pass `settle: () => vi.advanceTimersByTimeAsync(REPO_SYNC_THROTTLE_MS)`',
    );
  }
  return new Promise((resolve) => {
    realSetTimeout(resolve, REPO_SYNC_THROTTLE_MS + 10);
  });
}

function checkRate(name: string, value: number): number {
  if (!(value >= 0 && value <= 1))
    throw new RangeError(`FakeNetwork: ${name} must be in [0, 1], got ${value}`);
  return value;
}

/** What an adapter may ask of its network (kept off the public surface). */
interface Wiring {
  connect(adapter: FakeNetworkAdapter): void;
  send(adapter: FakeNetworkAdapter, message: Message): void;
  disconnect(adapter: FakeNetworkAdapter): void;
}

/**
 * The automerge-repo `NetworkAdapter` of one node of a {@link FakeNetwork}.
 *
 * @remarks Made by {@link FakeNetwork.adapter}; every event it emits is emitted from the
 * network's drain loop, never synchronously inside a Repo call.
 */
/** A `segment-unavailable` answer from `senderId` about `documentId`, as a Repo message. */
function segmentUnavailable(senderId: string, targetId: string, documentId: string): Message {
  const answer: WireSegmentsMessage = { type: 'segment-unavailable', senderId, targetId, documentId };
  return answer as unknown as Message;
}

class FakeNetworkAdapter extends NetworkAdapter {
  readonly #wiring: Wiring;
  readonly #name: string;
  #ready = false;
  #resolveReady: () => void = () => undefined;
  readonly #readyPromise = new Promise<void>((resolve) => {
    this.#resolveReady = resolve;
  });

  constructor(name: string, wiring: Wiring) {
    super();
    this.#name = name;
    this.#wiring = wiring;
  }

  /** The node this adapter belongs to. */
  get nodeName(): string {
    return this.#name;
  }

  override isReady(): boolean {
    return this.#ready;
  }

  override whenReady(): Promise<void> {
    return this.#readyPromise;
  }

  override connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId;
    if (peerMetadata !== undefined) this.peerMetadata = peerMetadata;
    this.#wiring.connect(this);
  }

  /** Called by the network once this adapter's first connections are up (or there was nobody to meet). */
  markReady(): void {
    this.#ready = true;
    this.#resolveReady();
  }

  override send(message: Message): void {
    this.#wiring.send(this, message);
  }

  override disconnect(): void {
    this.#wiring.disconnect(this);
  }
}

interface NodeState {
  readonly name: string;
  adapter: FakeNetworkAdapter | undefined;
  /** The current adapter's Repo has called connect() and not disconnect(). */
  joined: boolean;
  /** Not switched off by disconnectNode(). */
  online: boolean;
  /** Speaks the bulk segment transfer (`segments/1`); see {@link FakeNetwork.adapter}. */
  segments: boolean;
}

interface LinkEnd {
  readonly node: NodeState;
  readonly adapter: FakeNetworkAdapter;
  readonly peerId: PeerId;
}

interface Link {
  up: boolean;
  /** The two ends as they were when the link last came up. */
  ends: [LinkEnd, LinkEnd] | undefined;
}

interface Envelope {
  readonly seq: number;
  readonly from: NodeState;
  readonly to: NodeState;
  readonly message: Message;
  readonly truncated: boolean;
}

interface Channel {
  readonly from: string;
  readonly to: string;
  readonly queue: Envelope[];
}

type Action =
  | { readonly kind: 'connect'; readonly a: string; readonly b: string }
  | { readonly kind: 'ready'; readonly adapter: FakeNetworkAdapter }
  | { readonly kind: 'peer-disconnected'; readonly adapter: FakeNetworkAdapter; readonly peerId: PeerId };

const pairKey = (a: string, b: string): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`);
const channelKey = (from: string, to: string): string => `${from}\u0000${to}`;

/**
 * A seeded, in-process network for automerge-repo `Repo`s: one adapter per node, full
 * mesh, with partitions, node restarts and injected faults (drop, duplicate, reorder,
 * truncate), delivering by macrotask turns and never by timers.
 *
 * @remarks
 * Faults model what a real connection-oriented transport does (see the README table):
 * a drop or a truncated frame breaks the link, so both Repos see `peer-disconnected`
 * then `peer-candidate` and restart sync from fresh state; duplication delivers a
 * message twice; reordering only interleaves *different* links — each directed link is
 * FIFO, as TCP is. Nothing is delivered and no adapter event is emitted until
 * {@link FakeNetwork.deliverAll} or {@link FakeNetwork.quiet} runs; link state
 * changes (partition, disconnect) take effect at once, their notifications on the next
 * drain. With the Repos' timers faked, the same seed and the same test give the same
 * {@link FakeNetwork.stats}.
 */
export class FakeNetwork {
  /** The seed every random decision derives from. */
  readonly seed: number;
  readonly #random: SeededRandom;
  #rates: FaultRates;
  readonly #settle: () => Promise<unknown>;
  readonly #maxRounds: number;
  readonly #maxSteps: number;
  readonly #nodes = new Map<string, NodeState>();
  readonly #links = new Map<string, Link>();
  readonly #channels = new Map<string, Channel>();
  readonly #actions: Action[] = [];
  #groups: Map<string, number> | undefined;
  #seq = 0;
  #activity = 0;
  #pendingError: Error | undefined;
  #drainChain: Promise<void> = Promise.resolve();
  readonly #stats: FakeNetworkStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    reordered: 0,
    truncated: 0,
    discarded: 0,
  };
  readonly #wiring: Wiring = {
    connect: (adapter) => this.#onConnect(adapter),
    send: (adapter, message) => this.#onSend(adapter, message),
    disconnect: (adapter) => this.#onDisconnect(adapter),
  };

  constructor(opts: FakeNetworkOptions) {
    this.seed = opts.seed;
    this.#random = seededRandom(opts.seed);
    this.#rates = { dropRate: 0, duplicateRate: 0, reorderRate: 0, truncateRate: 0 };
    this.setFaults(opts);
    this.#settle = opts.settle ?? defaultSettle;
    this.#maxRounds = opts.maxRounds ?? 100;
    this.#maxSteps = opts.maxSteps ?? 200_000;
  }

  /**
   * The automerge-repo adapter of node `name`; pass it to `new Repo({ network: [...] })`.
   *
   * @remarks Calling it again for the same name models a restart: the old adapter is
   * retired (its peers see it disconnect, it receives nothing more) and the new one joins
   * when its Repo calls `connect()`. Whether the node is online is kept across restarts.
   *
   * With `segments: false` the node does not speak the bulk segment transfer (`segments/1`), as
   * a WebSocket adapter given `features: []`: a request to or from it is answered
   * `segment-unavailable` for every document it names, and the transfer's other messages are
   * withheld. Tests pin with it which way (bulk or the Repo's) segments travel.
   */
  adapter(name: string, opts: { readonly segments?: boolean } = {}): NetworkAdapter {
    let node = this.#nodes.get(name);
    if (node === undefined) {
      node = { name, adapter: undefined, joined: false, online: true, segments: true };
      this.#nodes.set(name, node);
    } else if (node.adapter !== undefined) {
      this.#downAll(node);
      node.joined = false;
    }
    node.segments = opts.segments ?? true;
    const adapter = new FakeNetworkAdapter(name, this.#wiring);
    node.adapter = adapter;
    return adapter;
  }

  /**
   * Splits the network: nodes talk only to nodes of their own group.
   *
   * @remarks Replaces any previous partition. A node named in no group talks to nobody;
   * a node named twice is a programmer error. Links across groups go down at once (both
   * sides get `peer-disconnected` on the next drain, in-flight messages are lost); links
   * inside a group that were down come back.
   */
  partition(groups: string[][]): void {
    const byNode = new Map<string, number>();
    groups.forEach((group, index) => {
      for (const name of group) {
        if (byNode.has(name)) throw new RangeError(`FakeNetwork.partition: node ${name} is in two groups`);
        byNode.set(name, index);
      }
    });
    this.#groups = byNode;
    for (const [a, b] of this.#pairs()) {
      if (!this.#sameGroup(a, b)) this.#linkDown(a, b);
      else this.#actions.push({ kind: 'connect', a: a.name, b: b.name });
    }
  }

  /**
   * Ends any partition and reconnects every pair of nodes, as after a network outage.
   *
   * @remarks Links that were up are reset too: every Repo sees `peer-disconnected` then
   * `peer-candidate`, so sync restarts with fresh state everywhere; messages in flight are lost.
   */
  heal(): void {
    this.#groups = undefined;
    for (const [a, b] of this.#pairs()) {
      this.#linkDown(a, b);
      this.#actions.push({ kind: 'connect', a: a.name, b: b.name });
    }
  }

  /** Changes fault rates; a rate left out keeps its value and a rate of 0 stops that fault. */
  setFaults(f: Partial<FaultRates>): void {
    this.#rates = {
      dropRate: checkRate('dropRate', f.dropRate ?? this.#rates.dropRate),
      duplicateRate: checkRate('duplicateRate', f.duplicateRate ?? this.#rates.duplicateRate),
      reorderRate: checkRate('reorderRate', f.reorderRate ?? this.#rates.reorderRate),
      truncateRate: checkRate('truncateRate', f.truncateRate ?? this.#rates.truncateRate),
    };
  }

  /** Takes node `name` off line: all its links go down (both sides see `peer-disconnected`). */
  disconnectNode(name: string): void {
    const node = this.#node(name);
    node.online = false;
    this.#downAll(node);
  }

  /** Brings node `name` back on line: its links to every reachable node come up on the next drain. */
  reconnectNode(name: string): void {
    const node = this.#node(name);
    node.online = true;
    this.#connectAll(node);
  }

  /**
   * Delivers queued messages and link events one per macrotask turn until a full turn
   * passes with nothing queued.
   *
   * @remarks Never waits on a timer, so messages a Repo sends from its own throttle
   * timer are not awaited: use {@link FakeNetwork.quiet} for "sync is finished". Calls
   * are serialized. Throws `NETWORK_STALLED` (with the seed) after `maxSteps` steps.
   */
  deliverAll(): Promise<void> {
    const run = this.#drainChain.then(() => this.#drain());
    this.#drainChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Resolves once sync has gone quiet: a full drain followed by a settle (the Repos'
   * timers) saw no message sent and left nothing queued.
   *
   * @remarks Throws `NETWORK_STALLED` naming the seed and the stats when that does not
   * happen within `maxRounds` rounds (a livelock, or faults left on).
   */
  async quiet(): Promise<void> {
    for (let round = 1; round <= this.#maxRounds; round++) {
      const activity = this.#activity;
      await this.deliverAll();
      await this.#settle();
      if (activity === this.#activity && !this.#hasWork()) return;
    }
    throw this.#stalled(`sync did not go quiet within ${this.#maxRounds} rounds`);
  }

  /** A snapshot of the counters. */
  stats(): FakeNetworkStats {
    return { ...this.#stats };
  }

  /** Messages currently queued (not yet delivered, dropped or discarded). */
  get inFlight(): number {
    let n = 0;
    for (const channel of this.#channels.values()) n += channel.queue.length;
    return n;
  }

  // ── adapter callbacks ──────────────────────────────────────────────────────────

  #onConnect(adapter: FakeNetworkAdapter): void {
    const node = this.#nodes.get(adapter.nodeName);
    if (node?.adapter !== adapter) return; // a retired adapter stays out
    for (const other of this.#nodes.values()) {
      if (other !== node && other.joined && other.adapter?.peerId === adapter.peerId) {
        // Recorded and thrown from the next drain: connect() runs inside a Repo promise that swallows errors.
        this.#pendingError = new Error(
          `FakeNetwork: nodes ${other.name} and ${node.name} both use peer id ${String(adapter.peerId)}`,
        );
      }
    }
    node.joined = true;
    this.#activity++;
    this.#connectAll(node);
    // Ready only after the links that can come up now have (as a WebSocket client is ready
    // once connected): the Repo asks its peers for a document as soon as it is ready, and
    // declares the document unavailable if it has no peer to ask.
    this.#actions.push({ kind: 'ready', adapter });
  }

  #onDisconnect(adapter: FakeNetworkAdapter): void {
    const node = this.#nodes.get(adapter.nodeName);
    if (node?.adapter !== adapter) return;
    node.joined = false;
    this.#downAll(node);
  }

  #onSend(adapter: FakeNetworkAdapter, message: Message): void {
    this.#stats.sent++;
    this.#activity++;
    // Draw a fixed number of values per send so that the stream's shape does not depend
    // on the rates: changing one rate does not reshuffle the other decisions.
    const dropDraw = this.#random();
    const truncateDraw = this.#random();
    const duplicateDraw = this.#random();

    const from = this.#nodes.get(adapter.nodeName);
    const to = this.#nodeByPeer(message.targetId);
    const link = from && to ? this.#links.get(pairKey(from.name, to.name)) : undefined;
    if (from === undefined || to === undefined || link?.up !== true || !this.#isEnd(link, from, adapter)) {
      // Writing to a closed connection: the bytes go nowhere.
      this.#stats.discarded++;
      return;
    }
    if (isWireSegmentsMessage(message) && !(from.segments && to.segments)) {
      // One end does not speak the transfer: withheld, and the sender's link answers a request itself.
      this.#stats.discarded++;
      if (message.type === 'segments-request')
        for (const documentId of message.documentIds) {
          this.#stats.sent++;
          this.#enqueue(to, from, segmentUnavailable(message.targetId, message.senderId, documentId), false);
        }
      return;
    }
    if (dropDraw < this.#rates.dropRate) {
      this.#stats.dropped++;
      this.#reset(from, to);
      return;
    }
    const truncated = truncateDraw < this.#rates.truncateRate;
    this.#enqueue(from, to, message, truncated);
    if (!truncated && duplicateDraw < this.#rates.duplicateRate) {
      this.#stats.duplicated++;
      this.#enqueue(from, to, message, false);
    }
  }

  // ── delivery ───────────────────────────────────────────────────────────────────

  async #drain(): Promise<void> {
    for (let steps = 0; ; steps++) {
      await turn();
      if (this.#pendingError !== undefined) {
        const error = this.#pendingError;
        this.#pendingError = undefined;
        throw error;
      }
      if (steps >= this.#maxSteps) throw this.#stalled(`still delivering after ${this.#maxSteps} steps`);
      if (!this.#step()) return;
    }
  }

  /** Performs one action or delivers one message; false when there was nothing to do. */
  #step(): boolean {
    const action = this.#actions.shift();
    if (action !== undefined) {
      if (action.kind === 'connect') this.#linkUp(action.a, action.b);
      else if (action.kind === 'ready') action.adapter.markReady();
      else if (this.#isCurrent(action.adapter))
        action.adapter.emit('peer-disconnected', { peerId: action.peerId });
      return true;
    }

    const ready: Channel[] = [];
    let oldest: Channel | undefined;
    for (const channel of this.#channels.values()) {
      const head = channel.queue[0];
      if (head === undefined) continue;
      ready.push(channel);
      if (oldest === undefined || head.seq < (oldest.queue[0] as Envelope).seq) oldest = channel;
    }
    if (oldest === undefined) return false;

    let chosen = oldest;
    if (ready.length > 1 && this.#random() < this.#rates.reorderRate) {
      const others = ready.filter((channel) => channel !== oldest);
      chosen = this.#random.pick(others);
      this.#stats.reordered++;
    }
    // Only the head of a channel is ever taken: per-link FIFO, as TCP guarantees.
    const envelope = chosen.queue.shift() as Envelope;
    const adapter = envelope.to.adapter;
    if (envelope.truncated) {
      // The receiver reads a short frame, rejects it and closes the connection; the
      // bytes never reach its Repo. Both sides reconnect with fresh sync state.
      this.#stats.truncated++;
      this.#reset(envelope.from, envelope.to);
      return true;
    }
    if (adapter === undefined) {
      this.#stats.discarded++;
      return true;
    }
    this.#stats.delivered++;
    // The bulk segment transfer's messages go beside the Repo's, as the WebSocket adapters emit them.
    if (isWireSegmentsMessage(envelope.message))
      (adapter as unknown as EventEmitter).emit(WIRE_SEGMENTS_EVENT, envelope.message);
    else adapter.emit('message', envelope.message);
    return true;
  }

  #enqueue(from: NodeState, to: NodeState, message: Message, truncated: boolean): void {
    const key = channelKey(from.name, to.name);
    let channel = this.#channels.get(key);
    if (channel === undefined) {
      channel = { from: from.name, to: to.name, queue: [] };
      this.#channels.set(key, channel);
    }
    // A copy, as if serialized: the receiver never shares objects with the sender.
    channel.queue.push({ seq: ++this.#seq, from, to, message: structuredClone(message), truncated });
  }

  // ── links ──────────────────────────────────────────────────────────────────────

  #linkUp(a: string, b: string): void {
    const nodeA = this.#nodes.get(a);
    const nodeB = this.#nodes.get(b);
    if (nodeA === undefined || nodeB === undefined || !this.#canTalk(nodeA, nodeB)) return;
    const key = pairKey(a, b);
    const link = this.#links.get(key) ?? { up: false, ends: undefined };
    this.#links.set(key, link);
    if (link.up) return;
    const endA = this.#end(nodeA);
    const endB = this.#end(nodeB);
    link.up = true;
    link.ends = [endA, endB];
    this.#activity++;
    endA.adapter.emit('peer-candidate', {
      peerId: endB.peerId,
      peerMetadata: endB.adapter.peerMetadata ?? {},
    });
    endB.adapter.emit('peer-candidate', {
      peerId: endA.peerId,
      peerMetadata: endA.adapter.peerMetadata ?? {},
    });
  }

  /** Takes a link down now; the two sides hear of it on the next drain. */
  #linkDown(a: NodeState, b: NodeState): void {
    const link = this.#links.get(pairKey(a.name, b.name));
    if (link?.up !== true || link.ends === undefined) return;
    link.up = false;
    this.#activity++;
    for (const key of [channelKey(a.name, b.name), channelKey(b.name, a.name)]) {
      const channel = this.#channels.get(key);
      if (channel !== undefined) {
        this.#stats.discarded += channel.queue.length;
        channel.queue.length = 0;
      }
    }
    const [endA, endB] = link.ends;
    this.#actions.push({ kind: 'peer-disconnected', adapter: endA.adapter, peerId: endB.peerId });
    this.#actions.push({ kind: 'peer-disconnected', adapter: endB.adapter, peerId: endA.peerId });
  }

  /** A connection fault: the link goes down now and comes back after both sides heard. */
  #reset(a: NodeState, b: NodeState): void {
    this.#linkDown(a, b);
    this.#actions.push({ kind: 'connect', a: a.name, b: b.name });
  }

  #downAll(node: NodeState): void {
    for (const other of this.#nodes.values()) if (other !== node) this.#linkDown(node, other);
  }

  #connectAll(node: NodeState): void {
    for (const other of this.#nodes.values()) {
      if (other !== node) this.#actions.push({ kind: 'connect', a: node.name, b: other.name });
    }
  }

  // ── helpers ────────────────────────────────────────────────────────────────────

  *#pairs(): Generator<[NodeState, NodeState]> {
    const nodes = [...this.#nodes.values()];
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) yield [nodes[i] as NodeState, nodes[j] as NodeState];
    }
  }

  #node(name: string): NodeState {
    const node = this.#nodes.get(name);
    if (node === undefined)
      throw new RangeError(`FakeNetwork: unknown node ${name} (call adapter(name) first)`);
    return node;
  }

  #nodeByPeer(peerId: PeerId): NodeState | undefined {
    for (const node of this.#nodes.values()) if (node.joined && node.adapter?.peerId === peerId) return node;
    return undefined;
  }

  #sameGroup(a: NodeState, b: NodeState): boolean {
    if (this.#groups === undefined) return true;
    const group = this.#groups.get(a.name);
    return group !== undefined && group === this.#groups.get(b.name);
  }

  #canTalk(a: NodeState, b: NodeState): boolean {
    return (
      a !== b &&
      a.online &&
      b.online &&
      a.joined &&
      b.joined &&
      a.adapter?.peerId !== undefined &&
      b.adapter?.peerId !== undefined &&
      this.#sameGroup(a, b)
    );
  }

  #end(node: NodeState): LinkEnd {
    const adapter = node.adapter as FakeNetworkAdapter;
    return { node, adapter, peerId: adapter.peerId as PeerId };
  }

  #isEnd(link: Link, node: NodeState, adapter: FakeNetworkAdapter): boolean {
    return link.ends?.some((end) => end.node === node && end.adapter === adapter) ?? false;
  }

  #isCurrent(adapter: FakeNetworkAdapter): boolean {
    return this.#nodes.get(adapter.nodeName)?.adapter === adapter;
  }

  #hasWork(): boolean {
    return this.#actions.length > 0 || this.inFlight > 0;
  }

  #stalled(what: string): AccordError {
    const stats = this.stats();
    return new AccordError(
      ErrorCode.NETWORK_STALLED,
      `FakeNetwork seed=${this.seed}: ${what} (in flight ${this.inFlight}, stats ${JSON.stringify(stats)}); replay with this seed`,
      { details: { seed: this.seed, inFlight: this.inFlight, ...stats } },
    );
  }
}
