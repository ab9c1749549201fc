import { KeyObject, sign, type webcrypto } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { AccordError, ErrorCode, signBytes, type DeviceKeyPair, type EventSigner } from '@accord/protocol';

/**
 * The signing thread's code (CommonJS, run with `eval`: nothing to resolve or bundle). It signs
 * each batch synchronously, in order, and answers with one signature or one error message per item.
 */
const SIGNING_THREAD = `
const { parentPort } = require('node:worker_threads');
const { sign } = require('node:crypto');
parentPort.on('message', ({ id, key, items }) => {
  const out = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    try {
      out[i] = sign(null, items[i], key);
    } catch (err) {
      out[i] = String(err && err.message ? err.message : err);
    }
  }
  parentPort.postMessage({ id, out });
});
`;

/** One item of a batch: its bytes and what waits for its signature. */
interface Waiting {
  readonly bytes: Uint8Array;
  readonly resolve: (signature: Uint8Array) => void;
  readonly reject: (err: unknown) => void;
}

/** The most signatures one message to the signing thread carries. */
const MAX_BATCH = 256;

const failed = (cause: unknown): AccordError =>
  new AccordError(ErrorCode.PROTOCOL_BAD_KEY, 'signing failed', { cause });

/**
 * One thread per process that signs own events in batches (see {@link ownEventSigner}).
 *
 * @remarks Started on the first signature (a process that never appends never starts it), and
 * kept from holding the process open while nothing waits on it (`unref`). When the thread fails
 * or exits, what it held is signed again and every signer goes back to one `node:crypto` job each.
 */
class SigningThread {
  static #shared: SigningThread | undefined;
  /** False once the thread failed: signers then sign one job at a time. */
  static #usable = true;

  /** The process's signing thread, started on first use; undefined after it failed. */
  static get(): SigningThread | undefined {
    if (!SigningThread.#usable) return undefined;
    try {
      SigningThread.#shared ??= new SigningThread();
    } catch {
      SigningThread.#usable = false;
      return undefined;
    }
    return SigningThread.#shared;
  }

  readonly #worker: Worker;
  readonly #waiting = new Map<number, { readonly key: KeyObject; readonly batch: readonly Waiting[] }>();
  #next = 0;

  private constructor() {
    // No execArgv: the thread needs no loader hooks or conditions of the parent (tsx, vitest).
    this.#worker = new Worker(SIGNING_THREAD, { eval: true, execArgv: [] });
    this.#worker.unref();
    this.#worker.on('message', (m: { id: number; out: (Uint8Array | string)[] }) => this.#answer(m));
    this.#worker.on('error', () => this.#fail());
    this.#worker.on('exit', () => this.#fail());
  }

  /** Sends one batch of one key to the thread. */
  send(key: KeyObject, batch: readonly Waiting[]): void {
    const id = this.#next++;
    if (this.#waiting.size === 0) this.#worker.ref();
    this.#waiting.set(id, { key, batch });
    try {
      this.#worker.postMessage({ id, key, items: batch.map((w) => w.bytes) });
    } catch {
      this.#fail();
    }
  }

  #answer({ id, out }: { id: number; out: (Uint8Array | string)[] }): void {
    const batch = this.#waiting.get(id)?.batch;
    if (batch === undefined) return;
    this.#waiting.delete(id);
    if (this.#waiting.size === 0) this.#worker.unref();
    batch.forEach((w, i) => {
      const signature = out[i];
      if (signature instanceof Uint8Array) w.resolve(signature);
      else w.reject(failed(new Error(signature ?? 'no signature')));
    });
  }

  /** Ends the thread as a crash would (tests): what it held is signed one job each. */
  static stop(): Promise<void> {
    const thread = SigningThread.#shared;
    return thread === undefined ? Promise.resolve() : thread.#worker.terminate().then(() => undefined);
  }

  #fail(): void {
    this.#worker.unref();
    SigningThread.#usable = false;
    if (SigningThread.#shared === this) SigningThread.#shared = undefined;
    const batches = [...this.#waiting.values()];
    this.#waiting.clear();
    // Not the key's fault: what the thread held is signed again, one job each.
    for (const { key, batch } of batches) {
      const single = oneJobEach(key);
      for (const w of batch) single(w.bytes).then(w.resolve, w.reject);
    }
  }
}

/**
 * The signer of own events: `node:crypto` Ed25519 on a signing thread of its own, in batches,
 * with the device's private key converted once.
 *
 * @remarks `@accord/protocol` signs through WebCrypto (it runs in browsers too). On this thread a
 * WebCrypto signature costs ≈ 8 µs and ≈ 2 KB of garbage; one `node:crypto` job per signature on
 * libuv's threads ≈ 5 µs and a third of that garbage, but each job wakes a pool thread and then
 * the event loop, and 64 appends in flight keep the four pool threads preempting this one on two
 * cores. Signatures asked for in one turn of the event loop go to one signing thread as one
 * message (at most {@link MAX_BATCH}) and come back as one: this thread's CPU per append ≈ −10 %
 * (libs/log README, "Append path", session 13). Ed25519 is
 * deterministic, so the signature is the very one WebCrypto gives. A key Node cannot convert (not
 * one of its own `CryptoKey`s) keeps the WebCrypto signer; when the signing thread cannot start or
 * fails, what it held and what comes later is signed one `node:crypto` job each: no append fails
 * for it.
 */
export function ownEventSigner(key: DeviceKeyPair): EventSigner {
  let privateKey: KeyObject;
  try {
    privateKey = KeyObject.from(key.privateKey as webcrypto.CryptoKey);
  } catch {
    return (bytes) => signBytes(key, bytes);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') return oneJobEach(privateKey);
  const single = oneJobEach(privateKey);
  let pending: Waiting[] = [];
  const flush = (): void => {
    const batch = pending;
    pending = [];
    const thread = SigningThread.get();
    if (thread === undefined) {
      for (const w of batch) single(w.bytes).then(w.resolve, w.reject);
      return;
    }
    // A relay's round of verdicts can ask for thousands in one turn: bounded messages.
    for (let i = 0; i < batch.length; i += MAX_BATCH) thread.send(privateKey, batch.slice(i, i + MAX_BATCH));
  };
  return (bytes) =>
    new Promise((resolve, reject) => {
      if (pending.push({ bytes, resolve, reject }) === 1) queueMicrotask(flush);
    });
}

/** One `node:crypto` signing job per signature, on libuv's threads. */
function oneJobEach(privateKey: KeyObject): EventSigner {
  return (bytes) =>
    new Promise((resolve, reject) => {
      try {
        sign(null, bytes, privateKey, (err, signature) => {
          if (err === null) resolve(signature);
          else reject(failed(err));
        });
      } catch (err) {
        reject(failed(err));
      }
    });
}

/** Ends the signing thread as a crash would (tests only: not exported from the package). */
export function stopSigningThread(): Promise<void> {
  return SigningThread.stop();
}
