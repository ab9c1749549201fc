// `GET /api/stream`: the live status of the Sync Centre page, as Server-Sent Events.
import type { ServerResponse } from 'node:http';
import type { LiveStatus } from './types.js';

/** A stream whose client does not read this much is cut off rather than buffered. */
const STREAM_MAX_BUFFER = 64 * 1024;

/** Options of {@link LiveStreams} (the timings are `HttpApiOptions`'). */
export interface LiveStreamsOptions {
  /** The status to send, recomputed at each push (it may throw while the log closes: nothing is sent). */
  readonly status: () => LiveStatus;
  /** Most streams served at once (default 8). */
  readonly maxStreams?: number;
  /** Interval of the comment heartbeat, in ms (default 15 000). */
  readonly heartbeatMs?: number;
  /** A change is pushed at most this long after it happened, coalesced (default 250 ms). */
  readonly coalesceMs?: number;
  /** How often the status is recomputed to catch network changes, in ms (default 1000). */
  readonly checkMs?: number;
}

/** One open stream. */
interface LiveStream {
  readonly res: ServerResponse;
  /** The last status sent (JSON), to send only changes. */
  last: string;
}

/**
 * The open status streams: each gets `retry: 2000` and the status at once, then a new status
 * whenever it changes (coalesced), and a comment heartbeat.
 *
 * @remarks Who may open one is the caller's business: {@link LiveStreams.reserve} takes a slot,
 * {@link LiveStreams.serve} gives it back when the stream ends. Timers run only while a stream is open.
 */
export class LiveStreams {
  readonly #opts: LiveStreamsOptions;
  readonly #streams = new Set<LiveStream>();
  /** Streams reserved and not yet ended (checked against `maxStreams`). */
  #slots = 0;
  #pushTimer: NodeJS.Timeout | undefined;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;

  constructor(opts: LiveStreamsOptions) {
    this.#opts = opts;
  }

  /** The most streams served at once. */
  get limit(): number {
    return this.#opts.maxStreams ?? 8;
  }

  /** Takes a slot for a stream about to be served; false when {@link LiveStreams.limit} are open. */
  reserve(): boolean {
    if (this.#slots >= this.limit) return false;
    this.#slots++;
    return true;
  }

  /**
   * Serves one stream on `res` (its headers already written) until its client leaves or
   * {@link LiveStreams.close}; resolves then, its slot given back.
   */
  serve(res: ServerResponse): Promise<void> {
    return new Promise<void>((resolve) => {
      const stream: LiveStream = { res, last: '' };
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.#streams.delete(stream);
        this.#slots--;
        if (this.#streams.size === 0) this.#stopTimers();
        resolve();
      };
      res.once('close', finish);
      res.once('finish', finish);
      if (this.#closed) {
        res.end();
        return;
      }
      this.#streams.add(stream);
      this.#startTimers();
      // Reconnect after 2 s if the connection drops (EventSource's default is 3 s).
      res.write('retry: 2000\n\n');
      this.#send(stream, JSON.stringify(this.#opts.status()));
    });
  }

  /** Something the status shows may have changed: push it, coalesced, to every stream. */
  changed(): void {
    if (this.#streams.size === 0 || this.#pushTimer !== undefined) return;
    this.#pushTimer = setTimeout(() => {
      this.#pushTimer = undefined;
      this.#push();
    }, this.#opts.coalesceMs ?? 250);
    this.#pushTimer.unref();
  }

  /** Ends every stream (live streams never finish by themselves) and every timer. */
  close(): void {
    this.#closed = true;
    for (const s of this.#streams) s.res.end();
    this.#stopTimers();
  }

  #send(stream: LiveStream, status: string): void {
    if (stream.last === status) return;
    stream.last = status;
    this.#write(stream, `event: status\ndata: ${status}\n\n`);
  }

  #write(stream: LiveStream, text: string): void {
    // A client that stops reading is cut off rather than buffered without bound.
    if (stream.res.writableLength > STREAM_MAX_BUFFER) stream.res.destroy();
    else stream.res.write(text);
  }

  #push(): void {
    if (this.#streams.size === 0) return;
    let status: string;
    try {
      status = JSON.stringify(this.#opts.status());
    } catch {
      return; // The log is closing: the streams end with the API.
    }
    for (const s of this.#streams) this.#send(s, status);
  }

  #startTimers(): void {
    if (this.#timers.length > 0) return;
    // The network adapters announce no changes: the status is recomputed now and then, and sent
    // only when it differs from what each stream was last sent.
    const check = setInterval(() => this.#push(), this.#opts.checkMs ?? 1000);
    const heartbeat = setInterval(() => {
      for (const s of this.#streams) this.#write(s, ': keep-alive\n\n');
    }, this.#opts.heartbeatMs ?? 15_000);
    check.unref();
    heartbeat.unref();
    this.#timers = [check, heartbeat];
  }

  #stopTimers(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#pushTimer !== undefined) clearTimeout(this.#pushTimer);
    this.#pushTimer = undefined;
  }
}
