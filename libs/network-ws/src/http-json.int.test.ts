import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  checkRequestOrigin,
  createJsonServer,
  isJsonRequest,
  matchPath,
  requestProblemOf,
  type JsonServer,
  type JsonServerParts,
  type RequestOriginPolicy,
} from './http-json.js';

let server: Server | undefined;
let app: JsonServer | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
  await app?.close();
  app = undefined;
});

/**
 * A server from createJsonServer (cap 16 bytes) whose routes answer what they were given and whose
 * error handler answers the problem requestProblemOf reads from each failure.
 */
async function startJson(
  accept?: 'json' | 'any',
): Promise<{ port: number; allowedMethods: JsonServerParts['allowedMethods'] }> {
  const parts = createJsonServer({
    bodyLimit: 16,
    badRequestCode: 'TEST_BAD_REQUEST',
    ...(accept === undefined ? {} : { accept }),
  });
  app = parts.app;
  app.setErrorHandler((error, _request, reply) => {
    const problem = requestProblemOf(error);
    void reply.code(problem === undefined ? 500 : 400).send({ problem: problem ?? null });
  });
  app.post('/echo', { schema: { body: z.strictObject({ a: z.number() }) } }, (request) => ({
    body: request.body,
  }));
  app.post('/things/:id', { schema: { body: z.strictObject({}).nullish() } }, (request) => ({
    body: request.body ?? null,
  }));
  app.get(
    '/things/:id',
    { schema: { querystring: z.strictObject({ q: z.string().optional() }) } },
    (request) => ({ query: request.query }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, allowedMethods: parts.allowedMethods };
}

function post(
  port: number,
  body: string,
  headers: Record<string, string> = {},
  path = '/echo',
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ port, method: 'POST', host: '127.0.0.1', path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('createJsonServer', () => {
  const json = { 'content-type': 'application/json' };

  it('parses JSON bodies and names each problem of Fastify and the schemas in its own words', async () => {
    const { port } = await startJson();
    expect(await post(port, '{"a":1}', json)).toEqual({ body: { a: 1 } });
    // Over the cap: declared, and counted as it arrives (chunked, no Content-Length).
    expect(await post(port, '{"a":"0123456789abcdef"}', json)).toEqual({ problem: { kind: 'too-large' } });
    expect(await post(port, 'x'.repeat(40), { ...json, 'transfer-encoding': 'chunked' })).toEqual({
      problem: { kind: 'too-large' },
    });
    expect(await post(port, '{nope', json)).toEqual({ problem: { kind: 'not-json' } });
    expect(await post(port, '{"a":1}', { 'content-type': 'text/plain' })).toEqual({
      problem: { kind: 'unsupported-media-type' },
    });
    expect(await post(port, '  ', json)).toMatchObject({
      problem: { kind: 'invalid', part: 'body', message: expect.stringContaining('empty') as unknown },
    });
    expect(await post(port, '{"a":1,"b":2}', json)).toEqual({
      problem: { kind: 'invalid', part: 'body', message: 'unknown field "b"' },
    });
    expect(await post(port, '{"a":"x"}', json)).toMatchObject({ problem: { kind: 'invalid', part: 'body' } });
    // An optional body: none at all is undefined.
    expect(await post(port, '', json, '/things/1')).toEqual({ body: null });
  });

  it('reads any content type as JSON when told to', async () => {
    const { port } = await startJson('any');
    expect(await post(port, '{"a":2}', { 'content-type': 'text/plain' })).toEqual({ body: { a: 2 } });
    expect(await post(port, '{"a":3}')).toEqual({ body: { a: 3 } });
  });

  it('names unknown and repeated query parameters, and answers a path that does not decode and bytes that are not HTTP with its own code', async () => {
    const { port } = await startJson();
    const get = async (path: string): Promise<{ status: number; body: unknown }> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: res.status, body: await res.json() };
    };
    expect(await get('/things/1?q=x')).toEqual({ status: 200, body: { query: { q: 'x' } } });
    expect(await get('/things/1?z=1')).toMatchObject({
      body: { problem: { message: 'unknown query parameter "z"' } },
    });
    expect(await get('/things/1?q=a&q=b')).toMatchObject({
      body: { problem: { message: 'query parameter q given twice' } },
    });
    expect(await get('/things/%E0%A4%A')).toEqual({
      status: 400,
      body: { code: 'TEST_BAD_REQUEST', message: 'malformed percent-encoding in the path' },
    });
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain('"code":"TEST_BAD_REQUEST"');
    expect(reply).not.toContain('FST_');
  });

  it("keeps node's own request timeout unless told otherwise (Fastify's default is none)", async () => {
    await startJson();
    expect(app!.server.requestTimeout).toBe(300_000);
    const { app: other } = createJsonServer({
      bodyLimit: 16,
      badRequestCode: 'TEST_BAD_REQUEST',
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
    });
    expect([other.server.requestTimeout, other.server.headersTimeout, other.server.keepAliveTimeout]).toEqual(
      [30_000, 10_000, 5_000],
    );
    await other.close();
  });

  it("tells the methods declared for a path (HEAD is each GET's own), and nothing for an unknown path", async () => {
    const { allowedMethods } = await startJson();
    expect(allowedMethods('/things/abc')).toEqual(['POST', 'GET']);
    expect(allowedMethods('//things/abc/')).toEqual(['POST', 'GET']);
    expect(allowedMethods('/echo?x=1')).toEqual(['POST']);
    expect(allowedMethods('/things')).toBeUndefined();
    expect(allowedMethods('/nothing')).toBeUndefined();
  });
});

describe('matchPath', () => {
  it('returns the parameters of a matching pattern, undefined otherwise', () => {
    expect(matchPath(['api', 'events', ':id'], ['api', 'events', 'E1'])).toEqual(['E1']);
    expect(matchPath(['api', 'events', ':id'], ['api', 'event', 'E1'])).toBeUndefined();
    expect(matchPath(['api', 'events'], ['api', 'events', 'E1'])).toBeUndefined();
    expect(matchPath([], [])).toEqual([]);
  });
});

describe('checkRequestOrigin and isJsonRequest', () => {
  /** A server that answers what the guard makes of each request's headers. */
  async function guarded(policy: (port: number) => RequestOriginPolicy): Promise<number> {
    let port = 0;
    server = createServer((req, res) => {
      res.end(
        JSON.stringify({ problem: checkRequestOrigin(req, policy(port)) ?? null, json: isJsonRequest(req) }),
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    return port;
  }

  it('refuses another Host, a foreign or null Origin and a cross-site fetch; lets curl-like and same-origin requests through', async () => {
    const port = await guarded((p) => ({
      hosts: new Set([`127.0.0.1:${p}`, `localhost:${p}`]),
      origins: new Set([`http://127.0.0.1:${p}`, `http://localhost:${p}`]),
    }));
    const problem = async (headers: Record<string, string>): Promise<unknown> =>
      ((await post(port, '', headers)) as { problem: unknown }).problem;
    expect(await problem({})).toBeNull(); // Node's request sends Host 127.0.0.1:PORT, no Origin
    expect(await problem({ host: `LOCALHOST:${port}` })).toBeNull();
    expect(await problem({ origin: `http://localhost:${port}`, 'sec-fetch-site': 'same-origin' })).toBeNull();
    expect(await problem({ 'sec-fetch-site': 'none' })).toBeNull();
    expect(await problem({ host: `evil.example:${port}` })).toBe('foreign-host');
    expect(await problem({ host: `127.0.0.1:${port + 1}` })).toBe('foreign-host');
    expect(await problem({ origin: 'http://evil.example' })).toBe('foreign-origin');
    expect(await problem({ origin: 'null' })).toBe('foreign-origin');
    expect(await problem({ origin: `http://127.0.0.1:${port + 1}` })).toBe('foreign-origin');
    expect(await problem({ 'sec-fetch-site': 'cross-site' })).toBe('cross-site');
    expect(await problem({ 'sec-fetch-site': 'same-site' })).toBe('cross-site');
  });

  it('without a host list, takes any Host and compares Origin with it', async () => {
    const port = await guarded(() => ({}));
    const problem = async (headers: Record<string, string>): Promise<unknown> =>
      ((await post(port, '', headers)) as { problem: unknown }).problem;
    expect(await problem({ host: 'relay.clinic.example:8787' })).toBeNull();
    expect(
      await problem({ host: 'relay.clinic.example:8787', origin: 'https://relay.clinic.example:8787' }),
    ).toBeNull();
    expect(await problem({ host: 'relay.clinic.example:8787', origin: 'https://evil.example' })).toBe(
      'foreign-origin',
    );
  });

  it('takes application/json (with parameters) as JSON, and none of the types a form may send', async () => {
    const port = await guarded(() => ({}));
    const json = async (type?: string): Promise<unknown> =>
      ((await post(port, '{}', type === undefined ? {} : { 'content-type': type })) as { json: unknown })
        .json;
    expect(await json('application/json')).toBe(true);
    expect(await json('Application/JSON; charset=utf-8')).toBe(true);
    expect(await json()).toBe(false);
    expect(await json('text/plain')).toBe(false);
    expect(await json('application/x-www-form-urlencoded')).toBe(false);
    expect(await json('multipart/form-data; boundary=x')).toBe(false);
    expect(await json('application/json-seq')).toBe(false);
  });
});
