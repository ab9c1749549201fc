// Small pieces of JSON-over-HTTP shared by the device agent's API and the relay's front: both
// read bounded request bodies, route by path pattern and answer before a body was read.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Why a request body could not be used; each server maps it to its own error code. */
export type BodyProblem = 'too-large' | 'aborted' | 'empty' | 'not-json';

/** The outcome of {@link readJsonBody}. */
export type JsonBodyResult =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly problem: BodyProblem };

/**
 * Reads a JSON request body of at most `max` bytes.
 *
 * @remarks Refuses early on a declared Content-Length above the cap and counts bytes as they
 * arrive (a chunked body cannot slip past it); on overflow it stops reading and pauses the
 * request (see {@link drainAfterEarlyReply}). With `optional`, an empty body is `undefined`.
 * Never rejects for the client's faults: they are {@link BodyProblem}s.
 */
export async function readJsonBody(
  req: IncomingMessage,
  opts: { readonly max: number; readonly optional?: boolean },
): Promise<JsonBodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > opts.max) return { ok: false, problem: 'too-large' };
  const chunks: Buffer[] = [];
  let size = 0;
  const read = await new Promise<BodyProblem | undefined>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > opts.max) {
        req.off('data', onData);
        req.off('end', onEnd);
        req.pause();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => resolve(undefined);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) resolve('aborted');
    });
  });
  if (read !== undefined) return { ok: false, problem: read };
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '')
    return opts.optional === true ? { ok: true, value: undefined } : { ok: false, problem: 'empty' };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, problem: 'not-json' };
  }
}

/** How many times the body cap is drained before a connection that keeps sending is cut. */
export const DRAIN_LIMIT_FACTOR = 8;

/**
 * Before answering a request whose body was not read (413, 405, 401, 429…): drain a bounded
 * amount (`maxBody` × {@link DRAIN_LIMIT_FACTOR}) so the client sees the answer, then let the
 * connection go (`Connection: close`). Does nothing once the body was read.
 */
export function drainAfterEarlyReply(req: IncomingMessage, res: ServerResponse, maxBody: number): void {
  if (req.complete) return;
  res.setHeader('Connection', 'close');
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > maxBody * DRAIN_LIMIT_FACTOR) req.destroy();
  });
  req.resume();
}

/**
 * Matches path segments against a pattern (`['api', 'events', ':id']`): the values of the
 * `:name` segments in order, or undefined when it does not match.
 */
export function matchPath(pattern: readonly string[], segments: readonly string[]): string[] | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: string[] = [];
  for (const [i, p] of pattern.entries()) {
    const s = segments[i]!;
    if (p.startsWith(':')) params.push(s);
    else if (p !== s) return undefined;
  }
  return params;
}

/**
 * Why a request that may come from a web page is refused; each server maps it to its own code.
 *
 * @remarks `foreign-host`: the `Host` header names another server (a DNS-rebinding page reaching
 * a loopback port through its own name); `foreign-origin`: an `Origin` other than the server's
 * own (`null` included); `cross-site`: the browser says so (`Sec-Fetch-Site` other than
 * `same-origin` or `none`), for requests that carry no `Origin` (no-cors GETs).
 */
export type RequestOriginProblem = 'foreign-host' | 'foreign-origin' | 'cross-site';

/** What {@link checkRequestOrigin} accepts. */
export interface RequestOriginPolicy {
  /** `host:port` names this server answers to, lower-case; undefined accepts any `Host`. */
  readonly hosts?: ReadonlySet<string>;
  /**
   * Origins (`scheme://host:port`, lower-case) that are this server itself; undefined: the
   * origin built from the request's own `Host` (`http://` or `https://`).
   */
  readonly origins?: ReadonlySet<string>;
}

/**
 * Checks the headers a browser adds to every request against the server's own name and origin:
 * undefined when the request may proceed.
 *
 * @remarks A page on another site can make a browser send simple requests (GET, and POST with a
 * form's content types) to any address, loopback included, without a CORS preflight; and a
 * page whose name was rebound to 127.0.0.1 sends its own name as `Host`. Non-browser clients
 * (curl, Node's fetch) send neither `Origin` nor `Sec-Fetch-Site`, and the `Host` of the URL
 * they were given.
 */
export function checkRequestOrigin(
  req: IncomingMessage,
  policy: RequestOriginPolicy,
): RequestOriginProblem | undefined {
  const host = req.headers.host?.toLowerCase();
  if (policy.hosts !== undefined && (host === undefined || !policy.hosts.has(host))) return 'foreign-host';
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own =
      policy.origins ??
      (host === undefined ? new Set<string>() : new Set([`http://${host}`, `https://${host}`]));
    if (!own.has(origin.toLowerCase())) return 'foreign-origin';
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return 'cross-site';
  return undefined;
}

/**
 * True when a request declares a JSON body (`application/json`, parameters such as `charset`
 * allowed).
 *
 * @remarks The content types a web page may send without a CORS preflight (`text/plain`,
 * `application/x-www-form-urlencoded`, `multipart/form-data`) are exactly the ones this refuses,
 * so requiring it on writes keeps a foreign page's form or `fetch(…, {mode: 'no-cors'})` out.
 */
export function isJsonRequest(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  if (type === undefined) return false;
  return type.split(';')[0]!.trim().toLowerCase() === 'application/json';
}
