import type { DeviceId, EventId, FacilityId, JsonValue, SignedEvent, VerdictData } from '@accord/protocol';
import {
  boundDeadletter,
  boundText,
  forEachVerdictIn,
  MAX_VERDICT_REASON_CHARS,
  parseHlc,
  readTarget,
  RejectionCode,
  RELAY_EVENT_TYPES,
  SystemEventType,
} from '@accord/protocol';
import { ConfirmedFold, compareTentative, isSystemEventType, type Projection } from '@accord/domain';
import type { RuleVerdict } from '@accord/rules';
import { RULE_ELEVATION_REQUIRED, type FacilityPolicy, type GrantExpectation } from './elevation.js';
import {
  RULE_DEPENDENCY_MISSING,
  RULE_DEVICE_REVOKED,
  RULE_NEGATIVE_STOCK,
  RULE_NOT_DEADLETTERED,
  RULE_NOT_FOUND,
  RULE_RELAY_ONLY,
  RULE_SET_VERSION,
  RULE_SUPERSEDES_ACCEPTED,
  RULE_UNKNOWN_DEVICE,
  RULE_UNPROCESSABLE,
  RULE_WRONG_FACILITY,
  validate,
} from '@accord/rules';

/** How long a submission waits for a missing dependency before it is judged anyway (404): 30 s. */
export const DEFAULT_DEPENDENCY_DEADLINE_MS = 30_000;

/** What the {@link Adjudicator} needs to know about its relay and facility. */
export interface AdjudicatorOptions {
  /** The relay's own device id: its `Verdict` events are history, not submissions. */
  readonly relay: DeviceId;
  /** The facility this relay serves; events naming another are refused (403). */
  readonly facility: FacilityId;
  /** The current roster: a device's membership, or undefined when the device is unknown. */
  readonly member: (device: DeviceId) => { readonly revoked: boolean } | undefined;
  /** How long a submission waits for its dependencies (default {@link DEFAULT_DEPENDENCY_DEADLINE_MS}). */
  readonly dependencyDeadlineMs?: number;
  /**
   * The facility policy on admin elevation and the relay's grant check (none: no discard needs a
   * grant). See {@link AdjudicatorElevation}.
   */
  readonly elevation?: AdjudicatorElevation;
}

/** How the adjudicator decides whether a `DeadletterDiscarded` needs, and has, an admin grant. */
export interface AdjudicatorElevation {
  readonly policy: FacilityPolicy;
  /** Undefined when `grant` is valid for `expect`, else the problem (see `GrantChecker`). */
  check(grant: unknown, expect: GrantExpectation): string | undefined;
}

/** Counters of an {@link Adjudicator}, for metrics. */
export interface AdjudicatorStats {
  /** Distinct events added (every kind). */
  readonly events: number;
  /** Verdicts issued by this instance (returned by `decide`), not counting history. */
  readonly verdicts: number;
  /** Submissions present without a verdict yet. */
  readonly waiting: number;
  /** Events whose latest verdict is a deadletter that no accepted discard or amend has resolved. */
  readonly deadletters: number;
}

/** One open deadletter: its target, code and rule, and the device that signed the target. */
export interface OpenDeadletter {
  readonly target: EventId;
  readonly code: RejectionCode;
  readonly rule: string;
  /** Undefined when the relay holds the verdict but not the event (history ahead of its event). */
  readonly device: DeviceId | undefined;
}

type NodeState = 'waiting' | 'ready' | 'decided' | 'other';

/** One present event. */
interface Node {
  readonly event: SignedEvent;
  /** When the dependency deadline expires (time added + deadline). */
  readonly deadline: number;
  /** Deps, plus the target of a retry or discard and the event an amend supersedes (unique). */
  readonly waitOn: readonly EventId[];
  /** For a discard or an amend: the event it resolves once accepted. */
  readonly resolves: EventId | undefined;
  /** For a retry or a discard: the event it is about. */
  readonly target: EventId | undefined;
  /** Unsatisfied entries of `waitOn` while waiting. */
  pending: number;
  /** waiting/ready: a submission without verdict; decided: has one; other: not a submission. */
  state: NodeState;
}

/** The latest verdict recorded for a target. */
interface Latest {
  readonly data: VerdictData;
  /** Issued by this instance (always newer than history) or read from the relay's own log. */
  readonly issued: boolean;
  /** The relay envelope `seq` of a history verdict (0 for issued ones). */
  readonly envSeq: number;
  /** Changes with every new latest verdict; stale queue entries carry an old one. */
  readonly token: number;
}

/** An entry of the ready queue: a first judgement (`token` undefined) or a 404 re-validation. */
interface ReadyEntry {
  readonly node: Node;
  readonly token: number | undefined;
}

/** What a 422 `RULE_NEGATIVE_STOCK` verdict names: the lot and the quantity the event takes from it. */
interface StockShortfall {
  readonly lot: string;
  readonly requested: number;
}

/** An open negative-stock deadletter waiting to be re-judged, in the order of its verdict. */
interface RestockEntry {
  readonly target: EventId;
  readonly latest: Latest;
}

/** A minimal binary heap. */
class Heap<T> {
  readonly #items: T[] = [];
  readonly #less: (a: T, b: T) => boolean;

  constructor(less: (a: T, b: T) => boolean) {
    this.#less = less;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): T | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.#less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.#less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

const byEvent = (a: Node, b: Node): boolean => compareTentative(a.event, b.event) < 0;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The lot and quantity a 422 `RULE_NEGATIVE_STOCK` verdict names, or undefined for any other verdict. */
function shortfallOf(data: VerdictData): StockShortfall | undefined {
  if (
    data.outcome !== 'deadletter' ||
    data.code !== RejectionCode.Rule ||
    data.rule !== RULE_NEGATIVE_STOCK
  ) {
    return undefined;
  }
  const { lot, requested } = data.details;
  if (typeof lot !== 'string' || typeof requested !== 'number' || !Number.isFinite(requested))
    return undefined;
  return { lot, requested };
}

/** The lot a domain event names in its data (stock events and vaccinations), if any. */
function lotOf(event: SignedEvent): string | undefined {
  if (!isRecord(event.data)) return undefined;
  const lot = event.data['lot'];
  return typeof lot === 'string' ? lot : undefined;
}

/** Older verdict first: history in relay envelope `seq` order, then this instance's in issue order. */
const byVerdictAge = (a: RestockEntry, b: RestockEntry): boolean =>
  a.latest.issued !== b.latest.issued
    ? b.latest.issued
    : a.latest.envSeq !== b.latest.envSeq
      ? a.latest.envSeq < b.latest.envSeq
      : a.latest.token < b.latest.token;

/** The dependencies a 404 `RULE_DEPENDENCY_MISSING` verdict names, or undefined for any other verdict. */
function missingOf(data: VerdictData): EventId[] | undefined {
  if (
    data.outcome !== 'deadletter' ||
    data.code !== RejectionCode.NotFound ||
    data.rule !== RULE_DEPENDENCY_MISSING
  ) {
    return undefined;
  }
  const m = data.details['missing'];
  return Array.isArray(m) ? [...new Set(m.filter((x): x is EventId => typeof x === 'string'))] : [];
}

function deadletter(
  code: RejectionCode,
  rule: string,
  reason: string,
  details: { readonly [k: string]: JsonValue },
): RuleVerdict {
  return { outcome: 'deadletter', code, rule, reason, details, ruleSet: RULE_SET_VERSION };
}

const ACCEPT: RuleVerdict = { outcome: 'accepted', ruleSet: RULE_SET_VERSION };

/** A thrown value as text, without trusting it to stringify. */
function describe(cause: unknown): string {
  try {
    return cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
  } catch {
    return 'an unreadable error';
  }
}

/**
 * The relay's validation loop, pure: it sees every event of the facility's log and decides which
 * verdicts to record, in causal order, against its confirmed state.
 *
 * @remarks No I/O, no timers, no clock: time comes in as `nowMs` arguments.
 *
 * - **Submissions** are the events not signed by `relay`. The relay's own `Verdict` and
 *   `AcceptedVerdicts` events (of this facility) are history: a target with a verdict is never judged a second time except for the
 *   reasons below, the latest one counts (highest relay envelope `seq`; verdicts issued by this
 *   instance are newer than any history), accepted targets are folded into the confirmed state in
 *   `seq` order by the `ConfirmedFold` of `@accord/domain`, the same fold as a device's (refolded
 *   from scratch when one arrives below what was folded), verdicts are read with
 *   `forEachVerdictIn` of `@accord/protocol`, the same reader as a device's, and {@link lastSeq}
 *   continues after the highest accepted `seq` seen. The relay's `RosterUpdated` (and anything
 *   else it signs) is ignored. Feed the relay's own log before the first {@link decide}, or it
 *   may judge again what it already judged.
 * - **Checks**, first failure wins: 403 roster and facility (`RULE_UNKNOWN_DEVICE`,
 *   `RULE_DEVICE_REVOKED`, `RULE_WRONG_FACILITY`, `RULE_RELAY_ONLY` for a device-signed
 *   relay type, `RELAY_EVENT_TYPES`), then `validate` of `@accord/rules` against the confirmed state
 *   (500, 404, 410, 409, 422). Signatures were verified by the log.
 * - **Causal order**: a submission waits until every id in its `deps` (plus the target of a retry
 *   or discard, and the event an amend supersedes) is present and has a verdict (an event that is
 *   not a submission counts as having one). After waiting `dependencyDeadlineMs` since it was
 *   added it is judged anyway (typically a 404 `RULE_DEPENDENCY_MISSING`).
 * - **Order of judgement**: among ready events, the smallest by (hlc, device, seq, id) first; when
 *   none is ready, the smallest expired waiting event, except that an expired waiting dependency
 *   of it is judged first (following dependencies down, never round a cycle).
 * - **Incomplete confirmed state**: while the relay's history accepts an event it does not hold
 *   (a relay restored from a backup relearns its verdicts from devices, sometimes before the
 *   events they judge), nothing is judged: the confirmed state lacks that event, so a judgement
 *   now could differ from the one the complete state gives — a dependency folded but skipped
 *   looks missing (404, then re-validated: two verdicts), a duplicate looks new. An arriving
 *   event can complete it at any moment; after `dependencyDeadlineMs` without it, judging goes
 *   on with what is there (as for a missing dependency) until it is complete again.
 * - **404 re-validation**: a present event whose latest verdict is a 404 `RULE_DEPENDENCY_MISSING`
 *   and that is not resolved is judged again, once, as soon as every dependency it named is in
 *   the confirmed state (it joins the ready events in the same order). The new verdict
 *   supersedes the 404 on devices because it has a higher relay envelope `seq`.
 * - **422 stock re-judgement**: a present domain event whose latest verdict is a 422
 *   `RULE_NEGATIVE_STOCK` (details `lot`, `requested`) and that is not resolved is judged again
 *   whenever the confirmed record of that lot has changed since it was last judged again (by this
 *   instance; a restart forgets) and the lot's confirmed balance covers `requested`. Such
 *   re-judgements come before any other judgement, oldest verdict first (history in relay envelope
 *   `seq` order, then this instance's in issue order), one at a time, so stock goes to the oldest
 *   deadletter first and an acceptance that takes stock is folded before the next one is judged.
 *   Only an acceptance is recorded (it takes a `seq` and supersedes the 422 on devices by its
 *   higher relay envelope `seq`); any other outcome (still short, or now refused by another rule)
 *   records nothing, so a 422 is never re-issued and never spams. An event is accepted at most
 *   once: an accepted one is no deadletter, and a retry or amend judged after it is refused (409).
 * - **RetryRequested{target}**: if the target's latest verdict is a deadletter that no accepted
 *   discard or amend resolved, the retry is accepted (it takes a `seq`) and the target is judged
 *   again at once (its verdict follows the retry's); otherwise 409 `RULE_NOT_DEADLETTERED` (the
 *   target untouched), or 404 `RULE_NOT_FOUND` when the relay holds the verdict but not the event.
 *   Every accepted retry re-validates once.
 * - **DeadletterDiscarded{target}**: accepted when the target's latest verdict is an unresolved
 *   deadletter (it resolves it; the confirmed state is unchanged), else 409 `RULE_NOT_DEADLETTERED`.
 * - **Amend** (`supersedes: X`): judged as a new event; when `validate` would answer accepted, 409
 *   or 422 but X's latest verdict is `accepted`, it is a 409 `RULE_SUPERSEDES_ACCEPTED`. An
 *   accepted amend resolves X.
 * - **Failures**: anything thrown while judging one event makes that event's verdict a 500
 *   `RULE_UNPROCESSABLE` and the loop goes on. Every deadletter is bounded (`boundDeadletter` of
 *   `@accord/protocol`: reason, details, rule), so its signed event can always be written.
 * - Every verdict carries `ruleSet` {@link RULE_SET_VERSION}; accepted verdicts of any event
 *   (retries and discards too) take the next `seq` of one counter. Duplicated event ids are
 *   ignored; no submission gets a second verdict except by the re-validations above.
 *
 * Cost: O(log n) bookkeeping per event and verdict (a heap of ready events, waiters indexed by
 * the missing id); `validate` and `Projection.apply` dominate.
 */
export class Adjudicator {
  readonly #relay: DeviceId;
  readonly #facility: FacilityId;
  readonly #member: AdjudicatorOptions['member'];
  readonly #deadlineMs: number;
  readonly #elevation: AdjudicatorElevation | undefined;
  readonly #guarded: ReadonlySet<string>;

  readonly #nodes = new Map<EventId, Node>();
  readonly #latest = new Map<EventId, Latest>();
  /** Waiting event ids by the id they wait for. */
  readonly #waiters = new Map<EventId, EventId[]>();
  readonly #ready = new Heap<ReadyEntry>((a, b) => byEvent(a.node, b.node));
  readonly #deadlines = new Heap<Node>((a, b) => a.deadline < b.deadline);
  readonly #expired = new Heap<Node>(byEvent);
  /** Re-validations in #ready, by target, with the token they were queued for. */
  readonly #revalQueued = new Map<EventId, number>();

  /**
   * The confirmed state: every present event whose latest verdict accepts it, folded in `seq`
   * order (the same fold as a device's). Told at each new latest verdict; an event folded on top
   * releases the 404s waiting for it and looks at the 422s of its lot again, and a refold from
   * scratch recomputes both.
   */
  readonly #fold = new ConfirmedFold({
    onFold: (event) => {
      this.#confirmedOne(event.id);
      this.#stockTouched(event);
    },
    onRefold: () => this.#refolded(),
  });

  /** Targets whose latest verdict is a 404 `RULE_DEPENDENCY_MISSING`. */
  readonly #dep404 = new Set<EventId>();
  /** Targets whose 404 registration must be (re)computed at the next sync. */
  readonly #recheck = new Set<EventId>();
  /** 404 registrations by the missing dependency. */
  readonly #missingIdx = new Map<EventId, { target: EventId; reg: number }[]>();
  /** Per registered target: its registration, the verdict it is for, and how many named dependencies are not confirmed. */
  readonly #missingLeft = new Map<EventId, { reg: number; token: number; left: number }>();
  #regs = 0;

  /** Targets whose latest verdict is a 422 `RULE_NEGATIVE_STOCK`, with the lot and quantity it names. */
  readonly #short = new Map<EventId, StockShortfall>();
  /** The same targets by lot. */
  readonly #shortByLot = new Map<string, Set<EventId>>();
  /** Lots whose confirmed record may have changed (or that gained a 422) since their 422s were queued. */
  readonly #restockDirty = new Set<string>();
  /** Negative-stock deadletters to look at, oldest verdict first. */
  readonly #restock = new Heap<RestockEntry>(byVerdictAge);
  /** Targets in #restock, with the token of the verdict they were queued for. */
  readonly #restockQueued = new Map<EventId, number>();
  /**
   * The confirmed lot record (as JSON) a target was last judged again against without being
   * accepted: the lot is marked dirty whenever any of its 422s comes or goes, and without this a
   * busy lot would judge all its open deadletters again each time, against the same stock.
   */
  readonly #rejudgedAt = new Map<EventId, string>();

  readonly #resolved = new Set<EventId>();
  readonly #open = new Set<EventId>();
  /**
   * Targets whose latest verdict (history) accepts them but whose event is not present: the
   * confirmed state lacks them, so nothing is judged against it (see "Incomplete confirmed state").
   */
  readonly #acceptedAbsent = new Set<EventId>();
  /**
   * Since when {@link #acceptedAbsent} has not been empty (undefined while it is; -Infinity once
   * the wait ran out, until it is empty again).
   */
  #incompleteSince: number | undefined;

  #tokens = 0;
  #lastSeq = 0;
  #issued = 0;
  #waiting = 0;

  /** An adjudicator with no events yet. */
  constructor(opts: AdjudicatorOptions) {
    this.#relay = opts.relay;
    this.#facility = opts.facility;
    this.#member = opts.member;
    this.#deadlineMs = opts.dependencyDeadlineMs ?? DEFAULT_DEPENDENCY_DEADLINE_MS;
    this.#elevation = opts.elevation;
    this.#guarded = new Set(opts.elevation?.policy.discardNeedsElevation ?? []);
  }

  /**
   * Feeds one event of the log, of any kind, in any order; a duplicate id is ignored.
   *
   * @remarks `nowMs` is when the relay saw it: the dependency deadline counts from there.
   */
  add(event: SignedEvent, nowMs: number): void {
    if (this.#nodes.has(event.id)) return;
    this.#acceptedAbsent.delete(event.id);
    this.#addNode(event, nowMs);
    if (this.#acceptedAbsent.size === 0) this.#incompleteSince = undefined;
    else this.#incompleteSince ??= nowMs;
  }

  #addNode(event: SignedEvent, nowMs: number): void {
    const id = event.id;
    if (event.device === this.#relay) {
      this.#nodes.set(id, this.#node(event, nowMs, 'other', [], undefined, undefined));
      if (event.facility === this.#facility) this.#history(event);
      this.#release(id);
      return;
    }
    const target =
      event.type === SystemEventType.RetryRequested || event.type === SystemEventType.DeadletterDiscarded
        ? readTarget(event.data)
        : undefined;
    const supersedes =
      typeof event.supersedes === 'string' && !isSystemEventType(event.type) ? event.supersedes : undefined;
    const resolves = event.type === SystemEventType.DeadletterDiscarded ? target : supersedes;
    const wait = new Set<EventId>();
    if (Array.isArray(event.deps)) {
      for (const d of event.deps as unknown[]) if (typeof d === 'string') wait.add(d as EventId);
    }
    if (target !== undefined) wait.add(target);
    if (typeof event.supersedes === 'string') wait.add(event.supersedes);
    const node = this.#node(event, nowMs, 'waiting', [...wait], resolves, target);
    this.#nodes.set(id, node);

    const latest = this.#latest.get(id);
    if (latest !== undefined) {
      // Judged before (history that arrived ahead of its event).
      node.state = 'decided';
      if (latest.data.outcome === 'accepted') {
        this.#fold.set(event, latest.data.seq);
        if (resolves !== undefined) this.#resolve(resolves);
      }
      if (this.#dep404.has(id)) this.#recheck.add(id);
      const short = this.#short.get(id);
      if (short !== undefined) this.#restockDirty.add(short.lot);
      this.#release(id);
      return;
    }
    this.#waiting++;
    for (const d of node.waitOn) {
      if (this.#satisfied(d)) continue;
      node.pending++;
      const list = this.#waiters.get(d);
      if (list === undefined) this.#waiters.set(d, [id]);
      else list.push(id);
    }
    if (node.pending === 0) {
      node.state = 'ready';
      this.#ready.push({ node, token: undefined });
    }
    this.#deadlines.push(node);
  }

  /**
   * Decides everything that is ready at `nowMs` and returns the verdicts to record, in the order
   * they must be appended.
   *
   * @remarks The verdicts count as issued at once: accepted events are already folded into the
   * confirmed state, and accepted `seq` numbers continue 1, 2, 3, … after the highest seen.
   * With `limit`, stops once that many verdicts are out (a resolution may add one more); the
   * rest is decided by the next calls, in the same order as one unlimited call.
   */
  decide(nowMs: number, limit = Infinity): VerdictData[] {
    if (this.#incompleteUntil(nowMs) !== undefined) return [];
    this.#sync();
    for (let n = this.#deadlines.peek(); n !== undefined && n.deadline <= nowMs; n = this.#deadlines.peek()) {
      this.#deadlines.pop();
      if (n.state === 'waiting') this.#expired.push(n);
    }
    const out: VerdictData[] = [];
    while (out.length < limit) {
      const restocked = this.#popRestocked();
      if (restocked !== undefined) {
        this.#rejudgeStock(restocked.node, restocked.lotKey, nowMs, out);
        continue;
      }
      const entry = this.#popReady();
      if (entry !== undefined) {
        this.#judgeSafely(entry.node, nowMs, out);
        continue;
      }
      const expired = this.#peekExpired();
      if (expired === undefined) break;
      this.#judgeSafely(this.#descend(expired, nowMs), nowMs, out);
    }
    return out;
  }

  /**
   * Judges one submission; a failure to judge it is its own 500 `RULE_UNPROCESSABLE`, so one event
   * that trips the rules or the projection can never stop the verdicts of the others.
   */
  #judgeSafely(node: Node, nowMs: number, out: VerdictData[]): void {
    const id = node.event.id;
    const before = this.#latest.get(id)?.token;
    try {
      this.#judge(node, nowMs, out);
    } catch (cause) {
      // Its verdict is out already: what failed came after it (and answered for itself).
      if (this.#latest.get(id)?.token !== before) return;
      this.#issue(
        node,
        deadletter(
          RejectionCode.Invalid,
          RULE_UNPROCESSABLE,
          boundText(`The relay could not judge the event: ${describe(cause)}.`, MAX_VERDICT_REASON_CHARS),
          {},
        ),
        out,
      );
    }
  }

  /** The earliest time a waiting event's dependency deadline expires (when `decide` would judge it anyway), or undefined. */
  nextDeadline(): number | undefined {
    // Nothing is judged before it (an arriving event that completes the state comes with a round).
    const until = this.#incompleteUntil(-Infinity);
    if (until !== undefined) return until;
    for (let n = this.#deadlines.peek(); n !== undefined; n = this.#deadlines.peek()) {
      if (n.state === 'waiting') return n.deadline;
      this.#deadlines.pop(); // judged (or ready, and judged at the next decide): no longer a deadline
    }
    return undefined;
  }

  /**
   * The confirmed state: accepted events folded in `seq` order.
   *
   * @remarks The adjudicator's own object: read it, never apply to it (`clone()` first).
   */
  confirmed(): Projection {
    this.#sync();
    return this.#fold.projection();
  }

  /**
   * While the confirmed state lacks accepted events (see "Incomplete confirmed state") and they
   * have been missing for less than the dependency deadline at `nowMs`: when that wait ends.
   */
  #incompleteUntil(nowMs: number): number | undefined {
    if (this.#incompleteSince === undefined) return undefined;
    const until = this.#incompleteSince + this.#deadlineMs;
    if (nowMs < until) return until;
    // Waited long enough: judge with what is there until the state is complete again.
    this.#incompleteSince = -Infinity;
    return undefined;
  }

  /** The highest accepted `seq` issued or seen in history (0 when none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Counters for metrics. */
  stats(): AdjudicatorStats {
    return {
      events: this.#nodes.size,
      verdicts: this.#issued,
      waiting: this.#waiting,
      deadletters: this.#open.size,
    };
  }

  /** The latest verdict recorded for a target (history or issued), if any. */
  verdictFor(id: EventId): VerdictData | undefined {
    return this.#latest.get(id)?.data;
  }

  /**
   * Every open deadletter (the ones {@link stats} counts), with code, rule and author.
   *
   * @remarks O(open deadletters); for the admin page, not for a hot path.
   */
  openDeadletters(): OpenDeadletter[] {
    const out: OpenDeadletter[] = [];
    for (const target of this.#open) {
      const data = this.#latest.get(target)?.data;
      if (data?.outcome !== 'deadletter') continue;
      out.push({ target, code: data.code, rule: data.rule, device: this.#nodes.get(target)?.event.device });
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------

  #node(
    event: SignedEvent,
    nowMs: number,
    state: NodeState,
    waitOn: readonly EventId[],
    resolves: EventId | undefined,
    target: EventId | undefined,
  ): Node {
    return { event, deadline: nowMs + this.#deadlineMs, waitOn, resolves, target, pending: 0, state };
  }

  /** A dependency is satisfied when present and judged (or not a submission). */
  #satisfied(id: EventId): boolean {
    const n = this.#nodes.get(id);
    return n !== undefined && (n.state === 'decided' || n.state === 'other');
  }

  #release(id: EventId): void {
    const list = this.#waiters.get(id);
    if (list === undefined) return;
    this.#waiters.delete(id);
    for (const w of list) {
      const n = this.#nodes.get(w);
      if (n === undefined || n.state !== 'waiting') continue;
      if (--n.pending === 0) {
        n.state = 'ready';
        this.#ready.push({ node: n, token: undefined });
      }
    }
  }

  /** Records one of the relay's own events: the verdicts it states are history. */
  #history(event: SignedEvent): void {
    forEachVerdictIn(event, (data) => this.#historyVerdict(data, event.seq));
  }

  /** Records one verdict of the relay's own history, stated by its event number `envSeq`. */
  #historyVerdict(data: VerdictData, envSeq: number): void {
    if (data.outcome === 'accepted') this.#lastSeq = Math.max(this.#lastSeq, data.seq);
    const cur = this.#latest.get(data.target);
    // Issued verdicts are newer than any history (this also ignores the echo of our own verdicts).
    if (cur !== undefined && (cur.issued || cur.envSeq >= envSeq)) return;
    const node = this.#nodes.get(data.target);
    const first = node !== undefined && (node.state === 'waiting' || node.state === 'ready');
    if (first) {
      node.state = 'decided';
      this.#waiting--;
    }
    this.#setLatest(data.target, data, false, envSeq);
    if (this.#dep404.has(data.target)) this.#recheck.add(data.target);
    if (first) this.#release(data.target);
  }

  #setLatest(target: EventId, data: VerdictData, issued: boolean, envSeq: number): Latest {
    const latest: Latest = { data, issued, envSeq, token: ++this.#tokens };
    this.#latest.set(target, latest);
    const node = this.#nodes.get(target);
    if (node === undefined && data.outcome === 'accepted') this.#acceptedAbsent.add(target);
    else this.#acceptedAbsent.delete(target);
    // The fold keeps track of what changed: a new acceptance, a withdrawn one, a moved seq.
    if (node !== undefined) this.#fold.set(node.event, data.outcome === 'accepted' ? data.seq : undefined);
    if (data.outcome === 'accepted' && node?.resolves !== undefined) this.#resolve(node.resolves);
    if (missingOf(data) !== undefined) this.#dep404.add(target);
    else this.#dep404.delete(target);
    this.#setShortfall(target, shortfallOf(data));
    this.#updateOpen(target);
    return latest;
  }

  /** Indexes (or unindexes) a target as an open negative-stock deadletter of its lot. */
  #setShortfall(target: EventId, short: StockShortfall | undefined): void {
    // A new verdict was judged against the state of its own moment: what was remembered is stale.
    this.#rejudgedAt.delete(target);
    const was = this.#short.get(target);
    if (was !== undefined) {
      this.#short.delete(target);
      const set = this.#shortByLot.get(was.lot);
      set?.delete(target);
      if (set?.size === 0) this.#shortByLot.delete(was.lot);
    }
    if (short === undefined || this.#resolved.has(target)) return;
    this.#short.set(target, short);
    const set = this.#shortByLot.get(short.lot);
    if (set === undefined) this.#shortByLot.set(short.lot, new Set([target]));
    else set.add(target);
    // The lot may already hold enough (history of a restart, or a verdict arriving after the stock).
    this.#restockDirty.add(short.lot);
  }

  #updateOpen(target: EventId): void {
    const l = this.#latest.get(target);
    if (l?.data.outcome === 'deadletter' && !this.#resolved.has(target)) this.#open.add(target);
    else this.#open.delete(target);
  }

  #resolve(target: EventId): void {
    this.#resolved.add(target);
    this.#open.delete(target);
    if (this.#short.has(target)) this.#setShortfall(target, undefined);
  }

  /** Brings the confirmed state up to date with history, then (re)computes pending 404 registrations. */
  #sync(): void {
    this.#fold.projection();
    if (this.#recheck.size > 0) {
      const ids = [...this.#recheck];
      this.#recheck.clear();
      for (const id of ids) this.#register404(id);
    }
  }

  /** An event was folded: if it names a lot with open negative-stock deadletters, look at them again. */
  #stockTouched(event: SignedEvent): void {
    const lot = lotOf(event);
    if (lot !== undefined && this.#shortByLot.has(lot)) this.#restockDirty.add(lot);
  }

  /** The confirmed state was refolded from scratch (an acceptance arrived below what was folded). */
  #refolded(): void {
    // What is confirmed may have changed in any way: recompute every 404 registration.
    this.#missingIdx.clear();
    this.#missingLeft.clear();
    for (const id of this.#dep404) this.#recheck.add(id);
    for (const lot of this.#shortByLot.keys()) this.#restockDirty.add(lot);
  }

  /**
   * Registers a present target whose latest verdict is a 404 `RULE_DEPENDENCY_MISSING` to be
   * re-validated once every dependency it names is confirmed (at once if they already are).
   */
  #register404(target: EventId): void {
    const l = this.#latest.get(target);
    const node = this.#nodes.get(target);
    this.#missingLeft.delete(target);
    if (l === undefined || node === undefined || node.state === 'other') return;
    const missing = missingOf(l.data);
    if (missing === undefined || missing.length === 0) return;
    const confirmed = this.#fold.projection();
    const left = missing.filter((m) => !confirmed.hasEvent(m));
    if (left.length === 0) {
      this.#queueRevalidation(node, l.token);
      return;
    }
    const reg = ++this.#regs;
    this.#missingLeft.set(target, { reg, token: l.token, left: left.length });
    for (const m of left) {
      const list = this.#missingIdx.get(m);
      if (list === undefined) this.#missingIdx.set(m, [{ target, reg }]);
      else list.push({ target, reg });
    }
  }

  /** `id` was just folded into the confirmed state: release 404 registrations waiting for it. */
  #confirmedOne(id: EventId): void {
    const list = this.#missingIdx.get(id);
    if (list === undefined) return;
    this.#missingIdx.delete(id);
    // Folded but skipped by the projection: still not confirmed, and never will be in this order.
    if (!this.#fold.projection().hasEvent(id)) return;
    for (const { target, reg } of list) {
      const ml = this.#missingLeft.get(target);
      if (ml?.reg !== reg) continue;
      if (--ml.left > 0) continue;
      this.#missingLeft.delete(target);
      // A registration for a verdict that has since been superseded is dropped at #popReady.
      this.#queueRevalidation(this.#nodes.get(target)!, ml.token);
    }
  }

  #queueRevalidation(node: Node, token: number): void {
    if (this.#revalQueued.get(node.event.id) === token) return;
    this.#revalQueued.set(node.event.id, token);
    this.#ready.push({ node, token });
  }

  #popReady(): ReadyEntry | undefined {
    for (let e = this.#ready.pop(); e !== undefined; e = this.#ready.pop()) {
      if (e.token === undefined) {
        if (e.node.state === 'ready') return e;
        continue;
      }
      const id = e.node.event.id;
      if (this.#revalQueued.get(id) !== e.token) continue;
      this.#revalQueued.delete(id);
      if (this.#latest.get(id)?.token !== e.token || this.#resolved.has(id)) continue;
      return e;
    }
    return undefined;
  }

  /**
   * The oldest open negative-stock deadletter that is due to be judged again (see the class
   * remarks), with the lot record it will be judged against; undefined when none is.
   */
  #popRestocked(): { node: Node; lotKey: string } | undefined {
    if (this.#restockDirty.size > 0) {
      for (const lot of this.#restockDirty) {
        for (const target of this.#shortByLot.get(lot) ?? []) {
          const latest = this.#latest.get(target)!;
          if (this.#restockQueued.get(target) === latest.token) continue;
          this.#restockQueued.set(target, latest.token);
          this.#restock.push({ target, latest });
        }
      }
      this.#restockDirty.clear();
    }
    for (let e = this.#restock.pop(); e !== undefined; e = this.#restock.pop()) {
      const { target, latest } = e;
      if (this.#restockQueued.get(target) !== latest.token) continue; // queued again for a newer verdict
      this.#restockQueued.delete(target);
      // Dropped when not due: only a change of its lot (or a new verdict) can make it due, and
      // either marks the lot dirty, which queues it again.
      if (this.#latest.get(target) !== latest || this.#resolved.has(target)) continue;
      const short = this.#short.get(target);
      const node = this.#nodes.get(target);
      if (short === undefined || node === undefined || node.state !== 'decided') continue;
      if (isSystemEventType(node.event.type)) continue;
      const lot = this.#fold.projection().lot(short.lot);
      if (lot === undefined || lot.balance < short.requested) continue;
      const lotKey = JSON.stringify(lot);
      if (this.#rejudgedAt.get(target) === lotKey) continue;
      return { node, lotKey };
    }
    return undefined;
  }

  /**
   * Judges an open negative-stock deadletter again and records only an acceptance: a 422 is never
   * re-issued, with the same numbers or new ones, and a refusal by another rule waits for the
   * user (retry, amend or discard) like any deadletter.
   */
  #rejudgeStock(node: Node, lotKey: string, nowMs: number, out: VerdictData[]): void {
    let v: RuleVerdict | undefined;
    try {
      v = this.#domainVerdict(node, nowMs);
    } catch {
      // Judged as it stands: the 422 remains, and the user can still retry (a 500 then).
      v = undefined;
    }
    if (v?.outcome === 'accepted') this.#issue(node, ACCEPT, out);
    else this.#rejudgedAt.set(node.event.id, lotKey);
  }

  #peekExpired(): Node | undefined {
    for (let n = this.#expired.peek(); n !== undefined; n = this.#expired.peek()) {
      if (n.state === 'waiting') return n;
      this.#expired.pop();
    }
    return undefined;
  }

  /** From an expired waiting event, follows its expired waiting dependencies down to the one to judge first. */
  #descend(start: Node, nowMs: number): Node {
    let cur = start;
    const visited = new Set<EventId>([start.event.id]);
    for (;;) {
      let best: Node | undefined;
      for (const d of cur.waitOn) {
        const n = this.#nodes.get(d);
        if (n === undefined || n.state !== 'waiting' || n.deadline > nowMs || visited.has(d)) continue;
        if (best === undefined || byEvent(n, best)) best = n;
      }
      if (best === undefined) return cur;
      visited.add(best.event.id);
      cur = best;
    }
  }

  /** The 403 checks: roster, facility, relay-only types. */
  #forbidden(e: SignedEvent): RuleVerdict | undefined {
    const m = this.#member(e.device);
    if (m === undefined) {
      return deadletter(
        RejectionCode.Forbidden,
        RULE_UNKNOWN_DEVICE,
        `Device ${e.device} is not enrolled in facility ${this.#facility}.`,
        { device: e.device, facility: this.#facility },
      );
    }
    if (m.revoked) {
      return deadletter(
        RejectionCode.Forbidden,
        RULE_DEVICE_REVOKED,
        `Device ${e.device} was revoked from facility ${this.#facility}.`,
        { device: e.device, facility: this.#facility },
      );
    }
    if (e.facility !== this.#facility) {
      return deadletter(
        RejectionCode.Forbidden,
        RULE_WRONG_FACILITY,
        `The event belongs to facility ${String(e.facility)}, not ${this.#facility}.`,
        { facility: String(e.facility), expected: this.#facility },
      );
    }
    if (RELAY_EVENT_TYPES.has(e.type)) {
      return deadletter(
        RejectionCode.Forbidden,
        RULE_RELAY_ONLY,
        `Only the relay may write ${e.type} events; device ${e.device} signed one.`,
        { type: e.type, device: e.device },
      );
    }
    return undefined;
  }

  /**
   * The 403 of a discard that the facility policy guards and that carries no valid `discard`
   * grant of this relay for its author, at the discard's time (its HLC, never later than the
   * relay's clock: a device cannot date its discard into a grant's lifetime from the future).
   * A target the relay does not hold is guarded: its type cannot be shown harmless.
   */
  #elevationRefusal(
    e: SignedEvent,
    target: EventId,
    tnode: Node | undefined,
    nowMs: number,
  ): RuleVerdict | undefined {
    if (this.#elevation === undefined) return undefined;
    const type = tnode !== undefined && tnode.state !== 'other' ? tnode.event.type : undefined;
    if (type !== undefined && !this.#guarded.has(type)) return undefined;
    const grant = isRecord(e.data) ? e.data['grant'] : undefined;
    let at = nowMs;
    try {
      at = Math.min(parseHlc(e.hlc).wallMs, nowMs);
    } catch {
      // An unreadable HLC never got past the log; the relay's clock is the bound anyway.
    }
    const problem = this.#elevation.check(grant, {
      relay: this.#relay,
      facility: this.#facility,
      device: e.device,
      action: 'discard',
      atMs: at,
    });
    if (problem === undefined) return undefined;
    return deadletter(
      RejectionCode.Forbidden,
      RULE_ELEVATION_REQUIRED,
      `Discarding a rejected ${type ?? 'event'} needs an admin elevation from the relay (grant ${problem}).`,
      { target, type: type ?? null, problem },
    );
  }

  /** Judges one submission (first time or again) and appends its verdicts (and a retried target's) to `out`. */
  #judge(node: Node, nowMs: number, out: VerdictData[]): void {
    const e = node.event;
    const forbidden = this.#forbidden(e);
    if (forbidden !== undefined) {
      this.#issue(node, forbidden, out);
      return;
    }
    const ctx = { nowMs };
    if (e.type === SystemEventType.RetryRequested || e.type === SystemEventType.DeadletterDiscarded) {
      const shape = validate(this.#fold.projection(), e, ctx);
      const target = node.target;
      if (shape.outcome === 'deadletter' || target === undefined) {
        this.#issue(node, shape, out);
        return;
      }
      const l = this.#latest.get(target);
      const status =
        l === undefined
          ? 'pending'
          : l.data.outcome === 'accepted'
            ? 'accepted'
            : this.#resolved.has(target)
              ? 'resolved'
              : 'deadletter';
      if (status !== 'deadletter') {
        const what = e.type === SystemEventType.RetryRequested ? 'retried' : 'discarded';
        this.#issue(
          node,
          deadletter(
            RejectionCode.Conflict,
            RULE_NOT_DEADLETTERED,
            `Event ${target} cannot be ${what}: it is ${status === 'pending' ? 'not judged yet' : status}, not an unresolved deadletter.`,
            { target, status },
          ),
          out,
        );
        return;
      }
      const tnode = this.#nodes.get(target);
      if (e.type === SystemEventType.RetryRequested && (tnode === undefined || tnode.state === 'other')) {
        this.#issue(
          node,
          deadletter(
            RejectionCode.NotFound,
            RULE_NOT_FOUND,
            `Event ${target} has a verdict but the relay does not hold the event itself, so it cannot be validated again.`,
            { kind: 'event', id: target, role: 'subject' },
          ),
          out,
        );
        return;
      }
      if (e.type === SystemEventType.DeadletterDiscarded) {
        const refusal = this.#elevationRefusal(e, target, tnode, nowMs);
        if (refusal !== undefined) {
          this.#issue(node, refusal, out);
          return;
        }
      }
      this.#issue(node, ACCEPT, out);
      if (e.type === SystemEventType.RetryRequested) this.#judgeSafely(tnode!, nowMs, out);
      return;
    }
    this.#issue(node, this.#amendChecked(e, validate(this.#fold.projection(), e, ctx)), out);
  }

  /** The verdict for a domain event (or an amend) now: the 403 checks, `validate`, the amend check. */
  #domainVerdict(node: Node, nowMs: number): RuleVerdict {
    const e = node.event;
    return this.#forbidden(e) ?? this.#amendChecked(e, validate(this.#fold.projection(), e, { nowMs }));
  }

  /** An amend of accepted history that would otherwise be accepted, 409 or 422 is a 409 `RULE_SUPERSEDES_ACCEPTED`. */
  #amendChecked(e: SignedEvent, v: RuleVerdict): RuleVerdict {
    const sup = typeof e.supersedes === 'string' ? e.supersedes : undefined;
    if (
      sup === undefined ||
      (v.outcome === 'deadletter' && v.code !== RejectionCode.Conflict && v.code !== RejectionCode.Rule)
    ) {
      return v;
    }
    const l = this.#latest.get(sup);
    if (l?.data.outcome !== 'accepted') return v;
    return deadletter(
      RejectionCode.Conflict,
      RULE_SUPERSEDES_ACCEPTED,
      `Event ${sup} was accepted (confirmed seq ${l.data.seq}); accepted history cannot be replaced by an amend.`,
      { supersedes: sup, seq: l.data.seq },
    );
  }

  #issue(node: Node, v: RuleVerdict, out: VerdictData[]): void {
    const id = node.event.id;
    const data: VerdictData =
      v.outcome === 'accepted'
        ? { target: id, outcome: 'accepted', seq: ++this.#lastSeq, ruleSet: RULE_SET_VERSION }
        : // Bounded here, where every verdict is drafted: a deadletter echoes what it judges.
          boundDeadletter({
            target: id,
            outcome: 'deadletter',
            code: v.code,
            rule: v.rule,
            reason: v.reason,
            details: v.details,
            ruleSet: RULE_SET_VERSION,
          });
    const first = node.state === 'waiting' || node.state === 'ready';
    if (first) {
      node.state = 'decided';
      this.#waiting--;
    }
    this.#setLatest(id, data, true, 0);
    if (data.outcome === 'accepted') {
      // #sync ran at the start of decide and history cannot arrive meanwhile, so this seq is above
      // everything folded: the fold takes it on top now, before anything else is judged.
      this.#fold.projection();
    } else if (this.#dep404.has(id)) {
      this.#register404(id);
    }
    this.#issued++;
    out.push(data);
    if (first) this.#release(id);
  }
}
