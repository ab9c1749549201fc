import type { EventId, SignedEvent } from '@accord/protocol';
import { Projection, utcDate } from '@accord/domain';
import { validate } from '@accord/rules';
import type { SimNetwork } from '../network.js';
import type { SimClock } from '../scheduler.js';
import { recordsOf } from './records.js';
import type { BaselineRequest, BaselineResponse } from './wire.js';
import { decodeMessage, encodeMessage } from './wire.js';

/** One facility's data on the central server. */
interface FacilityData {
  /** The accepted events folded by the real domain projection: the server's records. */
  readonly state: Projection;
  readonly accepted: SignedEvent[];
  /** Server-clock time each accepted event was applied. */
  readonly acceptedAt: number[];
  /** Server-clock time each record last changed. */
  readonly modifiedAt: Map<string, number>;
  /** Positions in `accepted` of the events that make up each record. */
  readonly eventsOf: Map<string, number[]>;
}

/**
 * The incumbent's central server: validates each pushed item with the real business rules of
 * `@accord/rules` against its current state and answers with the HTTP-like code; answers pulls
 * with every record modified since the client's watermark (the changes made to it since then:
 * a client that missed a window never gets that window's changes, as with the incumbent's
 * device-clock watermark), plus the facility's open encounters whole (the encounter-queue
 * subscription polls those on every pull).
 *
 * @remarks No idempotence: an item pushed twice is judged twice (a create then meets 409, a dose
 * 422 out of sequence), as in the incumbent. A forced re-send (`force`) of an update that failed
 * on a stale basis is applied on the current basis: last writer wins, per field.
 */
export class BaselineServer {
  #facilities = new Map<string, FacilityData>();
  /** How many accepted events each facility had at the last {@link backup}. */
  #backup = new Map<string, number>();
  readonly #clock: SimClock;
  readonly #network: SimNetwork;
  readonly node: string;

  constructor(node: string, clock: SimClock, network: SimNetwork) {
    this.node = node;
    this.#clock = clock;
    this.#network = network;
    network.attach(node, (bytes, info) => this.#receive(bytes, info.from));
  }

  /** The server's state of `facility` (an empty one if it has none). */
  state(facility: string): Projection {
    return this.#facility(facility).state;
  }

  /** True when the server accepted the event with this id. */
  hasEvent(facility: string, id: EventId): boolean {
    return this.#facility(facility).state.hasEvent(id);
  }

  /** Backs the database up: {@link restore} puts back what it holds now. */
  backup(): void {
    this.#backup = new Map([...this.#facilities].map(([f, d]) => [f, d.accepted.length]));
  }

  /**
   * The database replaced by the last backup (none: an empty one), as an administrator restores a
   * failed server: whatever it accepted since is gone, and no client is told. Clients dropped
   * those items from their outboxes when they were accepted, and their pull watermarks are past
   * the backup, so nothing brings them back.
   */
  restore(): void {
    const before = this.#facilities;
    this.#facilities = new Map();
    for (const [f, d] of before) {
      const kept = this.#facility(f);
      const n = this.#backup.get(f) ?? 0;
      for (let i = 0; i < n; i++) this.#accept(kept, d.accepted[i]!, d.acceptedAt[i]!);
    }
  }

  #facility(f: string): FacilityData {
    let d = this.#facilities.get(f);
    if (d === undefined) {
      d = {
        state: Projection.empty(),
        accepted: [],
        acceptedAt: [],
        modifiedAt: new Map(),
        eventsOf: new Map(),
      };
      this.#facilities.set(f, d);
    }
    return d;
  }

  /** Applies an accepted event to `d` at server time `now`. */
  #accept(d: FacilityData, event: SignedEvent, now: number): void {
    d.state.apply(event, true);
    const at = d.accepted.length;
    d.accepted.push(event);
    d.acceptedAt.push(now);
    for (const r of recordsOf(event)) {
      d.modifiedAt.set(r, now);
      const list = d.eventsOf.get(r);
      if (list === undefined) d.eventsOf.set(r, [at]);
      else list.push(at);
    }
  }

  #receive(bytes: Uint8Array, from: string): void {
    const m = decodeMessage<BaselineRequest>(bytes);
    if (m === undefined) {
      this.#send(from, { t: 'reset' });
      return;
    }
    // Facility of the requester: device nodes are `f<F>-d<D>`.
    const facility = from.split('-')[0]!;
    if (m.t === 'push') this.#send(from, this.#push(facility, m.req, m.event, m.force === true));
    else this.#send(from, this.#pull(facility, m.req, m.since));
  }

  #push(facility: string, req: number, event: SignedEvent, force: boolean): BaselineResponse {
    const d = this.#facility(facility);
    const ctx = { nowMs: this.#clock.now() };
    let judged = event;
    let verdict = validate(d.state, judged, ctx);
    if (
      force &&
      verdict.outcome === 'deadletter' &&
      verdict.rule === 'RULE_STALE_BASIS' &&
      event.basis !== undefined
    ) {
      // X-Patch-Force: the patch is applied over whatever the server holds now.
      const basis: Record<string, EventId | null> = {};
      for (const field of Object.keys(event.basis)) basis[field] = d.state.fieldVersion(event.subject, field);
      judged = { ...event, basis };
      verdict = validate(d.state, judged, ctx);
    }
    if (verdict.outcome === 'deadletter')
      return { t: 'pushed', req, ok: false, code: verdict.code, rule: verdict.rule };
    this.#accept(d, judged, this.#clock.now());
    return { t: 'pushed', req, ok: true };
  }

  #pull(facility: string, req: number, since: number): BaselineResponse {
    const d = this.#facility(facility);
    const records = new Set<string>();
    const positions = new Set<number>();
    for (const [r, at] of d.modifiedAt) {
      if (at <= since) continue;
      records.add(r);
      for (const i of d.eventsOf.get(r) ?? []) if (d.acceptedAt[i]! > since) positions.add(i);
    }
    // The encounter-queue subscription returns every open encounter whole, on every poll.
    const q = d.state.queue(utcDate(this.#clock.now()));
    for (const e of [...q.waiting, ...q.inProgress]) {
      const r = `encounter/${e.encounterId}`;
      records.add(r);
      for (const i of d.eventsOf.get(r) ?? []) positions.add(i);
    }
    const events = [...positions].sort((a, b) => a - b).map((at) => d.accepted[at]!);
    return { t: 'pulled', req, records: [...records].sort(), events };
  }

  #send(to: string, m: BaselineResponse): void {
    this.#network.send(this.node, to, encodeMessage(m));
  }
}
