// The page's client of its agent's HTTP API: same origin, JSON, and one Idempotency-Key per user
// action, so that a form sent again after a cut connection never records a change twice.

/** An answer of the agent with a 4xx/5xx status, or no answer at all (`status` 0, `NETWORK`). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** A fresh `Idempotency-Key` (32 hex characters), made once per user action. */
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function answer<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'NOT_JSON', text.slice(0, 200));
  }
  if (!res.ok) {
    const b = (body ?? {}) as { code?: unknown; message?: unknown };
    throw new ApiError(
      res.status,
      typeof b.code === 'string' ? b.code : `HTTP_${res.status}`,
      typeof b.message === 'string' ? b.message : res.statusText,
    );
  }
  return body as T;
}

async function get(path: string): Promise<Response> {
  try {
    return await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', e instanceof Error ? e.message : String(e));
  }
}

/** `GET path` on the agent, parsed. */
export async function getJson<T>(path: string): Promise<T> {
  return answer<T>(await get(path));
}

/** `GET path` of a paged list on the agent: the page, and how many matched (`Accord-Total`). */
export async function getPage<T>(path: string): Promise<{ items: T[]; total: number }> {
  const res = await get(path);
  const items = await answer<T[]>(res);
  const total = Number(res.headers.get('accord-total') ?? items.length);
  return { items, total: Number.isFinite(total) ? total : items.length };
}

/**
 * `POST path` with a JSON body (or `{}`), `Content-Type: application/json` (the agent takes no
 * other writes) and `key` as `Idempotency-Key`.
 *
 * @remarks When the connection fails before an answer, it is sent once more with the same key: the
 * agent answers the first result if the first attempt was recorded.
 */
export async function postJson<T>(path: string, body: unknown, key: string): Promise<T> {
  const init: RequestInit = {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key, accept: 'application/json' },
    body: JSON.stringify(body ?? {}),
    cache: 'no-store',
  };
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'NETWORK', e instanceof Error ? e.message : String(e));
    }
  }
  return answer<T>(res);
}
