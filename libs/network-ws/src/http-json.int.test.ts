import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkRequestOrigin,
  drainAfterEarlyReply,
  isJsonRequest,
  matchPath,
  readJsonBody,
  type RequestOriginPolicy,
} from './http-json.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** A server that answers each POST with what readJsonBody made of it (cap 16 bytes). */
async function start(optional = false): Promise<number> {
  server = createServer((req, res) => {
    void readJsonBody(req, { max: 16, optional }).then((result) => {
      drainAfterEarlyReply(req, res, 16);
      res.end(JSON.stringify(result));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function post(port: number, body: string, headers: Record<string, string> = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ port, method: 'POST', host: '127.0.0.1', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('readJsonBody', () => {
  it('parses JSON and names each problem: too large (declared or streamed), empty, not JSON', async () => {
    const port = await start();
    expect(await post(port, '{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(await post(port, '{"a":"0123456789abcdef"}')).toEqual({ ok: false, problem: 'too-large' });
    // Chunked, with no Content-Length: counted as it arrives.
    expect(await post(port, 'x'.repeat(40), { 'transfer-encoding': 'chunked' })).toEqual({
      ok: false,
      problem: 'too-large',
    });
    expect(await post(port, '  ')).toEqual({ ok: false, problem: 'empty' });
    expect(await post(port, '{nope')).toEqual({ ok: false, problem: 'not-json' });
  });

  it('takes an empty body as undefined when the body is optional', async () => {
    const port = await start(true);
    expect(await post(port, '')).toEqual({ ok: true });
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
