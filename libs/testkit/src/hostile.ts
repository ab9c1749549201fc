// A modified client for tests: it holds an enrolled device's real key and writes into the
// facility's sync documents exactly what a changed build of the app could write, bypassing every
// local check (schema, size, sequence, clock). The honest code under test must cope with it.
import * as A from '@automerge/automerge';
import type { DocHandle, DocumentId, Repo } from '@automerge/automerge-repo';
import {
  encodeSignedEvent,
  envelopeBytes,
  formatHlc,
  eventIdFor,
  signBytes,
  toBase64Url,
  type DeviceId,
  type DeviceKeyPair,
  type EventEnvelope,
  type FacilityId,
  type JsonValue,
  type SignedEvent,
} from '@accord/protocol';

/** How the facility's documents are named (the log's `rootDocumentId` / `segmentDocumentId`). */
export interface HostileDocuments {
  readonly root: DocumentId;
  /** The root document's deterministic first change. */
  rootInitial(): Uint8Array;
  segment(device: DeviceId, index: number): DocumentId;
  /** A segment document's deterministic first change. */
  segmentInitial(device: DeviceId, index: number): Uint8Array;
}

/** Options of {@link HostileDevice}. */
export interface HostileDeviceOptions {
  /** The modified device's own Repo (it syncs with its peers as usual). */
  readonly repo: Repo;
  /** An enrolled device's own key: what it signs is genuinely signed by that device. */
  readonly key: DeviceKeyPair;
  readonly facility: FacilityId;
  readonly documents: HostileDocuments;
  /** Events per segment document (the log's default is 5000). */
  readonly segmentSize?: number;
}

/** The parts of an envelope a test chooses; everything else gets a plausible default. */
export type HostileEnvelope = Partial<Omit<EventEnvelope, 'data'>> & {
  readonly type: string;
  readonly data: JsonValue;
};

/**
 * A hostile (or simply broken) enrolled device.
 *
 * @remarks Signs any envelope with the device's real key, with no schema, size, sequence or clock
 * check, and writes raw bytes into the facility's documents through its own Repo: its own
 * segments (as it may), other devices' segments and the root index (as any peer can, since
 * Automerge documents have no access control).
 */
export class HostileDevice {
  readonly deviceId: DeviceId;
  readonly #opts: HostileDeviceOptions;
  #seq = 0;

  constructor(opts: HostileDeviceOptions) {
    this.#opts = opts;
    this.deviceId = opts.key.deviceId;
  }

  /** The sequence number the next {@link HostileDevice.sign} without `seq` takes. */
  get nextSeq(): number {
    return this.#seq + 1;
  }

  /** Continues its own sequence after `seq` (e.g. after honest appends with the same key). */
  continueAfter(seq: number): void {
    this.#seq = seq;
  }

  /**
   * Signs an envelope as this device, however wrong it is.
   *
   * @remarks Fields left out get defaults: a fresh id, the facility, the next seq, a current HLC,
   * schema 1, a subject from `data.patientId` or the id, no deps. `device` may name another device
   * (the signature is then this device's, i.e. a forgery).
   */
  async sign(parts: HostileEnvelope): Promise<SignedEvent> {
    const seq = parts.seq ?? ++this.#seq;
    if (parts.seq !== undefined && parts.seq > this.#seq) this.#seq = parts.seq;
    const device = parts.device ?? this.deviceId;
    // By default an id bound to the device and seq it claims, as an honest event's would be.
    const id = parts.id ?? eventIdFor(Date.now(), device, seq);
    const envelope: EventEnvelope = {
      v: 1,
      id,
      facility: parts.facility ?? this.#opts.facility,
      device,
      seq,
      hlc: parts.hlc ?? formatHlc(Date.now(), 0),
      type: parts.type,
      schema: parts.schema ?? 1,
      subject: parts.subject ?? { kind: 'patient', id: String(id) },
      deps: parts.deps ?? [],
      data: parts.data,
      ...(parts.basis !== undefined ? { basis: parts.basis } : {}),
      ...(parts.supersedes !== undefined ? { supersedes: parts.supersedes } : {}),
    };
    // The honest signer refuses oversized events; a modified client does not.
    const sig = toBase64Url(await signBytes(this.#opts.key, envelopeBytes(envelope)));
    return { ...envelope, sig };
  }

  /** The canonical bytes of a signed event (no size limit applies to encoding). */
  static encode(event: SignedEvent): Uint8Array {
    return encodeSignedEvent(event);
  }

  /**
   * Writes events (or raw entries) into the segment of `device` that their seq belongs to (its own
   * by default) and announces the segment in the root index, as its own app would.
   */
  async write(
    events: readonly (SignedEvent | Uint8Array)[],
    opts: { device?: DeviceId; index?: number } = {},
  ): Promise<void> {
    const size = this.#opts.segmentSize ?? 5000;
    const device = opts.device ?? this.deviceId;
    const groups = new Map<number, Uint8Array[]>();
    for (const e of events) {
      const index = opts.index ?? (e instanceof Uint8Array ? 0 : Math.floor((e.seq - 1) / size));
      let list = groups.get(index);
      if (list === undefined) groups.set(index, (list = []));
      list.push(e instanceof Uint8Array ? e : HostileDevice.encode(e));
    }
    for (const [index, list] of groups) {
      const docs = this.#opts.documents;
      const handle = await this.#handle<{ events: Uint8Array[] }>(
        docs.segment(device, index),
        docs.segmentInitial(device, index),
      );
      handle.change((doc) => {
        for (const bytes of list) doc.events.push(bytes);
      });
      const root = await this.#root<number>();
      if ((root.doc().devices[device] ?? 0) < index + 1) {
        root.change((doc) => {
          doc.devices[device] = index + 1;
        });
      }
    }
  }

  /** Sets any device's entry of the root index to any value (as any peer can). */
  async setIndex(device: DeviceId | string, value: unknown): Promise<void> {
    const root = await this.#root<unknown>();
    root.change((doc) => {
      doc.devices[device] = value;
    });
  }

  /** Creates (or changes) a document of any id with any content, to see whether peers take it. */
  async writeDocument(id: DocumentId, content: Record<string, unknown>): Promise<void> {
    const handle = this.#opts.repo.import<Record<string, unknown>>(A.save(A.from(content)), { docId: id });
    if (!handle.isReady()) handle.doneLoading();
    await handle.whenReady();
  }

  #root<V>(): Promise<DocHandle<{ devices: Record<string, V> }>> {
    return this.#handle(this.#opts.documents.root, this.#opts.documents.rootInitial());
  }

  /** The document's handle, opened from its known first change (never waiting on the network). */
  async #handle<T>(id: DocumentId, initial: Uint8Array): Promise<DocHandle<T>> {
    const handle = this.#opts.repo.import<T>(initial, { docId: id });
    if (!handle.isReady()) handle.doneLoading();
    await handle.whenReady();
    return handle;
  }
}
