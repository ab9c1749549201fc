// `Idempotency-Key` on the device API's writes: a repeat answers the first answer, recording nothing.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCode, isEventId, type JsonValue, type SignedEvent } from '@accord/protocol';
import type { DeviceLogApi } from '@accord/log';
import { deviceError, DeviceErrorCode } from '../errors.js';
import {
  isIdempotencyKey,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  type IdempotencyStore,
  type IdempotentAnswer,
} from '../idempotency.js';
import { pathnameOf, type AuditNote, type AuditTrail } from './audit.js';

/** A JSON answer: status, body and extra headers (`Idempotent-Replayed` on a replay). */
export interface Reply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A write's answer and the small result remembered for its `Idempotency-Key`. */
export interface Written {
  readonly reply: Reply;
  readonly result: JsonValue;
}

/** What the idempotency and the audit know of a write. */
export interface RequestContext {
  readonly req: IncomingMessage;
  /** The URL's path (decoded segments joined by `/`): part of an `Idempotency-Key`'s fingerprint. */
  readonly path: string;
  readonly audit: AuditNote;
}

/**
 * Runs writes once per `Idempotency-Key`.
 *
 * @remarks The key's first answer that recorded something (a 2xx) is kept durably as its
 * status and event ids; the same key with the same method, path and body answers it again
 * (events re-read from the log, header `Idempotent-Replayed: true`), with another one 422
 * `DEVICE_IDEMPOTENCY_MISMATCH`. A refused request keeps nothing: it may be sent again. A key
 * whose first request is still running makes the second wait for it, then answer as above.
 */
export class IdempotentWrites {
  readonly #store: IdempotencyStore;
  readonly #log: DeviceLogApi;
  readonly #audit: AuditTrail;
  readonly #clock: () => number;
  /** Keys whose first request is being answered: a second one waits for it. */
  readonly #keysInFlight = new Map<string, Promise<unknown>>();

  constructor(opts: {
    readonly store: IdempotencyStore;
    readonly log: DeviceLogApi;
    readonly audit: AuditTrail;
    readonly clock: () => number;
  }) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#audit = opts.audit;
    this.#clock = opts.clock;
  }

  /** Runs the write `run` of the request `ctx` whose body is `body` once per key (none: just runs it). */
  async once(ctx: RequestContext, body: unknown, run: () => Promise<Written>): Promise<Reply> {
    const key = idempotencyKeyOf(ctx.req);
    if (key === undefined) return (await run()).reply;
    // Kept durably: the same text as ever, or a key stored before would no longer match.
    const fingerprint = createHash('sha256')
      .update(`${ctx.req.method ?? ''} /${ctx.path}\n${JSON.stringify(body ?? null)}`)
      .digest('base64url');
    for (let first = this.#keysInFlight.get(key); first !== undefined; first = this.#keysInFlight.get(key)) {
      await first.catch(() => {});
    }
    // No await between the check above and this: one request per key runs at a time.
    const answer = this.#onceLocked(ctx, key, fingerprint, run);
    this.#keysInFlight.set(key, answer);
    try {
      return await answer;
    } finally {
      this.#keysInFlight.delete(key);
    }
  }

  async #onceLocked(
    ctx: RequestContext,
    key: string,
    fingerprint: string,
    run: () => Promise<Written>,
  ): Promise<Reply> {
    const first = await this.#store.get(key);
    if (first !== undefined) {
      if (first.fingerprint !== fingerprint) {
        throw deviceError(
          DeviceErrorCode.DEVICE_IDEMPOTENCY_MISMATCH,
          'this Idempotency-Key was first used for another request (route or body)',
          { details: { key } },
        );
      }
      const reply = this.#replay(first);
      const event = (first.result as { event?: unknown }).event;
      this.#audit.remember({
        action: ctx.audit.action,
        ...(ctx.audit.target === undefined ? {} : { target: ctx.audit.target }),
        ...(typeof event === 'string' ? { event } : {}),
        outcome: 'replayed',
        detail: { key, status: first.status },
      });
      return { ...reply, headers: { ...reply.headers, 'Idempotent-Replayed': 'true' } };
    }
    const written = await run();
    if (written.reply.status >= 200 && written.reply.status < 300) {
      try {
        await this.#store.put(key, {
          fingerprint,
          status: written.reply.status,
          result: written.result,
          at: this.#clock(),
        });
      } catch {
        // The write is recorded and durable: say so. Only a repeat of this very key could
        // record it again, and only if the database failed right here.
      }
    }
    return written.reply;
  }

  /** The first answer of an `Idempotency-Key` again, its events re-read from the log. */
  #replay(first: IdempotentAnswer): Reply {
    const event = (id: unknown): SignedEvent => {
      const info = typeof id === 'string' && isEventId(id) ? this.#log.get(id) : undefined;
      if (info === undefined) {
        throw deviceError(
          DeviceErrorCode.DEVICE_INTERNAL,
          `the first answer's event ${String(id)} is not in the log`,
        );
      }
      return info.event;
    };
    const result = first.result as {
      event?: unknown;
      warning?: JsonValue;
      retried?: unknown;
      skipped?: JsonValue;
    };
    if (Array.isArray(result.retried)) {
      const retried = (result.retried as unknown[]).map((pair) => {
        const [id, by] = Array.isArray(pair) ? (pair as unknown[]) : [];
        return { id, event: event(by) };
      });
      return { status: first.status, body: { retried, skipped: result.skipped ?? [] } };
    }
    const e = event(result.event);
    return {
      status: first.status,
      body: { id: e.id, event: e, ...(result.warning === undefined ? {} : { warning: result.warning }) },
    };
  }
}

/** The `Idempotency-Key` of a request, if it has one; 400 when it is malformed (or sent twice). */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const key = req.headers['idempotency-key'];
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !isIdempotencyKey(key)) {
    throw deviceError(
      ErrorCode.DEVICE_BAD_REQUEST,
      `Idempotency-Key must be 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters of A-Z a-z 0-9 . _ : ~ -`,
      { details: { header: 'Idempotency-Key' } },
    );
  }
  return key;
}

/** The path of a request URL as its decoded segments joined by `/` (`api/events/E1/retry`). */
export function decodedPath(url: string | undefined): string {
  const segments = pathnameOf(url)
    .split('/')
    .filter((s) => s !== '');
  try {
    return segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    return segments.join('/');
  }
}
