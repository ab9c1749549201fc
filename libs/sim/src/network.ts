import type { FaultPlan } from './faults.js';
import { isDown } from './faults.js';
import type { Prng } from './prng.js';
import type { Scheduler } from './scheduler.js';
import type { LatencyModel, LinkModel, LinkOverride } from './scenario.js';

/** What a receiving node learns with a frame. */
export interface FrameInfo {
  readonly from: string;
  readonly to: string;
  /** Simulated time the frame was sent. */
  readonly sentAt: number;
  /** Only a prefix of the sent bytes arrived. */
  readonly truncated: boolean;
}

/** A node's inbox. */
export type FrameHandler = (data: Uint8Array, info: FrameInfo) => void;

/** Totals over every link; bytes are what senders put on the wire. */
export interface NetworkCounters {
  framesSent: number;
  bytesSent: number;
  framesDelivered: number;
  bytesDelivered: number;
  droppedLoss: number;
  droppedOffline: number;
  duplicated: number;
  reordered: number;
  truncated: number;
  /** Copies of lost frames a stream sent again ({@link Retransmission}); their bytes are in `bytesSent`. */
  retransmitted: number;
  /**
   * Frames a stream took while it was giving up on an earlier one: they were queued behind it and
   * go down with the connection, never delivered.
   */
  abandoned: number;
}

/**
 * How a connection-oriented link (a WebSocket over TCP) recovers a lost frame: it is sent again
 * after `rtoMs`, the timeout doubling (up to `rtoMaxMs`) at each loss in a row, each copy lost
 * with the link's probability again; the frames behind it wait (head-of-line blocking). Once the
 * next copy would leave more than `giveUpMs` after the frame was first sent, the connection
 * breaks at that instant, as a socket closed for silence does.
 */
export interface Retransmission {
  readonly rtoMs: number;
  readonly rtoMaxMs: number;
  readonly giveUpMs: number;
}

/** The faults drawn for one frame. */
interface Draws {
  readonly model: LinkModel;
  readonly lost: boolean;
  readonly dup: boolean;
  readonly reorder: boolean;
  readonly cut: boolean;
  readonly cutAt: number;
}

interface LinkState {
  busyUntil: number;
  lastDelivery: number;
  /** A stream is giving up on a frame: the connection breaks at this instant. */
  severedAt: number | undefined;
}

/**
 * A simulated network: frames between named nodes, delayed, lost, duplicated, reordered or cut
 * short per each link's {@link LinkModel}, and dropped while either end is down (partitioned or
 * crashed, per the {@link FaultPlan}).
 *
 * @remarks Every draw comes from the network's own {@link Prng} in send order, so a run is
 * reproducible. A link (one direction of a node pair) carries one frame at a time at its
 * bandwidth; frames not chosen for reordering arrive in the order they were sent. A frame sent
 * while either end is down is dropped at once; one whose receiver is down when it would arrive is
 * dropped then. Delivery calls the receiver's handler from the scheduler, never synchronously
 * from `send`. A frame sent as part of a stream ({@link Retransmission}) is not lost but late, and
 * a stream neither duplicates nor reorders (see {@link SimNetwork.send}).
 */
export class SimNetwork {
  readonly #scheduler: Scheduler;
  readonly #prng: Prng;
  readonly #faults: FaultPlan;
  readonly #default: LinkModel;
  readonly #overrides: readonly LinkOverride[];
  readonly #handlers = new Map<string, FrameHandler>();
  readonly #links = new Map<string, LinkState>();
  readonly #models = new Map<string, LinkModel>();
  readonly #dropObservers: ((from: string, to: string) => void)[] = [];
  readonly counters: NetworkCounters = {
    framesSent: 0,
    bytesSent: 0,
    framesDelivered: 0,
    bytesDelivered: 0,
    droppedLoss: 0,
    droppedOffline: 0,
    duplicated: 0,
    reordered: 0,
    truncated: 0,
    retransmitted: 0,
    abandoned: 0,
  };

  constructor(
    scheduler: Scheduler,
    prng: Prng,
    faults: FaultPlan,
    links: { readonly default: LinkModel; readonly links: readonly LinkOverride[] },
  ) {
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#faults = faults;
    this.#default = links.default;
    this.#overrides = links.links;
  }

  /** Sets `node`'s inbox (replacing any earlier one: a restarted process attaches anew). */
  attach(node: string, handler: FrameHandler): void {
    this.#handlers.set(node, handler);
  }

  /**
   * Calls `fn` whenever a frame is dropped (a datagram lost, an end down, a stream giving up on a
   * frame), at the instant of the drop: a connection-oriented transport on top learns of it as a
   * broken connection.
   */
  onDrop(fn: (from: string, to: string) => void): void {
    this.#dropObservers.push(fn);
  }

  #dropped(from: string, to: string): void {
    for (const fn of this.#dropObservers) fn(from, to);
  }

  /** True when `node` is neither partitioned away nor crashed now. */
  isUp(node: string): boolean {
    return !isDown(this.#faults, node, this.#scheduler.now);
  }

  /** The model of the link between `a` and `b` (the last matching override wins). */
  modelOf(a: string, b: string): LinkModel {
    const key = a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
    let m = this.#models.get(key);
    if (m === undefined) {
      m = this.#default;
      for (const o of this.#overrides) {
        const [x, y] = o.between;
        const hit = (p: string, q: string): boolean => (x === '*' || x === p) && (y === '*' || y === q);
        if (hit(a, b) || hit(b, a)) m = o.model;
      }
      this.#models.set(key, m);
    }
    return m;
  }

  /**
   * Puts `data` on the link from `from` to `to`: as a datagram (a request of its own, the
   * baseline's HTTP), or with `stream` as a frame of a connection-oriented stream.
   *
   * @remarks The faults of a datagram are the application's: it is lost, delivered twice, overtaken
   * or cut. A stream is TCP: a lost frame is sent again ({@link Retransmission}); a duplicated one
   * crosses the wire twice (its bytes counted) and the receiver's TCP discards the copy; a
   * reordered one arrives up to `reorderMax` late and the frames behind it wait (the application
   * sees the stream in order, later); a cut one arrives cut (a garbled WebSocket frame).
   */
  send(from: string, to: string, data: Uint8Array, stream?: Retransmission): void {
    const c = this.counters;
    c.framesSent++;
    c.bytesSent += data.length;
    const now = this.#scheduler.now;
    if (!this.isUp(from) || !this.isUp(to)) {
      c.droppedOffline++;
      this.#dropped(from, to);
      return;
    }
    const model = this.modelOf(from, to);
    const p = this.#prng;
    // Draw every fault of the frame up front, in a fixed order, so one frame's draws never depend
    // on another's outcome.
    const lost = p.chance(model.loss);
    const dup = p.chance(model.duplicate);
    const reorder = p.chance(model.reorder);
    const cut = p.chance(model.truncate);
    const cutAt = data.length > 0 ? p.int(data.length) : 0;
    const link = this.#link(from, to);
    if (stream !== undefined) {
      this.#onStream(link, from, to, data, { model, lost, dup, reorder, cut, cutAt }, stream);
      return;
    }
    if (lost) {
      c.droppedLoss++;
      this.#dropped(from, to);
      return;
    }
    const payload = cut ? data.subarray(0, cutAt) : data;
    if (cut) c.truncated++;
    const start = Math.max(now, link.busyUntil);
    link.busyUntil = start + (data.length * 1000) / model.bandwidth;
    const info: FrameInfo = { from, to, sentAt: now, truncated: cut };
    const copies = dup ? 2 : 1;
    if (dup) c.duplicated++;
    for (let i = 0; i < copies; i++) {
      let at = link.busyUntil + this.#latency(model.latency);
      if (reorder && i === 0) {
        c.reordered++;
        at += p.uniform(0, model.reorderMaxMs);
      } else {
        at = Math.max(at, link.lastDelivery);
        link.lastDelivery = at;
      }
      this.#scheduler.at(at, () => this.#deliver(payload, info));
    }
  }

  #link(from: string, to: string): LinkState {
    const key = `${from}\u0000${to}`;
    let link = this.#links.get(key);
    if (link === undefined) {
      link = { busyUntil: 0, lastDelivery: 0, severedAt: undefined };
      this.#links.set(key, link);
    }
    return link;
  }

  /** {@link SimNetwork.send} of a stream's frame, whose faults `f` are drawn. */
  #onStream(
    link: LinkState,
    from: string,
    to: string,
    data: Uint8Array,
    f: Draws,
    stream: Retransmission,
  ): void {
    const c = this.counters;
    const now = this.#scheduler.now;
    if (link.severedAt !== undefined) {
      if (now < link.severedAt) {
        c.abandoned++;
        return;
      }
      link.severedAt = undefined;
    }
    // When the copy that gets through leaves: each loss in a row waits a doubled timeout.
    let leaves = now;
    if (f.lost) {
      c.droppedLoss++;
      for (let rto = stream.rtoMs; ; rto = Math.min(2 * rto, stream.rtoMaxMs)) {
        const next = leaves + rto;
        if (next - now > stream.giveUpMs) return this.#sever(link, from, to, now + stream.giveUpMs, false);
        // A partition or crash meanwhile: that copy finds an end down, and the connection breaks.
        if (isDown(this.#faults, from, next) || isDown(this.#faults, to, next))
          return this.#sever(link, from, to, next, true);
        leaves = next;
        c.retransmitted++;
        c.bytesSent += data.length;
        if (!this.#prng.chance(f.model.loss)) break;
        c.droppedLoss++;
      }
    }
    if (f.dup) {
      c.duplicated++;
      c.bytesSent += data.length;
    }
    if (f.cut) c.truncated++;
    const onWire = (data.length * 1000) / f.model.bandwidth;
    link.busyUntil = Math.max(now, link.busyUntil) + onWire;
    let at = Math.max(link.busyUntil, leaves + onWire) + this.#latency(f.model.latency);
    if (f.reorder) {
      c.reordered++;
      at += this.#prng.uniform(0, f.model.reorderMaxMs);
    }
    // In order: behind every frame sent before it, however late that one is.
    at = Math.max(at, link.lastDelivery);
    link.lastDelivery = at;
    const payload = f.cut ? data.subarray(0, f.cutAt) : data;
    const info: FrameInfo = { from, to, sentAt: now, truncated: f.cut };
    this.#scheduler.at(at, () => this.#deliver(payload, info));
  }

  /** The stream from `from` to `to` breaks at `at`; what it takes until then is abandoned. */
  #sever(link: LinkState, from: string, to: string, at: number, offline: boolean): void {
    link.severedAt = at;
    this.#scheduler.at(at, () => {
      if (offline) this.counters.droppedOffline++;
      this.#dropped(from, to);
    });
  }

  #latency(m: LatencyModel): number {
    switch (m.dist) {
      case 'fixed':
        return m.ms;
      case 'uniform':
        return this.#prng.uniform(m.minMs, m.maxMs);
      case 'lognormal':
        return m.medianMs * Math.exp(m.sigma * this.#prng.normal());
    }
  }

  #deliver(data: Uint8Array, info: FrameInfo): void {
    const handler = this.#handlers.get(info.to);
    if (handler === undefined || !this.isUp(info.to)) {
      this.counters.droppedOffline++;
      this.#dropped(info.from, info.to);
      return;
    }
    this.counters.framesDelivered++;
    this.counters.bytesDelivered += data.length;
    handler(data, info);
  }
}
