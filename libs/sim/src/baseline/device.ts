import type { DeviceId, EventId, SignedEvent } from '@accord/protocol';
import { asFacilityId, deviceIdFromPublicKey, formatHlc, newEventId } from '@accord/protocol';
import type { Draft } from '@accord/domain';
import { DomainEventType, Projection, checkEvent, prepareDraft, specOf, utcDate } from '@accord/domain';
import type { SimNetwork } from '../network.js';
import type { Prng } from '../prng.js';
import type { Scheduler, SimClock, Timer } from '../scheduler.js';
import type { BaselineOptions } from '../scenario.js';
import type { Action, Intent } from '../workload.js';
import { interpretAction } from '../workload.js';
import { projectionFingerprint } from '../symptoms.js';
import { recordsOf } from './records.js';
import type { BaselineRequest, BaselineResponse } from './wire.js';
import { decodeMessage, encodeMessage } from './wire.js';

/** Where one of the device's own events stands. */
export type EntryState = 'outbox' | 'accepted' | 'dead';

/** One event the device's user saved. */
export interface LocalEntry {
  readonly event: SignedEvent;
  readonly fact: string;
  readonly records: readonly string[];
  state: EntryState;
  /** The dead-letter code (`409`, `422`, …, or `severed` / `timeout` for transport failures). */
  deadCode?: string;
  /** A pull overwrote the records it changed: the user no longer sees it. */
  masked: boolean;
}

/** What the run needs to hear from a device (metrics). */
export interface DeviceObserver {
  deadlettered(code: string): void;
  changeLost(device: BaselineDevice, entry: LocalEntry): void;
  encounterReappeared(device: BaselineDevice, encounterId: string): void;
  pulled(device: BaselineDevice): void;
  appended(device: BaselineDevice, entry: LocalEntry, reentry: boolean): void;
}

/**
 * A tablet running the incumbent's queue-based disconnected client.
 *
 * @remarks
 * - Every save is applied to the local copy and queued in a FIFO outbox (durable: it survives a
 *   crash). The push loop sends the head, one at a time, and drops it on success. While the
 *   server cannot be reached (the incumbent's availability ping) it waits and tries again.
 * - A rejection (500/422/409/404/410) moves the item to the dead-letter queue, which the user does
 *   not see. A 409 on a stale basis is first re-sent once with force (last writer wins). A
 *   connection reset or a cut-off answer moves it there at once; a timeout is retried, and after
 *   `maxRetries` timeouts it goes there too.
 * - The periodic pull asks for records modified since the last pull (the watermark is this
 *   device's clock, minus an overlap) and overwrites the local copy of each returned record with
 *   the server's version. Only dead-lettered changes are overwritten (one still queued will be
 *   pushed): the user then sees the change gone and, with probability `reentry`, re-enters it.
 * - The local copy is the real domain projection folded over the server events received and the
 *   user's own events that were not overwritten.
 */
export class BaselineDevice {
  readonly node: string;
  readonly facility: string;
  readonly deviceId: DeviceId;
  readonly #scheduler: Scheduler;
  readonly #network: SimNetwork;
  readonly #clock: SimClock;
  readonly #prng: Prng;
  readonly #options: BaselineOptions;
  readonly #server: string | undefined;
  readonly #reentry: number;
  readonly #observer: DeviceObserver;

  /** Ids of the server events received by pulls. */
  readonly #known = new Set<EventId>();
  /** The server events received, folded in the order they arrived: the base of the local copy. */
  readonly #base = Projection.empty();
  readonly entries: LocalEntry[] = [];
  readonly #outbox: LocalEntry[] = [];
  #view = Projection.empty();
  #viewDirty = false;
  #fingerprint: string | undefined;
  readonly #closed = new Set<string>();
  readonly #reappeared = new Set<string>();
  #watermark: number | undefined;
  #seq = 0;
  #hlcWall = 0;
  #hlcCounter = 0;
  #req = 0;
  #crashed = false;
  /** Bumped at every crash: answers and timers of an earlier incarnation are ignored. */
  #incarnation = 0;
  #push: { req: number; entry: LocalEntry; timer: Timer; forced: boolean } | undefined;
  #pull: { req: number; timer: Timer } | undefined;
  #pushWake: Timer | undefined;
  readonly #retries = new Map<LocalEntry, number>();
  /** Pulls that completed, with the simulated time of each. */
  readonly pullTimes: number[] = [];
  #reentries = 0;

  constructor(opts: {
    node: string;
    facility: string;
    scheduler: Scheduler;
    network: SimNetwork;
    clock: SimClock;
    prng: Prng;
    options: BaselineOptions;
    server: string | undefined;
    reentry: number;
    observer: DeviceObserver;
  }) {
    this.node = opts.node;
    this.facility = opts.facility;
    this.#scheduler = opts.scheduler;
    this.#network = opts.network;
    this.#clock = opts.clock;
    this.#prng = opts.prng;
    this.#options = opts.options;
    this.#server = opts.server;
    this.#reentry = opts.reentry;
    this.#observer = opts.observer;
    this.deviceId = deviceIdFromPublicKey(this.#prng.bytes(32));
    this.#network.attach(this.node, (bytes) => this.#receive(bytes));
    // Pulls run every interval from a random phase, so devices do not pull in lock-step.
    this.#scheduler.after(this.#prng.uniform(0, this.#options.pullIntervalMs), () => this.#pullTick());
  }

  /** The local copy as the user sees it. */
  get view(): Projection {
    if (this.#viewDirty) this.#rebuild();
    return this.#view;
  }

  /** A string equal on two devices exactly when their counters and live patients agree. */
  fingerprint(): string {
    if (this.#fingerprint === undefined) {
      this.#fingerprint = projectionFingerprint(this.view);
    }
    return this.#fingerprint;
  }

  /** Items waiting in the outbox. */
  get outboxSize(): number {
    return this.#outbox.length;
  }

  /** Changes the user re-entered because they looked lost. */
  get reentries(): number {
    return this.#reentries;
  }

  /** The user performs a planned action (nothing happens while the tablet is crashed). */
  act(action: Action): void {
    if (this.#crashed) return;
    const intent = interpretAction(action, this.view, utcDate(this.#clock.now()));
    if (intent !== undefined) this.#save(intent, false);
  }

  /** The process dies: requests in flight are forgotten; the outbox and the local database stay. */
  crash(): void {
    this.#crashed = true;
    this.#incarnation++;
    for (const t of [this.#push?.timer, this.#pull?.timer, this.#pushWake])
      if (t !== undefined) this.#scheduler.cancel(t);
    this.#push = undefined;
    this.#pull = undefined;
    this.#pushWake = undefined;
  }

  /** The process starts again and, as the incumbent does at start-up, exhausts its outbox. */
  restart(): void {
    this.#crashed = false;
    this.#pump();
  }

  #save(intent: Intent, reentry: boolean): void {
    const prepared = prepareDraft(this.view, intent.draft);
    if (!prepared.ok) return; // a draft the catalogue refuses is refused in the form, never saved
    const p = prepared.value;
    const now = this.#clock.now();
    if (now > this.#hlcWall) {
      this.#hlcWall = now;
      this.#hlcCounter = 0;
    } else this.#hlcCounter++;
    const event: SignedEvent = {
      v: 1,
      id: newEventId(Math.max(0, now), this.#prng.bytes(10)),
      facility: asFacilityId(this.facility),
      device: this.deviceId,
      seq: ++this.#seq,
      hlc: formatHlc(this.#hlcWall, this.#hlcCounter),
      type: p.type,
      schema: p.schema,
      subject: p.subject,
      deps: p.deps,
      ...(p.basis !== undefined ? { basis: p.basis } : {}),
      data: p.data,
      // The incumbent does not sign; the simulator keeps the field empty rather than fake it.
      sig: '',
    };
    const entry: LocalEntry = {
      event,
      fact: intent.fact,
      records: recordsOf(event),
      state: 'outbox',
      masked: false,
    };
    this.entries.push(entry);
    this.#outbox.push(entry);
    this.#view.apply(event);
    this.#changed();
    if (
      event.type === DomainEventType.EncounterCompleted ||
      event.type === DomainEventType.EncounterCancelled
    ) {
      this.#closed.add(event.subject.id);
    }
    if (reentry) this.#reentries++;
    this.#observer.appended(this, entry, reentry);
    this.#pump();
  }

  #changed(): void {
    this.#fingerprint = undefined;
  }

  // --- push -----------------------------------------------------------------------------------

  #pump(): void {
    if (this.#crashed || this.#push !== undefined || this.#pushWake !== undefined) return;
    const entry = this.#outbox[0];
    if (entry === undefined || this.#server === undefined) return;
    if (!this.#serverReachable()) {
      // The availability check failed: come back in 30 seconds.
      this.#pushWake = this.#scheduler.after(this.#options.pushRetryMs, () => {
        this.#pushWake = undefined;
        this.#pump();
      });
      return;
    }
    this.#sendPush(entry, false);
  }

  #sendPush(entry: LocalEntry, forced: boolean): void {
    const req = ++this.#req;
    const incarnation = this.#incarnation;
    const timer = this.#scheduler.after(this.#options.timeoutMs, () => {
      if (incarnation === this.#incarnation && this.#push?.req === req) this.#pushTimedOut(entry);
    });
    this.#push = { req, entry, timer, forced };
    this.#send({ t: 'push', req, event: entry.event, ...(forced ? { force: true as const } : {}) });
  }

  #pushTimedOut(entry: LocalEntry): void {
    this.#push = undefined;
    const n = (this.#retries.get(entry) ?? 0) + 1;
    this.#retries.set(entry, n);
    if (n > this.#options.maxRetries) {
      this.#deadletter(entry, 'timeout');
      this.#pump();
      return;
    }
    this.#pushWake = this.#scheduler.after(this.#options.pushRetryMs, () => {
      this.#pushWake = undefined;
      this.#pump();
    });
  }

  #pushAnswered(m: Extract<BaselineResponse, { t: 'pushed' }>): void {
    const p = this.#push;
    if (p === undefined || p.req !== m.req) return;
    this.#scheduler.cancel(p.timer);
    this.#push = undefined;
    if (m.ok) {
      this.#outbox.shift();
      p.entry.state = 'accepted';
    } else if (m.code === 409 && m.rule === 'RULE_STALE_BASIS' && !p.forced) {
      this.#sendPush(p.entry, true);
      return;
    } else {
      this.#deadletter(p.entry, String(m.code));
    }
    this.#pump();
  }

  /** The connection dropped: the item in flight goes to the dead-letter queue (the incumbent's `WebException`). */
  #severed(): void {
    const p = this.#push;
    if (p !== undefined) {
      this.#scheduler.cancel(p.timer);
      this.#push = undefined;
      this.#deadletter(p.entry, 'severed');
    }
    if (this.#pull !== undefined) {
      this.#scheduler.cancel(this.#pull.timer);
      this.#pull = undefined;
    }
    this.#pump();
  }

  #deadletter(entry: LocalEntry, code: string): void {
    if (this.#outbox[0] === entry) this.#outbox.shift();
    entry.state = 'dead';
    entry.deadCode = code;
    this.#observer.deadlettered(code);
  }

  // --- pull -----------------------------------------------------------------------------------

  #pullTick(): void {
    this.#scheduler.after(this.#options.pullIntervalMs, () => this.#pullTick());
    if (this.#crashed || this.#pull !== undefined || !this.#serverReachable()) return;
    const req = ++this.#req;
    const incarnation = this.#incarnation;
    const timer = this.#scheduler.after(this.#options.timeoutMs, () => {
      if (incarnation === this.#incarnation && this.#pull?.req === req) this.#pull = undefined;
    });
    this.#pull = { req, timer };
    const since = this.#watermark === undefined ? -1 : this.#watermark - this.#options.overlapMs;
    this.#send({ t: 'pull', req, since });
  }

  #pullAnswered(m: Extract<BaselineResponse, { t: 'pulled' }>): void {
    const p = this.#pull;
    if (p === undefined || p.req !== m.req) return;
    this.#scheduler.cancel(p.timer);
    this.#pull = undefined;
    let changed = false;
    for (const e of m.events) {
      if (!this.#known.has(e.id)) {
        this.#known.add(e.id);
        this.#base.apply(e);
        changed = true;
      }
    }
    const returned = new Set(m.records);
    for (const entry of this.entries) {
      if (entry.state !== 'dead' || entry.masked || this.#known.has(entry.event.id)) continue;
      if (!entry.records.some((r) => returned.has(r))) continue;
      entry.masked = true;
      changed = true;
      this.#observer.changeLost(this, entry);
      if (this.#prng.chance(this.#reentry)) {
        // The user notices the change is gone and does it again a little later.
        const incarnation = this.#incarnation;
        this.#scheduler.after(this.#prng.uniform(60_000, 30 * 60_000), () => {
          if (!this.#crashed && incarnation === this.#incarnation) this.#reenter(entry);
        });
      }
    }
    this.#watermark = this.#clock.now();
    if (changed) {
      this.#viewDirty = true;
      this.#changed();
      this.#checkQueue();
    }
    this.pullTimes.push(this.#scheduler.now);
    this.#observer.pulled(this);
  }

  /** The same data entered again; records it creates get new ids, as a fresh form would give them. */
  #reenter(entry: LocalEntry): void {
    const e = entry.event;
    const checked = checkEvent(e);
    if (!checked.ok) return;
    const data = { ...(e.data as Record<string, unknown>) };
    if (specOf(checked.value.type).lifecycle === 'create') {
      const suffix = `-r${this.#reentries + 1}`;
      for (const key of ['patientId', 'encounterId', 'appointmentId'] as const) {
        if (typeof data[key] === 'string' && `${e.subject.id}` === data[key])
          data[key] = `${data[key]}${suffix}`;
      }
    }
    const draft: Draft = { type: e.type, data };
    this.#save({ action: `${entry.fact}:reentry`, fact: entry.fact, draft, violation: false }, true);
  }

  /** An encounter this user closed that shows as open again re-appeared on the queue. */
  #checkQueue(): void {
    const view = this.view;
    for (const id of this.#closed) {
      if (this.#reappeared.has(id)) continue;
      const e = view.encounter(id);
      if (e !== undefined && (e.state === 'waiting' || e.state === 'in-progress')) {
        this.#reappeared.add(id);
        this.#observer.encounterReappeared(this, id);
      }
    }
  }

  /** The local copy: the server's records as received, then the user's changes they did not overwrite. */
  #rebuild(): void {
    const v = this.#base.clone();
    for (const entry of this.entries) if (!entry.masked) v.apply(entry.event);
    this.#view = v;
    this.#viewDirty = false;
  }

  // --- transport ------------------------------------------------------------------------------

  /**
   * The incumbent pings the server before a push or pull and reschedules when it gets no answer
   * (no network, or the server down); the model asks the network directly. A request that is
   * then lost or cut on the way still times out or is severed.
   */
  #serverReachable(): boolean {
    return this.#server !== undefined && this.#network.isUp(this.node) && this.#network.isUp(this.#server);
  }

  #send(m: BaselineRequest): void {
    this.#network.send(this.node, this.#server!, encodeMessage(m));
  }

  #receive(bytes: Uint8Array): void {
    if (this.#crashed) return;
    const m = decodeMessage<BaselineResponse>(bytes);
    if (m === undefined || m.t === 'reset') {
      this.#severed();
      return;
    }
    if (m.t === 'pushed') this.#pushAnswered(m);
    else this.#pullAnswered(m);
  }
}
