import {
  AccordError,
  envelopeBytes,
  ErrorCode,
  eventIdFor,
  MAX_EVENT_BYTES,
  parseAcceptedVerdictsData,
  parseDeadletterDiscardedData,
  parseRetryRequestedData,
  parseRosterUpdatedData,
  parseSegmentSealedData,
  parseVerdictData,
  signEventEncoded,
  SystemEventType,
  type DeviceKeyPair,
  type EventEnvelope,
  type EventSigner,
  type HybridClock,
  type Result,
  type SignedEvent,
} from '@accord/protocol';
import type { SystemDraft } from './api.js';
import { CommitQueue } from './commit-queue.js';
import type { MarkKeeper } from './mark-keeper.js';
import { ownEventSigner } from './node-signer.js';
import type { LogEventStore, LogStoredEvent } from './ports.js';
import type { LogContext } from './segments.js';

/** The schema check of each system event type's data. */
const SYSTEM_DATA: Readonly<Record<SystemEventType, (data: unknown) => Result<unknown>>> = {
  [SystemEventType.Verdict]: parseVerdictData,
  [SystemEventType.AcceptedVerdicts]: parseAcceptedVerdictsData,
  [SystemEventType.RetryRequested]: parseRetryRequestedData,
  [SystemEventType.DeadletterDiscarded]: parseDeadletterDiscardedData,
  [SystemEventType.RosterUpdated]: parseRosterUpdatedData,
  [SystemEventType.SegmentSealed]: parseSegmentSealedData,
};

/** What a caller gives an own envelope; the log fills in the rest. */
export type EnvelopeParts = Omit<EventEnvelope, 'v' | 'id' | 'facility' | 'device' | 'seq' | 'hlc'>;

/** An own event signed and encoded once: the bytes are what the store keeps and peers get. */
export interface SignedOwn {
  readonly event: SignedEvent;
  readonly bytes: Uint8Array;
}

/** What {@link OwnAppends} asks of the rest of the log. */
export interface OwnAppendsDeps {
  readonly ctx: LogContext;
  readonly key: DeviceKeyPair;
  /** Signs own events (default {@link ownEventSigner}, see `DeviceLogOptions.signer`). */
  readonly signer?: EventSigner | undefined;
  readonly clock: () => number;
  readonly hlc: HybridClock;
  readonly store: LogEventStore;
  /** The own-sequence mark's keeper, when the log keeps one. */
  readonly marks: MarkKeeper | undefined;
  /** Set while appends must wait for the own-history check with peers. */
  readonly historyGate: () => Promise<void> | undefined;
  /** Told of each batch of own events once it is durable (in seq order). */
  readonly onDurable: (batch: readonly SignedOwn[], stored: readonly LogStoredEvent[]) => void;
  readonly isClosed: () => boolean;
}

/**
 * This device's own sequence: numbers handed out, envelopes made, events signed and written in
 * order with group commit ({@link CommitQueue}).
 *
 * @remarks A number is never handed out twice: with an `OwnSeqMark` it is reserved durably
 * first, own events that come back from peers move the sequence past them, and after a failed
 * write the unwritten numbers are handed out again only once every one of them has come back.
 */
export class OwnAppends {
  readonly #deps: OwnAppendsDeps;
  readonly #commit: CommitQueue<SignedOwn>;
  readonly #sign: EventSigner;
  /** The highest own number handed out. */
  #assigned: number;
  #recovering: Promise<void> | undefined;

  /** `highest` is the highest own number ever handed out, as far as the store and the mark know. */
  constructor(deps: OwnAppendsDeps, highest: number) {
    this.#deps = deps;
    this.#assigned = highest;
    this.#sign = deps.signer ?? ownEventSigner(deps.key);
    this.#commit = new CommitQueue<SignedOwn>(highest + 1, (batch) => this.#write(batch));
  }

  /** The highest own sequence number handed out. */
  get assigned(): number {
    return this.#assigned;
  }

  /**
   * What an append must wait for before it takes a sequence number: the own-history check after
   * start, a failed write's recovery, or a durable reservation of more numbers; undefined when it
   * may take one now.
   *
   * @remarks Callers take the number synchronously after an undefined answer (no `await` in
   * between), so concurrent appends never take one past the reservation.
   */
  wait(): Promise<void> | undefined {
    if (this.#deps.isClosed()) return undefined;
    const gate = this.#deps.historyGate();
    if (gate !== undefined) return gate;
    if (this.#commit.failed) {
      // A failed write: once every number after the last written one is back, hand them out again.
      this.#recovering ??= this.#commit
        .recover(this.#assigned)
        .then((last) => void (this.#assigned = last))
        .finally(() => (this.#recovering = undefined));
      return this.#recovering;
    }
    return this.#deps.marks?.reserveAfter(this.#assigned);
  }

  /**
   * The next own envelope: a fresh id, the next sequence number and clock reading. It comes as the
   * event it will be with an empty `sig`: the local rules judge it so before it is signed (they
   * never read the signature), and signing reads the envelope's fields only; one object per append
   * instead of an envelope and a copy of it.
   *
   * @remarks With `checkSize`, an envelope whose signed event would exceed the size limit is
   * refused (`PROTOCOL_TOO_LARGE`) before it takes a number: the relay appends many verdicts at
   * once, so a failure found while signing would leave a hole behind later numbers, and a hole
   * stops the log. It costs one more encoding, so only system events (verdicts, rosters) pay it.
   */
  envelope(parts: EnvelopeParts, checkSize = false): SignedEvent {
    const { ctx, clock, hlc } = this.#deps;
    const seq = this.#assigned + 1;
    const envelope: SignedEvent = {
      v: 1,
      // Bound to this device and seq: no other device can claim it (see eventIdFor).
      id: eventIdFor(clock(), ctx.deviceId, seq),
      facility: ctx.facility,
      device: ctx.deviceId,
      seq,
      hlc: hlc.now(),
      ...parts,
      sig: '',
    };
    if (checkSize) {
      // The signed form adds `,"sig":"<86 characters>"`: 95 bytes (envelopeBytes leaves `sig` out).
      const size = envelopeBytes(envelope).length + 95;
      if (size > MAX_EVENT_BYTES) {
        throw new AccordError(
          ErrorCode.PROTOCOL_TOO_LARGE,
          `signed event would be ${size} bytes (limit ${MAX_EVENT_BYTES})`,
          { details: { size, maxBytes: MAX_EVENT_BYTES } },
        );
      }
    }
    this.#assigned = seq;
    return envelope;
  }

  /**
   * The next own envelope for a system statement, its type and data schema-checked and its size
   * checked before it takes a number (`PROTOCOL_SCHEMA`, `PROTOCOL_TOO_LARGE`).
   */
  systemEnvelope(draft: SystemDraft): EventEnvelope {
    const check = Object.hasOwn(SYSTEM_DATA, draft.type) ? SYSTEM_DATA[draft.type] : undefined;
    if (check === undefined) {
      throw new AccordError(ErrorCode.PROTOCOL_SCHEMA, `${String(draft.type)} is not a system event type`);
    }
    const checked = check(draft.data);
    if (!checked.ok) throw checked.error;
    const parts = {
      type: draft.type,
      schema: 1,
      subject: draft.subject,
      deps: [...new Set(draft.deps ?? [])].sort(),
      data: draft.data,
    };
    return this.envelope(parts, true);
  }

  /**
   * Signs `envelope` and resolves once it (and every own event before it) is durable; `onSigned`
   * sees the signed event before anything else does.
   */
  async signAndCommit(
    envelope: EventEnvelope,
    onSigned?: (event: SignedEvent) => void,
  ): Promise<SignedEvent> {
    let signed: SignedOwn;
    try {
      signed = await signEventEncoded(envelope, this.#deps.key, this.#sign);
    } catch (err) {
      // Nothing took a later number meanwhile: give this one back instead of stopping the log.
      if (envelope.seq === this.#assigned) {
        this.#assigned--;
        throw err;
      }
      this.#commit.abandon(envelope.seq, err);
      throw err;
    }
    onSigned?.(signed.event);
    await this.#commit.submit(envelope.seq, signed);
    return signed.event;
  }

  /** Writes a contiguous run of own events durably, then hands them on. */
  async #write(batch: readonly SignedOwn[]): Promise<void> {
    const stored: LogStoredEvent[] = batch.map(({ event, bytes }) => ({
      device: event.device,
      seq: event.seq,
      id: event.id,
      bytes,
    }));
    await this.#deps.store.append(stored);
    this.#deps.marks?.noteAcked(stored[stored.length - 1]!.seq);
    this.#deps.onDurable(batch, stored);
  }

  /**
   * An own event we did not know came back from a peer: the data folder was restored from an
   * older backup. Continue the sequence after it (never hand its number out again).
   */
  cameBack(seq: number): void {
    if (!this.#commit.isIdle) return; // a racing append: the store refuses the duplicate seq
    this.#assigned = seq;
    this.#deps.marks?.noteAcked(seq); // durable at peers and now here: the mark must not fall below it
    this.#commit.advanceTo(seq + 1);
  }

  /** Resolves when no own append is waiting or being written. */
  idle(): Promise<void> {
    return this.#commit.idle();
  }
}
