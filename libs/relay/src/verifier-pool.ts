import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { EventVerifier, ReceivedEvent } from '@accord/log';
import {
  envelopeBytes,
  isDeviceId,
  isSignatureText,
  SIG_MEMBER_EXTRA,
  sigMemberOffset,
  verifyEvents,
} from '@accord/protocol';

/** Events packed into one message to a worker: small enough that both workers get a share of a segment's run. */
const CHUNK = 256;

/** Characters of a signature in base64url (64 bytes), as `isSignatureText` requires. */
const SIGNATURE_CHARS = 86;

/**
 * The worker's whole program. Kept as source text (run with `eval`) so the pool works from any
 * bundle the relay is built into: a worker file beside the module would not exist in one.
 *
 * A message: `buf` (the packed bytes), `items` (per event: envelope offset, envelope length,
 * signature text offset, index into `devices`) and `devices` (device ids: `d` + base64url of the
 * raw key, i.e. the JWK `x`). The answer: one byte per event, 1 when the signature verifies.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const keys = new Map();
function keyOf(device) {
  let key = keys.get(device);
  if (key !== undefined) return key;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: device.slice(1) }, format: 'jwk' });
  } catch {
    key = null;
  }
  if (keys.size >= 4096) keys.delete(keys.keys().next().value);
  keys.set(device, key);
  return key;
}
parentPort.on('message', ({ id, buf, items, devices }) => {
  const data = Buffer.from(buf);
  const n = items.length / 4;
  const ok = new Uint8Array(n);
  const devKeys = devices.map(keyOf);
  for (let i = 0; i < n; i++) {
    const key = devKeys[items[4 * i + 3]];
    if (key === null) continue;
    const at = items[4 * i];
    const sigAt = items[4 * i + 2];
    try {
      const sig = Buffer.from(data.toString('latin1', sigAt, sigAt + ${SIGNATURE_CHARS}), 'base64url');
      ok[i] = verify(null, data.subarray(at, at + items[4 * i + 1]), key, sig) ? 1 : 0;
    } catch {
      ok[i] = 0;
    }
  }
  parentPort.postMessage({ id, ok }, [ok.buffer]);
});
`;

/** One chunk sent to a worker, waiting for its answer. */
interface Job {
  readonly resolve: (ok: Uint8Array) => void;
  readonly reject: (err: Error) => void;
  readonly size: number;
}

/** A worker and the chunks it has not answered yet. */
interface Lane {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  /** Events sent and not answered. */
  load: number;
}

/**
 * The relay's signature checks, on worker threads (issue #12): an {@link EventVerifier} for the
 * facility logs that verifies Ed25519 signatures with `node:crypto` in batches, so the relay's
 * main thread (sync, storing, adjudication) does not spend its time on them.
 *
 * @remarks Each event's envelope is cut from the bytes it arrived as (`sigMemberOffset`), not
 * encoded again, and a chunk of events travels to a worker as one transferred buffer. Results are
 * those of `verifyEvents`: a device id or signature text that is not well formed is `false`
 * without a worker, a key that does not import is `false`, and bytes that do not hold the event's
 * `sig` member (the log never passes such) are verified against the envelope encoded anew. A
 * worker that fails (it exits, or the pool is closed) leaves its chunks to `verifyEvents` on the
 * main thread, and is replaced at the next call. Idle workers do not keep the process alive.
 */
export class VerifierPool {
  readonly #size: number;
  readonly #lanes: Lane[] = [];
  #nextJob = 0;
  #closed = false;

  /** `size` workers (default: one per core, at most 4). */
  constructor(size = Math.min(4, Math.max(1, availableParallelism()))) {
    this.#size = size;
  }

  /** The verifier to hand to `DeviceLog.open` (`verifier`). */
  readonly verify: EventVerifier = async (events) => {
    if (events.length === 0) return [];
    const results = new Array<boolean>(events.length).fill(false);
    const chunks: Promise<void>[] = [];
    for (let from = 0; from < events.length; from += CHUNK) {
      const chunk = events.slice(from, from + CHUNK);
      chunks.push(
        this.#check(chunk).then((ok) => {
          for (let i = 0; i < ok.length; i++) results[from + i] = ok[i]!;
        }),
      );
    }
    await Promise.all(chunks);
    return results;
  };

  /** Stops the workers; later calls verify on the main thread (`verifyEvents`). */
  async close(): Promise<void> {
    this.#closed = true;
    const lanes = this.#lanes.splice(0);
    await Promise.all(lanes.map((lane) => lane.worker.terminate()));
  }

  /** One chunk's results: on a worker, or with `verifyEvents` when none can take it. */
  async #check(chunk: readonly ReceivedEvent[]): Promise<readonly boolean[]> {
    const packed = pack(chunk);
    if (packed.count > 0 && !this.#closed) {
      try {
        const ok = await this.#send(packed);
        return packed.index.map((k) => k >= 0 && ok[k] === 1);
      } catch {
        // The worker went away with the chunk: checked here instead.
      }
    }
    return packed.count === 0 ? packed.index.map(() => false) : verifyEvents(chunk.map(({ event }) => event));
  }

  #send(packed: Packed): Promise<Uint8Array> {
    const lane = this.#lane();
    const id = this.#nextJob++;
    return new Promise<Uint8Array>((resolve, reject) => {
      lane.jobs.set(id, { resolve, reject, size: packed.count });
      lane.load += packed.count;
      if (lane.jobs.size === 1) lane.worker.ref();
      lane.worker.postMessage({ id, buf: packed.buf, items: packed.items, devices: packed.devices }, [
        packed.buf,
        packed.items.buffer,
      ]);
    });
  }

  /** The least loaded worker, starting one while fewer than `size` run. */
  #lane(): Lane {
    if (this.#lanes.length < this.#size) {
      const lane = this.#spawn();
      this.#lanes.push(lane);
      return lane;
    }
    let best = this.#lanes[0]!;
    for (const lane of this.#lanes) if (lane.load < best.load) best = lane;
    return best;
  }

  #spawn(): Lane {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    const lane: Lane = { worker, jobs: new Map(), load: 0 };
    worker.on('message', ({ id, ok }: { id: number; ok: Uint8Array }) => {
      const job = lane.jobs.get(id);
      if (job === undefined) return;
      lane.jobs.delete(id);
      lane.load -= job.size;
      if (lane.jobs.size === 0) worker.unref();
      job.resolve(ok);
    });
    const fail = (err: Error): void => {
      const at = this.#lanes.indexOf(lane);
      if (at >= 0) this.#lanes.splice(at, 1);
      for (const job of lane.jobs.values()) job.reject(err);
      lane.jobs.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`signature worker exited (${code})`)));
    return lane;
  }
}

/** A chunk packed for a worker. */
interface Packed {
  /** Envelopes and signature texts, back to back. */
  readonly buf: ArrayBuffer;
  /** Per packed event: envelope offset, envelope length, signature offset, device index. */
  readonly items: Int32Array<ArrayBuffer>;
  readonly devices: string[];
  /** Per event of the chunk: its position among the packed ones, or -1 (not well formed: false). */
  readonly index: number[];
  readonly count: number;
}

/** Packs a chunk: each envelope cut from the received bytes, its signature text after it. */
function pack(chunk: readonly ReceivedEvent[]): Packed {
  let size = 0;
  for (const { bytes } of chunk) size += bytes.length;
  let out = new Uint8Array(size);
  const items = new Int32Array(chunk.length * 4);
  const devices: string[] = [];
  const deviceIndex = new Map<string, number>();
  const index: number[] = [];
  let pos = 0;
  let count = 0;
  for (const { event, bytes } of chunk) {
    const { device, sig } = event;
    if (!isDeviceId(device) || !isSignatureText(sig)) {
      index.push(-1);
      continue;
    }
    let d = deviceIndex.get(device);
    if (d === undefined) {
      deviceIndex.set(device, (d = devices.length));
      devices.push(device);
    }
    const start = pos;
    const at = sigMemberOffset(bytes, sig);
    if (at >= 0) {
      out.set(bytes.subarray(0, at), pos);
      out.set(bytes.subarray(at + SIG_MEMBER_EXTRA + sig.length), pos + at);
      pos += bytes.length - SIG_MEMBER_EXTRA - sig.length;
    } else {
      let envelope: Uint8Array;
      try {
        envelope = envelopeBytes(event);
      } catch {
        index.push(-1);
        continue;
      }
      if (pos + envelope.length + SIGNATURE_CHARS > out.length) {
        const grown = new Uint8Array(pos + envelope.length + SIGNATURE_CHARS + size);
        grown.set(out.subarray(0, pos));
        out = grown;
      }
      out.set(envelope, pos);
      pos += envelope.length;
    }
    const sigAt = pos;
    for (let i = 0; i < SIGNATURE_CHARS; i++) out[pos++] = sig.charCodeAt(i);
    items.set([start, sigAt - start, sigAt, d], count * 4);
    index.push(count++);
  }
  return { buf: out.buffer, items: items.subarray(0, count * 4), devices, index, count };
}
