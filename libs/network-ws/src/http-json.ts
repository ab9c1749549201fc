// What the device agent's API and the relay's front share on Fastify: one way to build the
// server (no logger, JSON bodies only, zod schemas, our answers to Fastify's own failures), the
// checks that keep other web pages out, and the table that tells a wrong method from an unknown path.
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifySchemaCompiler,
  type FastifyServerOptions,
  type FastifyTypeProvider,
} from 'fastify';
import type { z } from 'zod';

/** Fastify typed by zod schemas: `schema.body`, `schema.querystring` and `schema.params` type the request. */
export interface ZodTypeProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  readonly serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** The Fastify instance {@link createJsonServer} builds. */
export type JsonServer = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/**
 * Why a request was refused before its handler ran, read from what Fastify (or the shared JSON
 * parser, or a schema) threw; each server maps it to its own code.
 *
 * @remarks `too-large`: the body is over the cap (declared or counted); `not-json`: not valid
 * JSON; `unsupported-media-type`: a body of a content type no parser takes; `bad-length`: a
 * body shorter or longer than its `Content-Length`, or a request aborted mid-body; `bad-url`: a
 * path that does not decode; `invalid`: a schema refused the body, query or path parameters
 * (`message` says what, in words for the caller).
 */
export type RequestProblem =
  | { readonly kind: 'too-large' }
  | { readonly kind: 'not-json' }
  | { readonly kind: 'unsupported-media-type' }
  | { readonly kind: 'bad-length' }
  | { readonly kind: 'bad-url' }
  | { readonly kind: 'invalid'; readonly part: string; readonly message: string };

/** A schema's refusal of part of a request (body, querystring, params), its message written for people. */
export class RequestValidationError extends Error {
  override readonly name = 'RequestValidationError';
  readonly statusCode = 400;
  constructor(
    readonly part: string,
    message: string,
  ) {
    super(message);
  }
}

/** A body the shared JSON parser could not read as JSON. */
class NotJsonError extends Error {
  override readonly name = 'NotJsonError';
  readonly statusCode = 400;
}

const FASTIFY_PROBLEMS: Readonly<Record<string, RequestProblem>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { kind: 'too-large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { kind: 'unsupported-media-type' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { kind: 'bad-length' },
  FST_ERR_CTP_INVALID_JSON_BODY: { kind: 'not-json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { kind: 'not-json' },
  FST_ERR_BAD_URL: { kind: 'bad-url' },
  FST_ERR_MAX_PARAM_LENGTH: { kind: 'bad-url' },
};

/**
 * The {@link RequestProblem} an error thrown before a handler stands for, or undefined for any
 * other error (a handler's own, or a fault).
 */
export function requestProblemOf(error: unknown): RequestProblem | undefined {
  if (error instanceof RequestValidationError)
    return { kind: 'invalid', part: error.part, message: error.message };
  if (error instanceof NotJsonError) return { kind: 'not-json' };
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    const known = FASTIFY_PROBLEMS[code];
    if (known !== undefined) return known;
  }
  // A client that goes away mid-body: the stream's own error, answered (if at all) as a bad request.
  if (
    code === 'ECONNRESET' ||
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    (error as Error).message === 'aborted'
  )
    return { kind: 'bad-length' };
  return undefined;
}

/** The words for a {@link RequestProblem} (`limit`: the body cap), for servers that have none of their own. */
export function describeRequestProblem(problem: RequestProblem, limit: number): string {
  switch (problem.kind) {
    case 'too-large':
      return `request body exceeds ${limit} bytes`;
    case 'not-json':
      return 'request body is not valid JSON';
    case 'unsupported-media-type':
      return 'request bodies must be Content-Type: application/json';
    case 'bad-length':
      return 'request aborted or body length does not match Content-Length';
    case 'bad-url':
      return 'malformed percent-encoding in the path';
    case 'invalid':
      return problem.message;
  }
}

/**
 * Validates one part of a request against its zod schema; the refusal's message names the
 * field and what was wrong, or is the schema's own `.describe()` text when it has one.
 *
 * @remarks Fastify hands an absent body to the validator as `null`: such a refusal says the
 * body is empty. Query parameters given twice arrive as arrays and are named so.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    return {
      error: new RequestValidationError(
        httpPart ?? 'body',
        issueMessage(httpPart, schema, data, result.error),
      ),
    };
  };

function issueMessage(part: string | undefined, schema: z.ZodType, data: unknown, error: z.ZodError): string {
  const issue = error.issues[0];
  if (part === 'querystring' && issue !== undefined) {
    const [key] = issue.path;
    if (issue.code === 'unrecognized_keys') return `unknown query parameter ${JSON.stringify(issue.keys[0])}`;
    if (typeof key === 'string' && Array.isArray((data as Record<string, unknown> | null)?.[key]))
      return `query parameter ${key} given twice`;
    return issue.message;
  }
  if (part === 'body' && (data === null || data === undefined))
    return 'request body is empty (or null): expected JSON';
  if (schema.description !== undefined) return schema.description;
  if (issue === undefined) return 'invalid request';
  if (issue.code === 'unrecognized_keys') return `unknown field ${JSON.stringify(issue.keys[0])}`;
  return issue.message;
}

type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions<Server>['schemaController']>['compilersFactory']
>;

/** Options of {@link createJsonServer}. */
export interface JsonServerOptions {
  /** Largest request body in bytes: above it, `too-large` before anything is parsed. */
  readonly bodyLimit: number;
  /**
   * Which bodies are read as JSON: `json` (only `application/json`; others are
   * `unsupported-media-type`) or `any` (whatever the content type says, as the relay's `/enroll`
   * has always done). Default `json`.
   */
  readonly accept?: 'json' | 'any';
  /**
   * The code of the 400 `{code, message}` answered to what never reaches a route: bytes that are
   * not HTTP (the connection is then closed) and a path that does not decode.
   */
  readonly badRequestCode: string;
  /** node:http's limit on a whole request, in ms (default node's own, 300 s; Fastify's would be none). */
  readonly requestTimeoutMs?: number;
  /** node:http's limit on receiving the headers, in ms (default node's). */
  readonly headersTimeoutMs?: number;
}

/** What {@link createJsonServer} returns: the Fastify instance and its route table. */
export interface JsonServerParts {
  readonly app: JsonServer;
  /**
   * The methods declared for the path `path` (`/api/events/E1`), or undefined when no route has
   * that path: a request routed to Fastify's not-found handler is a wrong method when this
   * answers. Routes declared with `config: { unlisted: true }` (static files) are left out.
   */
  readonly allowedMethods: (path: string) => readonly string[] | undefined;
}

/** The `config` of a route that is not an API route: another method on its path is an unknown route. */
export interface UnlistedRouteConfig {
  readonly unlisted: true;
}

/**
 * Builds a Fastify server for a JSON API: no logger, one JSON body parser (an empty body is
 * `undefined`), zod validation without Ajv, trailing and doubled slashes ignored, and none of
 * Fastify's default error bodies: malformed HTTP and a path that does not decode get a 400
 * `{code: badRequestCode, message}`.
 *
 * @remarks Leaves to the caller: an error handler (map {@link requestProblemOf} to its codes),
 * the not-found handling (see {@link JsonServerParts.allowedMethods}), its guards and headers.
 * Keeps node's own 5 s keep-alive (Fastify's default is 72 s): idle sockets of a local API are
 * not worth holding. Never answers 503 by itself while closing: the caller refuses with its code.
 */
export function createJsonServer(opts: JsonServerOptions): JsonServerParts {
  // Fastify types these factories for Ajv; ours hand back zod compilers, which it calls the same way.
  const compilersFactory = {
    buildValidator: () => zodValidatorCompiler,
    buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
  } as unknown as CompilersFactory;
  const app = Fastify<Server>({
    logger: false,
    bodyLimit: opts.bodyLimit,
    return503OnClosing: false,
    keepAliveTimeout: 5_000,
    requestTimeout: opts.requestTimeoutMs ?? 300_000,
    routerOptions: {
      ignoreTrailingSlash: true,
      ignoreDuplicateSlashes: true,
      // Longer than any URL node accepts: a long parameter is the route's business, not a 414.
      maxParamLength: 65_536,
    },
    // Our own compilers: no Ajv instance, no fast-json-stringify (no response schemas).
    schemaController: { compilersFactory },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      const body = JSON.stringify({ code: opts.badRequestCode, message: 'malformed HTTP request' });
      socket.end(
        `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
    // A path that does not decode never reaches a route, its hooks or the error handler.
    frameworkErrors: (error, _request, reply) => {
      const problem = requestProblemOf(error) ?? { kind: 'bad-url' };
      // (`code` and `send` are typed for a route's replies, which this hook has none of.)
      void reply
        .code(400 as never)
        .headers({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' })
        .type('application/json; charset=utf-8')
        .send({
          code: opts.badRequestCode,
          message: describeRequestProblem(problem, opts.bodyLimit),
        } as never);
    },
  }).withTypeProvider<ZodTypeProvider>();
  if (opts.headersTimeoutMs !== undefined) app.server.headersTimeout = opts.headersTimeoutMs;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    opts.accept === 'any' ? '*' : 'application/json',
    { parseAs: 'string' },
    (_request, text, done) => {
      const source = typeof text === 'string' ? text : text.toString('utf8');
      if (source.trim() === '') {
        done(null, undefined);
        return;
      }
      try {
        done(null, JSON.parse(source) as unknown);
      } catch {
        done(new NotJsonError('request body is not valid JSON'));
      }
    },
  );
  const table: { path: string[]; method: string }[] = [];
  app.addHook('onRoute', (route) => {
    if ((route.config as Partial<UnlistedRouteConfig> | undefined)?.unlisted === true) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const path = route.url.split('/').filter((s) => s !== '');
    // HEAD is answered by each GET route itself (Fastify's head routes): not a method of its own.
    for (const method of methods) if (method !== 'HEAD') table.push({ path, method });
  });
  return {
    app,
    allowedMethods: (url) => {
      // The path as sent (not `new URL`, which takes `//a/b` for a host).
      let segments: string[];
      try {
        segments = url
          .split('?')[0]!
          .split('/')
          .filter((s) => s !== '')
          .map((s) => decodeURIComponent(s));
      } catch {
        return undefined;
      }
      const allow = table.filter((r) => matchPath(r.path, segments) !== undefined).map((r) => r.method);
      return allow.length === 0 ? undefined : [...new Set(allow)];
    },
  };
}

/** How many times the body cap is drained before a connection that keeps sending is cut. */
export const DRAIN_LIMIT_FACTOR = 8;

/**
 * Before answering a request whose body was not read (413, 405, 401, 429…): drain a bounded
 * amount (`maxBody` × {@link DRAIN_LIMIT_FACTOR}) so the client sees the answer, then let the
 * connection go (`Connection: close`). Does nothing once the body was read.
 *
 * @remarks Call it from an `onSend` hook: node would otherwise read whatever the client keeps
 * sending to keep the connection alive, without a bound, or reset it before the answer is read.
 */
export function drainAfterEarlyReply(req: IncomingMessage, res: ServerResponse, maxBody: number): void {
  if (req.complete || res.headersSent) return;
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

/** A request as the checks below read it: its headers (a node or a Fastify request). */
export interface RequestHeaders {
  readonly headers: IncomingHttpHeaders;
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
  req: RequestHeaders,
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
export function isJsonRequest(req: RequestHeaders): boolean {
  const type = req.headers['content-type'];
  if (type === undefined) return false;
  return type.split(';')[0]!.trim().toLowerCase() === 'application/json';
}
